"""Room status out: retained on `officegw/state/<building>/<floor>/<room>`, and to the
event stream as `room` events.

A thread of its own looks at the rooms a few times a second. Room states are frozen,
so "changed" is "not the object published last", found by a dict copy under the
live-state lock and identity checks outside it; only changed rooms are rendered
(the JSON of GET /v1/rooms/{id}, by the renderer the composition root hands in) and
only when they render differently. Each room goes out at most once per
`min_interval`; a change inside the interval waits for its end, so the last state
always goes out. Ingest and the ticker never serialise a room for this.

MQTT: QoS 1, retained, only while the broker connection is up; after every
(re)connect every room is sent again (a broker without persistence forgets retained
messages). Only rooms of the gateway's own buildings (`gateway.buildings`) are
published: a shard never overwrites another shard's rooms.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

from gateway.clock import Clock
from gateway.live_state import LiveRoom, LiveState
from gateway.logs import kv
from gateway.push.fanout import Fanout, RoomPush
from gateway.runtime.periodic import PeriodicThread
from rules.bookings import Booking, current_and_next
from rules.room_model import RoomState

log = logging.getLogger("officegw.state")

STATE_TOPIC_ROOT = "officegw/state"
# How often the rooms are looked at: the delay a change may wait before it goes out.
SCAN_INTERVAL = 0.1
# Rooms rendered in one scan, at most: twice the share of the rooms that can fall due
# in one scan (each room goes out at most once per `min_interval`), and never fewer
# than this. Without a cap, rooms sent together (all of them at start) fall due
# together every `min_interval` for ever, and every so often one scan renders the
# whole site in one go: tens of ms of Python that event-to-actuation waits behind
# (benchmarks/actuation.py). Capped, the rooms left over go first in the next scans,
# and their sending times spread over the interval by themselves.
MIN_RENDERS_PER_SCAN = 64

# How often the rooms' (current, next) bookings are worked out again when no booking
# was written: a booking starting or ending changes the room's status by itself.
BOOKINGS_INTERVAL = 1.0
NO_BOOKINGS: tuple[Booking | None, Booking | None] = (None, None)

# (room, now, (booking in progress, next booking)) -> the JSON of GET /v1/rooms/{id}
RoomRenderer = Callable[[LiveRoom, float, tuple[Booking | None, Booking | None]], bytes]
Publish = Callable[[str, bytes], None]
# Every room's active bookings (a snapshot, replaced on every booking write).
BookedRooms = Callable[[], Mapping[str, tuple[Booking, ...]]]


def state_topic(building: str, floor: str, room_id: str) -> str | None:
    """The room's state topic; None when a level would not be a valid topic level
    (a configured floor name with '/', '+' or '#')."""
    levels = (building, floor, room_id)
    if any(not level or any(c in level for c in "/+#") for level in levels):
        return None
    return f"{STATE_TOPIC_ROOT}/{building}/{floor}/{room_id}"


class RoomStatePublisher:
    def __init__(
        self,
        live: LiveState,
        render: RoomRenderer,
        clock: Clock,
        fanout: Fanout,
        *,
        publish: Publish | None,
        connected: Callable[[], bool],
        min_interval: float,
        buildings: frozenset[str] | None,
        bookings: BookedRooms = dict,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self._render = render
        self._clock = clock
        self._fanout = fanout
        # None: retained state off (the stream still gets room events).
        self._publish = publish
        self._connected = connected
        self._min_interval = min_interval
        self._buildings = buildings
        self._bookings = bookings
        self._monotonic = monotonic
        # Per room: the state (and bookings) last rendered, when, and the JSON it gave.
        self._seen: dict[str, RoomState] = {}
        self._seen_bookings: dict[str, tuple[Booking | None, Booking | None]] = {}
        # The rooms last rendered with every presence sensor offline.
        self._seen_offline: set[str] = set()
        self._booked: Mapping[str, tuple[Booking, ...]] | None = None
        self._booked_at = float("-inf")
        self._pairs: dict[str, tuple[Booking | None, Booking | None]] = {}
        self._sent_at: dict[str, float] = {}
        self._json: dict[str, bytes] = {}
        self._topics: dict[str, str | None] = {}
        self._resend = True
        # Where the next scan starts rendering: just after the last room the cap left out.
        self._start = 0
        self.published = 0
        self._loop = PeriodicThread("room-state", SCAN_INTERVAL, self._scan)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def resend(self) -> None:
        """Publish every room again at the next scan (the broker connection came up)."""
        self._resend = True

    def _scan(self) -> None:
        self.scan()

    def scan(self) -> int:
        """Sends what changed (and is due); returns how many rooms went out."""
        # Every room at once, under one taking of the live-state lock: a taking per room
        # (500 a second) held it just when the GIL switched often enough for ingest to
        # queue behind it (benchmarks/actuation.py).
        view = self._live.rooms_view()
        states, offline = view.states, view.sensors_offline
        mqtt_up = self._publish is not None and self._connected()
        resend = self._resend and mqtt_up
        if resend:
            self._resend = False
        elif not mqtt_up and not self._fanout.listening:
            # Nobody to tell; what changed meanwhile goes out once somebody listens.
            return 0
        now, tick = self._clock.now(), self._monotonic()
        pairs = self._current_bookings(now, tick)
        rooms = list(states.items())
        start = self._start if self._start < len(rooms) else 0
        if start:
            rooms = rooms[start:] + rooms[:start]
        budget = max(MIN_RENDERS_PER_SCAN, 2 * math.ceil(len(rooms) * SCAN_INTERVAL / self._min_interval))
        left_out: int | None = None
        sent = 0
        for position, (room_id, state) in enumerate(rooms):
            pair = pairs.get(room_id, NO_BOOKINGS)
            changed = (
                state is not self._seen.get(room_id)
                or pair != self._seen_bookings.get(room_id, NO_BOOKINGS)
                or (room_id in offline) is not (room_id in self._seen_offline)
            )
            if changed and tick - self._sent_at.get(room_id, float("-inf")) >= self._min_interval:
                if budget == 0:
                    if left_out is None:
                        left_out = (start + position) % len(rooms)
                    if not resend:
                        break
                else:
                    budget -= 1
                    room = LiveRoom(
                        view.configs[room_id],
                        state,
                        room_id in view.configured,
                        view.zone,
                        room_id in offline,
                    )
                    if self._render_one(room, pair, now, tick, mqtt_up):
                        sent += 1
                        continue
            if resend and room_id in self._json:
                self._to_mqtt(room_id, self._json[room_id])
        self._start = left_out or 0
        return sent

    def _render_one(
        self,
        room: LiveRoom,
        pair: tuple[Booking | None, Booking | None],
        now: float,
        tick: float,
        mqtt_up: bool,
    ) -> bool:
        """Renders a room that changed and is due; whether it went out (it renders
        differently from what went out last)."""
        room_id = room.config.id
        payload = self._render(room, now, pair)
        # Rendering every room that changed is tens of ms of Python in one
        # go: hand the GIL back to ingest between rooms (as the ticker does
        # between rule slices), or event-to-actuation waits behind it.
        time.sleep(0)
        self._seen[room_id] = room.state
        self._seen_bookings[room_id] = pair
        if room.sensors_offline:
            self._seen_offline.add(room_id)
        else:
            self._seen_offline.discard(room_id)
        if payload == self._json.get(room_id):
            return False
        self._json[room_id] = payload
        self._sent_at[room_id] = tick
        self._fanout.offer(RoomPush(room_id, room.config.building, room.config.floor, payload))
        if mqtt_up:
            self._to_mqtt(room_id, payload)
        return True

    def _current_bookings(self, now: float, tick: float) -> dict[str, tuple[Booking | None, Booking | None]]:
        """(in progress, next) per room with bookings: again after every booking write,
        and every BOOKINGS_INTERVAL for bookings that start or end as time passes."""
        booked = self._bookings()
        if booked is not self._booked or tick - self._booked_at >= BOOKINGS_INTERVAL:
            self._booked, self._booked_at = booked, tick
            self._pairs = {room_id: current_and_next(bookings, now) for room_id, bookings in booked.items()}
        return self._pairs

    def _to_mqtt(self, room_id: str, payload: bytes) -> None:
        assert self._publish is not None
        if room_id not in self._topics:
            self._topics[room_id] = self._topic_of(room_id)
        topic = self._topics[room_id]
        if topic is not None:
            self._publish(topic, payload)
            self.published += 1

    def _topic_of(self, room_id: str) -> str | None:
        config = self._live.room_config(room_id)
        if config is None or (self._buildings is not None and config.building not in self._buildings):
            return None
        topic = state_topic(config.building, config.floor, room_id)
        if topic is None:
            log.warning(kv("room state not published: not a topic level", room=room_id, floor=config.floor))
        return topic
