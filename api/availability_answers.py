"""Availability answers computed once and reused until something they rest on changes.

A booking system polls whole-campus availability: 2,000 rooms, 720 KB of JSON.
Computed afresh, that is tens of milliseconds of Python per request; yet the
answer only changes when a booking, a room's occupancy or a presence sensor's
being online changes, or when the window crosses a booking's start or end (a
window starting at now, the default, crosses one only now and then). So answers
are kept on two levels, both compared against what they were made from:

- **a room's answer**: its JSON (bytes), with the room's config, its bookings (a
  tuple the bookings service replaces whole on a change), for a window that
  includes now its occupancy and whether its sensors are offline, and the windows
  it holds for (`rules.bookings.RoomAvailability.holds_for`). One per room, per
  whether the caller may see titles, per whether the window includes now;
- **a query's answer**: its rooms' JSON joined in best-fit order, with the
  gateway's `AvailabilityVersion` and the windows every one of its rooms holds
  for. Keyed by everything that decides which rooms the caller gets and what of
  them: the key's building scope, whether it may see titles, the filters, whether
  the window includes now and its length. A key scoped to one building never
  shares an answer with a key that sees others.

A request whose query's answer still holds costs two comparisons and the copy of
the bytes; one whose answer does not is rebuilt from the rooms' answers, computing
again only the rooms whose own answer no longer holds. Rebuilds run one at a time
(they are CPU under one GIL: running them side by side only delays each).

One instance per app (held in `app.state`), shared by its request threads.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from api.backends import AvailabilitySource
from gateway.bookings.availability_inputs import AvailabilityInputs, AvailabilityVersion
from gateway.config import RoomConfig
from rules.bookings import Booking, Windows
from rules.bookings import availability as room_availability
from rules.occupancy import Occupancy

# Bytes of query answers kept (least recently used first out): a whole campus of
# 2,000 rooms is 720 KB, so this is dozens of distinct campus-sized queries.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_ANSWERS = 1_024


@dataclass(frozen=True, slots=True)
class AvailabilityQuery:
    """Which rooms a caller asks about and may see, and what it may see of them."""

    # The key's buildings (None: every building).
    buildings: frozenset[str] | None
    # Titles and organizers of bookings (operator keys and above).
    details: bool
    building: str | None = None
    floor: str | None = None
    type: str | None = None
    min_capacity: int = 0
    # Case-folded; a room must have all of them.
    features: frozenset[str] = frozenset()
    # Only free (True) or taken (False) rooms; None: both.
    available: bool | None = None

    def wants(self, c: RoomConfig) -> bool:
        return (
            (self.buildings is None or c.building in self.buildings)
            and (self.building is None or c.building == self.building)
            and (self.floor is None or c.floor == self.floor)
            and (self.type is None or c.type == self.type)
            and c.capacity >= self.min_capacity
            and (not self.features or self.features <= {f.casefold() for f in c.features})
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A query's rooms as a JSON array, best fit first, and how many."""

    rooms: bytes
    count: int
    # What it was made from, and the windows it holds for.
    version: AvailabilityVersion
    holds_for: Windows
    # The bookable rooms it was chosen from, and the ones the query wants of them in
    # best-fit order but for availability (capacity, building, floor, id): kept for
    # the next rebuild of the same query, while the rooms stay the same.
    bookable: tuple[RoomConfig, ...]
    wanted: tuple[RoomConfig, ...]


@dataclass(frozen=True, slots=True)
class _RoomAnswer:
    config: RoomConfig
    bookings: tuple[Booking, ...]
    # Only for a window that includes now; else None and False.
    occupancy: Occupancy | None
    sensors_offline: bool
    holds_for: Windows
    available: bool
    json: bytes


# (query, whether the window includes now, its length in seconds)
_AnswerKey = tuple[AvailabilityQuery, bool, float]
# (room id, details, whether the window includes now)
_RoomKey = tuple[str, bool, bool]


def _best_fit(c: RoomConfig) -> tuple[int, str, str, str]:
    # The smallest room that fits first; available rooms go before the others.
    return c.capacity, c.building, c.floor, c.id


class AvailabilityAnswers:
    def __init__(self, *, max_bytes: int = MAX_ANSWER_BYTES, max_answers: int = MAX_ANSWERS) -> None:
        self._max_bytes = max_bytes
        self._max_answers = max_answers
        self._answers: OrderedDict[_AnswerKey, Answer] = OrderedDict()
        self._bytes = 0
        # Guards `_answers` and `_bytes` (held for dictionary operations only).
        self._lock = threading.Lock()
        # One rebuild at a time; guards `_rooms`. At most four per bookable room.
        self._rebuild = threading.Lock()
        self._rooms: dict[_RoomKey, _RoomAnswer] = {}
        # Rooms computed afresh and answers rebuilt, since start (for tests and metrics).
        self.rooms_computed = 0
        self.rebuilds = 0

    def cached(
        self, version: AvailabilityVersion, query: AvailabilityQuery, start: float, end: float, now: float
    ) -> Answer | None:
        """The kept answer for the query and window when it still holds; never blocks
        for longer than a dictionary lookup (safe on the event loop)."""
        includes_now = start <= now < end
        key = (query, includes_now, end - start)
        with self._lock:
            answer = self._answers.get(key)
            if answer is None:
                return None
            if not (
                answer.version.same_as(version, includes_now=includes_now)
                and (start, end) in answer.holds_for
            ):
                return None
            self._answers.move_to_end(key)
            return answer

    def answer(
        self, gateway: AvailabilitySource, query: AvailabilityQuery, start: float, end: float, now: float
    ) -> Answer:
        """The query's answer for [start, end) at `now`: the kept one if it holds, else
        rebuilt (CPU for up to tens of milliseconds: call it off the event loop)."""
        found = self.cached(gateway.availability_version(), query, start, end, now)
        if found is not None:
            return found
        includes_now = start <= now < end
        key = (query, includes_now, end - start)
        with self._rebuild:
            # Another request may have rebuilt it while this one waited.
            found = self.cached(gateway.availability_version(), query, start, end, now)
            if found is not None:
                return found
            inputs = gateway.availability_inputs(includes_now=includes_now)
            with self._lock:
                previous = self._answers.get(key)
            answer = self._build(inputs, previous, query, start, end, now)
        self._keep(key, answer)
        return answer

    def _build(
        self,
        inputs: AvailabilityInputs,
        previous: Answer | None,
        query: AvailabilityQuery,
        start: float,
        end: float,
        now: float,
    ) -> Answer:
        """Each wanted room's kept answer where it holds, else a new one; joined. One
        pass of plain comparisons per room: this runs on every change of occupancy
        anywhere on a campus."""
        includes_now = start <= now < end
        if previous is not None and previous.bookable is inputs.rooms:
            wanted = previous.wanted
        else:
            wanted = tuple(sorted((c for c in inputs.rooms if query.wants(c)), key=_best_fit))
        booked, states, offline = inputs.bookings, inputs.states, inputs.sensors_offline
        kept_rooms, details = self._rooms, query.details
        free: list[bytes] = []
        taken: list[bytes] = []
        # The windows every room's answer holds for (their intersection).
        start_from, start_until, end_after, end_until = -math.inf, math.inf, -math.inf, math.inf
        for config in wanted:
            room_id = config.id
            bookings = booked.get(room_id, ())
            occupancy = states[room_id].occupancy.state if includes_now else None
            sensors_offline = includes_now and room_id in offline
            room = kept_rooms.get((room_id, details, includes_now))
            if room is not None:
                h = room.holds_for
                if not (
                    room.bookings is bookings
                    and room.occupancy == occupancy
                    and room.sensors_offline == sensors_offline
                    and room.config is config
                    and h.start_from <= start < h.start_until
                    and h.end_after < end <= h.end_until
                ):
                    room = None
            if room is None:
                room = self._room(config, bookings, occupancy, sensors_offline, details, start, end, now)
            h = room.holds_for
            start_from = max(start_from, h.start_from)
            start_until = min(start_until, h.start_until)
            end_after = max(end_after, h.end_after)
            end_until = min(end_until, h.end_until)
            if query.available is None or room.available == query.available:
                (free if room.available else taken).append(room.json)
        self.rebuilds += 1
        chosen = free + taken
        return Answer(
            b"[" + b",".join(chosen) + b"]",
            len(chosen),
            inputs.version,
            Windows(start_from, start_until, end_after, end_until),
            inputs.rooms,
            wanted,
        )

    def _room(
        self,
        config: RoomConfig,
        bookings: tuple[Booking, ...],
        occupancy: Occupancy | None,
        sensors_offline: bool,
        details: bool,
        start: float,
        end: float,
        now: float,
    ) -> _RoomAnswer:
        """The room's answer computed afresh, and kept."""
        free = room_availability(
            bookings,
            start,
            end,
            now,
            occupied=occupancy == Occupancy.OCCUPIED,
            sensors_offline=sensors_offline,
        )
        document = {
            "id": config.id,
            "name": config.name,
            "building": config.building,
            "floor": config.floor,
            "type": config.type,
            "capacity": config.capacity,
            "features": config.features,
            "available": free.available,
            "reasons": free.reasons,
            "free_until": _time(free.free_until),
            "next_booking": _summary(free.next_booking, details),
            "occupancy": occupancy,
        }
        made = _RoomAnswer(
            config,
            bookings,
            occupancy,
            sensors_offline,
            free.holds_for,
            free.available,
            orjson.dumps(document, option=orjson.OPT_UTC_Z),
        )
        self._rooms[(config.id, details, start <= now < end)] = made
        self.rooms_computed += 1
        return made

    def _keep(self, key: _AnswerKey, answer: Answer) -> None:
        size = len(answer.rooms)
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._bytes -= len(old.rooms)
            self._answers[key] = answer
            self._bytes += size
            while self._bytes > self._max_bytes or len(self._answers) > self._max_answers:
                _, evicted = self._answers.popitem(last=False)
                self._bytes -= len(evicted.rooms)


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _summary(booking: Booking | None, details: bool) -> dict[str, Any] | None:
    """BookingSummary as plain data."""
    if booking is None:
        return None
    return {
        "id": booking.id,
        "start": _time(booking.start),
        "end": _time(booking.end),
        # orjson writes an enum as its value.
        "status": booking.status,
        "title": booking.title if details else None,
        "organizer": booking.organizer if details else None,
    }
