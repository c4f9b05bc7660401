"""The ingest pipeline: topic -> device -> decode -> validated reading -> room state.

Runs on the MQTT network thread, one message at a time. Bad input is rejected,
counted by reason, logged at most once per device and reason per minute, and
never stops the next message.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from devices import identity
from devices.credentials import is_credential_key, redact_text, scrub
from devices.dialects import dialect_for, native
from devices.dialects.base import DecodeError, Dialect, TopicKind
from devices.fields import DevicePayload, RejectReason
from devices.pseudonym import Pseudonymizer
from gateway.automation.runner import Automation
from gateway.clock import Clock, DeviceClock
from gateway.config import RegistrySection
from gateway.ingest.dead_letters import DeadLetters
from gateway.ingest.routes import RouteTable
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from gateway.logs import Throttle, kv
from gateway.mqtt.transport import Ack, InboundMessage
from gateway.storage.records import DeviceState, Reading, readings_from
from rules.room_model import RoomState

log = logging.getLogger("officegw.ingest")

# Takes what one message produced (readings, the room state after it, the device's
# state after it), its acknowledgement and, for a message read from the broker, its
# payload size (pending until committed: gateway.ingest.backpressure); the history writer.
Recorder = Callable[[list[Reading], RoomState | None, DeviceState | None, Ack | None, int | None], None]

REJECT_LOG_INTERVAL = 60.0
TOPIC_CACHE_SIZE = 100_000
# Topics whose newest throttled message is kept for later (a bound on memory).
MAX_THROTTLED_TOPICS = 10_000
# Device times further ahead of the gateway's clock than this are not trusted for ordering.
MAX_CLOCK_SKEW = 300.0
# Device times outside [2000-01-01, now + a day] are rejected as out_of_range: a
# clock that was never set, or a value that is not a time at all.
EARLIEST_DEVICE_TIME = 946_684_800.0
MAX_DEVICE_TIME_AHEAD = 86_400.0
# How often silent auto-registered devices and rooms are looked for (at most).
FORGET_SWEEP_INTERVAL = 60.0
# Rejections about where a message came from rather than what it says: a flood of
# made-up topics would log a line per topic, so these log once a minute per reason
# (the dead-letter log still has every topic). Others log once a minute per topic.
SITE_WIDE_REASONS = frozenset(
    {
        RejectReason.UNKNOWN_TOPIC,
        RejectReason.INVALID_TOPIC,
        RejectReason.WRONG_ROOM,
        RejectReason.WRONG_BUILDING,
        RejectReason.ID_CONFLICT,
        RejectReason.UNKNOWN_DEVICE,
        RejectReason.REGISTRY_FULL,
    }
)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a topic of a config-mapped device (Zigbee2MQTT) leads."""

    device_id: str
    room_id: str
    kind: TopicKind
    dialect: Dialect
    # The device's topic in the site config, and what its dialect remembers about it
    # (one dict per device, shared by its routes), for dialects that decode by topic.
    base: str = ""
    memory: dict[str, Any] = field(default_factory=dict, compare=False)
    # Other entries on the same topic: the other channels of one device (a Shelly's
    # `events/rpc` and `online` speak for all of them). Each gets the message too.
    siblings: tuple[Route, ...] = ()


def mapped_routes(
    devices: Iterable[tuple[str, str, str | None, str]], channels: Mapping[str, int] | None = None
) -> dict[str, Route]:
    """Exact topics of devices the site config maps, from (id, room, topic, dialect) and
    the channel of each device that names one (`channels`: device id -> channel)."""
    routes: dict[str, Route] = {}
    for device_id, room_id, topic, name in devices:
        if name == "native" or topic is None:
            continue
        dialect = dialect_for(name, (channels or {}).get(device_id))
        memory: dict[str, Any] = {}
        for route_topic, kind in dialect.routes(topic).items():
            route = Route(device_id, room_id, kind, dialect, topic, memory)
            first = routes.get(route_topic)
            routes[route_topic] = (
                route if first is None else replace(first, siblings=(*first.siblings, route))
            )
    return routes


class Announcements(Protocol):
    """What the pipeline needs of device discovery (gateway/ingest/discovery.py)."""

    def handles(self, topic: str) -> bool: ...

    def handle(self, message: InboundMessage, now: float) -> AnnouncementOutcome: ...

    def retry(self, now: float) -> AnnouncementOutcome: ...


class AnnouncementOutcome(Protocol):
    """What one announcement did: room states to record, refusals to count, devices dropped."""

    @property
    def rooms(self) -> Mapping[str, RoomState]: ...

    @property
    def refused(self) -> list[tuple[str, str]]: ...

    @property
    def removed(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class NativePlace:
    """A native topic's parts with the device id it stands for (cached per topic).
    Flat rather than holding the parsed `NativeTopic`: one object per device, not two
    (issue 17: memory per device)."""

    building: str
    floor: str
    room_id: str
    device: str
    kind: TopicKind
    device_id: str

    @classmethod
    def of(cls, topic: native.NativeTopic, device_id: str) -> NativePlace:
        return cls(topic.building, topic.floor, topic.room, topic.device, topic.kind, device_id)


def _mark(ts: float, digest: int) -> complex:
    """A device's mark, (device time, CRC-32 of the payload), as one complex number:
    the time is its real part and the CRC (under 2**32, exact in a double) its
    imaginary part. One 32-byte object a device instead of a tuple, a float and an
    int (about 110 bytes; issue 17: memory per device, 20,000 devices)."""
    return complex(ts, digest)


class IngestPipeline:
    def __init__(
        self,
        *,
        topic_prefix: str,
        live: LiveState,
        stats: IngestStats,
        clock: Clock,
        pseudonymizer: Pseudonymizer,
        automation: Automation | None = None,
        routes: RouteTable[Route] | Mapping[str, Route] | None = None,
        reconnect_grace: float = 0.0,
        recorder: Recorder | None = None,
        record_readings: bool = True,
        registry: RegistrySection | None = None,
        announcements: Announcements | None = None,
        device_clock: DeviceClock | None = None,
    ) -> None:
        self._prefix = topic_prefix
        self._live = live
        self._stats = stats
        self._clock = clock
        # With `clock.mode: device`, every device time accepted moves the clock
        # (`clock` is then this same clock).
        self._device_clock = device_clock
        self._pseudonymizer = pseudonymizer
        self._automation = automation
        self._reject_log = Throttle(REJECT_LOG_INTERVAL)
        self.dead_letters = DeadLetters()
        self._registry = registry or RegistrySection()
        self._next_sweep = float("-inf")
        # Device -> its mark: the device time and CRC-32 of the payload of the last
        # reading applied (`_mark`); kept in the store with the device's last state
        # (`DeviceState`), so a restart goes on from it.
        self._last_device_time: dict[str, complex] = {}
        # Last states restored for devices not registered yet (auto-registered ones):
        # put back when the device is next heard from.
        self._restored: dict[str, dict[str, Any]] = {}
        # Devices publish on the same few topics over and over: parse, check and
        # register each once (cleared when devices or rooms are forgotten).
        self._topics: dict[str, NativePlace] = {}
        table = routes if isinstance(routes, RouteTable) else RouteTable(routes or {})
        # Exact topics first (one dict lookup); filters of devices whose topics cannot
        # be listed (Homie) after the native cache, so those paths cost nothing more.
        # Both change at run time as discovered devices come and go.
        self._routes = table.exact
        self._filters = table.filters
        self._announcements = announcements
        # Flood protection: per topic and device, the newest message throttled since the
        # last admitted one (with the mapped route it came on); applied by
        # `release_throttled` if the device then goes quiet, so the state always ends on
        # what the device said last. By topic, not by device alone: a device may say
        # different things on different topics (Homie); and by device too, as a topic
        # may speak for several (the channels of a Shelly).
        self._throttled: dict[tuple[str, str], tuple[InboundMessage, Route | None]] = {}
        # The MQTT thread and the ticker (releasing throttled messages) both process.
        self._serial = threading.Lock()
        self._reconnect_grace = reconnect_grace
        self._grace_until = float("-inf")
        # What the message being handled produced, for the recorder.
        self._recorder = recorder
        # False (storage.history off): the recorder gets room states, no readings.
        self._record_readings_on = record_readings
        self._readings: list[Reading] = []
        self._changed_room: RoomState | None = None
        self._changed_device: DeviceState | None = None
        self._places: dict[str, tuple[str, str]] = {}

    def handle(self, message: InboundMessage) -> None:
        """Processes one message; the one place where any failure is caught. What it
        carried goes to the recorder, which acknowledges it once committed (a
        rejected message too, in order, so the broker never redelivers junk)."""
        with self._serial:
            self._stats.received += 1
            route = self._routes.get(message.topic)
            if route is not None and route.siblings:
                # Recorded one entry after the other, acknowledged with the last.
                for sibling in route.siblings:
                    self._handle(message, route=sibling)
                    self._record(None, None)
            self._handle(message, route=route)
            self._record(message.ack, len(message.payload))
            self._stats.processed += 1

    def release_throttled(self) -> int:
        """Applies the last throttled message of every device that sent nothing since;
        the ticker calls this once a second. Returns how many were applied. (They
        were acknowledged when throttled: a crash before this loses only them.)"""
        with self._serial:
            pending, self._throttled = self._throttled, {}
            for message, route in pending.values():
                self._handle(message, admitted=True, route=route)
                self._record(None, None)
            return len(pending)

    def _record(self, ack: Ack | None, message_bytes: int | None) -> None:
        readings, room, device = self._readings, self._changed_room, self._changed_device
        self._readings, self._changed_room, self._changed_device = [], None, None
        if self._recorder is not None:
            self._recorder(readings, room, device, ack, message_bytes)
        elif ack is not None:
            ack()

    def restore_devices(self, saved: Iterable[DeviceState]) -> None:
        """Puts back what the store kept of each device: the device time of its last
        applied reading and its last state. Call before messages flow, with the
        live-state lock held."""
        for device in saved:
            if device.ts is not None and device.digest is not None:
                self._last_device_time[device.device_id] = _mark(device.ts, device.digest)
            if not self._live.devices.restore_last_state(device.device_id, device.last_state):
                self._restored[device.device_id] = device.last_state

    def connection_up(self) -> None:
        """The broker connection (re)opened: what it queued while we were away comes
        now as one burst, which says nothing about how fast devices publish, so flood
        protection rests for `reconnect_grace` seconds."""
        self._grace_until = self._clock.now() + self._reconnect_grace

    def _admit(
        self,
        device_id: str,
        message: InboundMessage,
        admitted: bool,
        route: Route | None = None,
        now: float | None = None,
    ) -> bool:
        """Flood protection: whether to process the message now."""
        if admitted:
            return True
        if now is None:
            now = self._clock.now()
        key = (message.topic, device_id)
        if now < self._grace_until or self._live.devices.admit(device_id, now):
            # Newer than anything held back on this topic.
            self._throttled.pop(key, None)
            return True
        self._stats.throttled += 1
        if len(self._throttled) < MAX_THROTTLED_TOPICS or key in self._throttled:
            self._throttled[key] = (message, route)
        return False

    def _handle(self, message: InboundMessage, admitted: bool = False, route: Route | None = None) -> None:
        """`route`: the exact route of a mapped device the message came on (`handle` looks
        it up once); None for any other topic."""
        try:
            self._process(message, admitted, route)
        except DecodeError as exc:
            self._reject(message, exc.reason, exc.detail)
        except Exception as exc:
            # A bug, not bad input: still dead-lettered and counted, and logged with
            # its traceback at most once a minute per topic, never once per message.
            self._stats.handler_errors += 1
            self._reject(message, RejectReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300], exc)

    def _process(self, message: InboundMessage, admitted: bool, route: Route | None) -> None:
        if route is not None:
            self._process_mapped(message, route, admitted)
            return
        place = self._topics.get(message.topic)
        if place is None:
            route = self._filters.match(message.topic) if self._filters else None
            if route is not None:
                self._process_mapped(message, route, admitted)
                return
            if self._announcements is not None and self._announcements.handles(message.topic):
                self._process_announcement(message)
                return
            topic = native.parse_topic(message.topic, self._prefix)
            if topic is None:
                raise DecodeError(RejectReason.UNKNOWN_TOPIC, "not a device topic of the native scheme")
            if topic.kind is TopicKind.COMMAND:
                self._stats.ignored += 1
                return
            place = self._identify(topic)
        kind = place.kind
        if kind is TopicKind.COMMAND:
            self._stats.ignored += 1
            return
        if kind is TopicKind.AVAILABILITY:
            online = native.decode_availability(message.payload)
            with self._live.lock:
                self._enter(message.topic, place)
                self._set_online(place.room_id, place.device_id, online)
        else:
            # One instant for the whole message (the rate budget, "heard", "seen"): one
            # float kept per device, not three. A device clock may move in `_check`.
            now = self._clock.now()
            if not self._admit(place.device_id, message, admitted, now=now):
                return
            payload = native.decode_state(message.payload)
            with self._live.lock:
                self._check(place.device_id, payload)
                if self._device_clock is not None:
                    now = self._clock.now()
                self._enter(message.topic, place, now)
                self._apply(place.room_id, place.device_id, payload, message, now)
        self._stats.accepted += 1

    def _process_mapped(self, message: InboundMessage, route: Route, admitted: bool) -> None:
        """A device the site config maps by topic (a dialect other than native)."""
        if route.kind is TopicKind.COMMAND:
            self._stats.ignored += 1
            return
        if route.kind is TopicKind.AVAILABILITY:
            online = route.dialect.decode_availability(message.payload)
            if online is None:
                self._stats.ignored += 1
                return
            with self._live.lock:
                self._live.heard(route.room_id, route.device_id, self._clock.now())
                self._set_online(route.room_id, route.device_id, online)
        else:
            if not self._admit(route.device_id, message, admitted, route):
                return
            decode_topic = route.dialect.decode_topic
            if decode_topic is None:
                payload = route.dialect.decode_state(message.payload)
            else:
                decoded = decode_topic(route.memory, message.topic[len(route.base) + 1 :], message.payload)
                if decoded is None:
                    self._stats.ignored += 1
                    return
                payload = decoded
            with self._live.lock:
                self._check(route.device_id, payload)
                self._live.heard(route.room_id, route.device_id, self._clock.now())
                self._apply(route.room_id, route.device_id, payload, message)
        self._stats.accepted += 1

    def _process_announcement(self, message: InboundMessage) -> None:
        """A device announcing itself (discovery): devices mapped, moved or dropped."""
        assert self._announcements is not None
        outcome = self._announcements.handle(message, self._clock.now())
        self._after_announcements(outcome)
        for reason, detail in outcome.refused:
            self._reject(message, reason, detail)
        if not outcome.refused:
            self._stats.accepted += 1

    def _after_announcements(self, outcome: AnnouncementOutcome) -> None:
        for device in outcome.removed:
            self._last_device_time.pop(device, None)
            self._restored.pop(device, None)
        if self._recorder is not None:
            for state in outcome.rooms.values():
                self._recorder([], state, None, None, None)

    def _order(self, device_id: str, ts: float, message: InboundMessage, now: float) -> str:
        """ "apply", "late" (older than a reading already applied: it goes into the
        history but never overwrites the newer state) or "repeat" (an exact repeat
        of the last one: nothing to do)."""
        if ts > now + MAX_CLOCK_SKEW:
            return "apply"  # a device clock far ahead says nothing about order
        last = self._last_device_time.get(device_id)
        if last is not None and ts < last.real:
            self._stats.late += 1
            return "late"
        # Stable across processes (unlike hash()): it is stored with the device state.
        digest = zlib.crc32(message.payload)
        if last is not None and ts == last.real and digest == last.imag:
            self._stats.duplicates += 1
            return "repeat"
        self._last_device_time[device_id] = _mark(ts, digest)
        return "apply"

    def _set_online(self, room_id: str, device_id: str, online: bool) -> None:
        now = self._clock.now()
        self._live.devices.set_online(device_id, online, now)
        if self._automation is not None:
            self._automation.after_availability(room_id, device_id, online, now)
        elif not online:
            self._live.forget(room_id, device_id, now)
        self._changed_room = self._live.state_of(room_id)

    def _apply(
        self,
        room_id: str,
        device_id: str,
        payload: DevicePayload,
        message: InboundMessage,
        now: float | None = None,
    ) -> None:
        if now is None:
            now = self._clock.now()
        if self._restored and device_id in self._restored:
            self._live.devices.restore_last_state(device_id, self._restored.pop(device_id))
        if payload.ts is None:
            fields = self._fields_to_keep(payload)
            if message.retained and self._live.devices.holds(device_id, fields):
                # The broker replaying (on subscribe) what the device last said, which
                # its state already holds, restored after a restart or heard before a
                # resubscribe: no new evidence, nothing to apply or record.
                self._stats.duplicates += 1
                return
        else:
            order = self._order(device_id, payload.ts.timestamp(), message, now)
            if order == "repeat":
                return
            fields = self._fields_to_keep(payload)
            if order == "late":
                self._record_readings(room_id, device_id, fields, payload, now)
                return
        self._live.devices.observe(device_id, payload, fields, now, live=not message.retained)
        if self._recorder is not None:
            mark = self._last_device_time.get(device_id)
            self._changed_device = DeviceState(
                device_id,
                room_id,
                mark.real if mark is not None else None,
                int(mark.imag) if mark is not None else None,
                self._live.devices.last_state_of(device_id),
            )
        if message.retained and self._live.devices.is_offline(device_id):
            # What an offline device last said (replayed by the broker on subscribe)
            # is kept as its last state, not taken as evidence about the room now.
            return
        before = self._live.state_of(room_id)
        self._live.apply(room_id, device_id, payload, now)
        after = self._live.state_of(room_id)
        if self._automation is not None:
            self._automation.after_reading(room_id, device_id, fields, before, after, now)
        self._record_readings(room_id, device_id, fields, payload, now)
        self._changed_room = after

    def _record_readings(
        self, room_id: str, device_id: str, fields: dict[str, Any], payload: DevicePayload, now: float
    ) -> None:
        if self._recorder is None or not self._record_readings_on:
            return
        building, floor = self._place_of(room_id)
        self._readings = readings_from(
            fields,
            device_id=device_id,
            room_id=room_id,
            building=building,
            floor=floor,
            ts=payload.ts.timestamp() if payload.ts is not None else now,
            received_at=now,
        )

    def _place_of(self, room_id: str) -> tuple[str, str]:
        place = self._places.get(room_id)
        if place is None:
            config = self._live.config_of(room_id)
            place = self._places[room_id] = (config.building, str(config.floor))
        return place

    def _identify(self, topic: native.NativeTopic) -> NativePlace:
        """Which room and device a native topic is about (see `devices.identity`):
        rejects a known room or a configured device on a topic of another building
        (`wrong_building`) or another room or floor (`wrong_room`)."""
        room = self._live.room_config(topic.room)
        if room is not None and room.building != topic.building:
            raise DecodeError(
                RejectReason.WRONG_BUILDING,
                f"room {topic.room} is in building {room.building}, not {topic.building}",
            )
        if room is not None and room.floor != topic.floor:
            raise DecodeError(
                RejectReason.WRONG_ROOM, f"room {topic.room} is on floor {room.floor}, not {topic.floor}"
            )
        home = self._live.devices.configured_room(topic.device)
        if home is not None:
            if home != topic.room:
                building = self._live.config_of(home).building
                reason = (
                    RejectReason.WRONG_BUILDING if building != topic.building else RejectReason.WRONG_ROOM
                )
                raise DecodeError(reason, f"device {topic.device} is configured in room {home} ({building})")
            return NativePlace.of(topic, topic.device)
        device_id = identity.auto_device_id(topic.room, topic.device)
        known = self._live.devices.spec_of(device_id)
        if known is not None:
            spec, configured = known
            if configured or spec.room_id != topic.room or spec.name != topic.device:
                raise DecodeError(
                    RejectReason.ID_CONFLICT,
                    f"id {device_id} of device {topic.device} in room {topic.room} "
                    f"already names device {spec.name or spec.id} of room {spec.room_id}",
                )
        elif not self._registry.auto_register:
            raise DecodeError(
                RejectReason.UNKNOWN_DEVICE,
                f"device {topic.device} of room {topic.room} is not configured "
                "(registry.auto_register is off)",
            )
        return NativePlace.of(topic, device_id)

    def _enter(self, raw: str, place: NativePlace, now: float | None = None) -> None:
        """Registers the device (and its room) if new, within the registry's limits,
        and notes that it was heard from (call with the live-state lock held)."""
        if raw not in self._topics:
            self._register(place, raw)
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            self._topics[raw] = place
        self._live.heard(place.room_id, place.device_id, self._clock.now() if now is None else now)

    def _register(self, place: NativePlace, raw: str) -> None:
        limits = self._registry
        new_room = self._live.room_config(place.room_id) is None
        new_device = place.device_id not in self._live.devices
        if new_device and self._live.devices.auto_count >= limits.max_auto_devices:
            raise DecodeError(
                RejectReason.REGISTRY_FULL,
                f"{self._live.devices.auto_count} auto-registered devices (registry.max_auto_devices)",
            )
        if new_room and self._live.auto_room_count >= limits.max_auto_rooms:
            raise DecodeError(
                RejectReason.REGISTRY_FULL,
                f"{self._live.auto_room_count} auto-registered rooms (registry.max_auto_rooms)",
            )
        now = self._clock.now()
        if new_room:
            self._live.ensure_room(place.room_id, place.building, place.floor, now)
            log.info(kv("room registered", room=place.room_id, building=place.building, floor=place.floor))
        if new_device:
            built = native.state_topic(self._prefix, place.building, place.floor, place.room_id, place.device)
            self._live.devices.ensure(
                place.device_id,
                place.room_id,
                # The string the topic cache keeps anyway, when it is the same topic.
                topic=raw if built == raw else built,
                name=place.device,
            )
            log.info(kv("device registered", device=place.device_id, room=place.room_id))

    def _check(self, device_id: str, payload: DevicePayload) -> None:
        """What a decoded payload must also satisfy: a sane device time, and the
        registry's limits on fields (call with the live-state lock held)."""
        device_time = None
        if payload.ts is not None:
            # The first device time sets a device clock, however far from the system's.
            first = self._device_clock is not None and not self._device_clock.started
            device_time = _check_device_time(payload.ts, self._clock.now(), bounded_ahead=not first)
        extra = payload.model_extra
        if extra:
            limit = self._registry.max_field_bytes
            for key, value in extra.items():
                bad = _field_problem(value, limit)
                if bad is not None:
                    raise DecodeError(bad[0], f"{key[:80]}: {bad[1]}")
        problem = self._live.devices.fields_problem(
            device_id, payload.model_fields_set, self._registry.max_fields
        )
        if problem is not None:
            raise DecodeError(RejectReason.REGISTRY_FULL, problem)
        if device_time is not None and self._device_clock is not None:
            self._device_clock.follow(device_time)

    def forget_silent(self) -> tuple[int, int]:
        """Forgets auto-registered devices and rooms silent for `registry.forget_after`
        (the ticker calls this every tick; it looks at most once a minute). Returns
        how many devices and rooms were forgotten."""
        now = self._clock.now()
        if now < self._next_sweep:
            return 0, 0
        after = self._registry.forget_after
        self._next_sweep = now + min(FORGET_SWEEP_INTERVAL, max(after / 10, 0.5))
        self.retry_announced()
        with self._serial:
            with self._live.lock:
                rooms, devices, changed = self._live.forget_silent(now, after)
                if self._automation is not None and (rooms or devices):
                    self._automation.forget(rooms, [device for device, _ in devices])
            if not rooms and not devices:
                return 0, 0
            self._topics.clear()
            for device, _ in devices:
                self._last_device_time.pop(device, None)
                self._restored.pop(device, None)
            for room in rooms:
                self._places.pop(room, None)
            if self._recorder is not None:
                for state in changed:
                    self._recorder([], state, None, None, None)
        log.info(kv("silent devices forgotten", devices=len(devices), rooms=len(rooms), after=after))
        return len(devices), len(rooms)

    def retry_announced(self) -> None:
        """Places announced devices that no room took yet (rooms appear at run time);
        the ticker's sweep calls this as often as it looks for silent devices."""
        if self._announcements is None:
            return
        with self._serial:
            self._after_announcements(self._announcements.retry(self._clock.now()))

    def _fields_to_keep(self, payload: DevicePayload) -> dict[str, Any]:
        # Straight from the validated attributes: model_dump would cost as much as
        # the validation itself on this path.
        fields = {
            key: value for key in payload.model_fields_set if (value := getattr(payload, key)) is not None
        }
        if payload.credential is not None:
            fields["credential"] = self._pseudonymizer.pseudonym(payload.credential)
        if payload.__pydantic_extra__:
            self._pseudonymise_extras(payload.__pydantic_extra__, fields)
        return fields

    def _pseudonymise_extras(self, extra: dict[str, Any], fields: dict[str, Any]) -> None:
        """Fields outside the vocabulary that hold a credential (`Credential`,
        `card_id`, nested ones): the first top-level one is the credential when
        `credential` itself is missing; every other keeps its key, pseudonymised."""
        pseudonym = self._pseudonymizer.pseudonym_of
        for key, value in extra.items():
            if value is None:
                continue
            if is_credential_key(key):
                del fields[key]
                if "credential" in fields:
                    fields[key] = pseudonym(value)
                else:
                    fields["credential"] = pseudonym(value)
            elif isinstance(value, dict | list):
                fields[key] = scrub(value, pseudonym)

    def _reject(
        self, message: InboundMessage, reason: str, detail: str, error: BaseException | None = None
    ) -> None:
        self._stats.reject(reason)
        now = self._clock.now()
        preview = _preview(message.payload)
        self.dead_letters.add(now, message.topic, reason, detail, preview, len(message.payload))
        key = (reason,) if reason in SITE_WIDE_REASONS else (message.topic, reason)
        allowed, held_back = self._reject_log.allow(key, now)
        if allowed:
            log.log(
                logging.ERROR if error is not None else logging.WARNING,
                kv(
                    "message rejected",
                    reason=reason,
                    topic=message.topic,
                    detail=detail,
                    payload=preview,
                    repeats_suppressed=held_back,
                ),
                exc_info=error,
            )


def _check_device_time(ts: datetime, now: float, *, bounded_ahead: bool = True) -> float:
    """The device time as epoch seconds, if it is a time the gateway may believe."""
    try:
        at = ts.timestamp()
    except (ValueError, OverflowError, OSError):
        raise DecodeError(RejectReason.OUT_OF_RANGE, f"ts: {ts.isoformat()} is not a usable time") from None
    if at < EARLIEST_DEVICE_TIME or (bounded_ahead and at > now + MAX_DEVICE_TIME_AHEAD):
        raise DecodeError(
            RejectReason.OUT_OF_RANGE,
            f"ts: {ts.isoformat()} is before 2000 or more than a day ahead of the gateway's clock",
        )
    return at


def _field_problem(value: Any, limit: int) -> tuple[str, str] | None:
    """Why a field outside the vocabulary cannot be kept: a number that is not finite
    or not a float (NaN, Infinity, a 400-digit integer: neither JSON for the API nor
    a reading for the history), or a value larger than `limit` bytes as JSON
    (roughly: walked without encoding, and no further than the limit)."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item.encode("utf-8", errors="surrogatepass")) + 3
        elif item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            if item.bit_length() > 1000:
                return RejectReason.OUT_OF_RANGE, "an integer beyond the range of numbers"
            size += item.bit_length() * 3 // 10 + 3
        elif isinstance(item, float):
            if not math.isfinite(item):
                return RejectReason.OUT_OF_RANGE, "not a finite number"
            size += 25
        elif isinstance(item, dict):
            size += 2 + sum(len(key) + 4 for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            size += 2
            stack.extend(item)
        if size > limit:
            return RejectReason.FIELD_TOO_LARGE, f"more than {limit} bytes (registry.max_field_bytes)"
    return None


def _preview(payload: bytes, limit: int = 120) -> str:
    """The start of a payload for a log line or a dead letter, with the value of every
    credential-like key blanked out, JSON or not (`devices.credentials.redact_text`)."""
    # Twice what is shown is scanned: room for blanked values (and a bound on the
    # scan's cost); up to four bytes a character.
    text = payload[: limit * 8].decode("utf-8", errors="replace")
    shown = redact_text(text[: limit * 2])
    more = len(shown) > limit or len(text) > limit * 2 or len(payload) > limit * 8
    return shown[:limit] + ("..." if more else "")
