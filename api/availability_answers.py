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

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.bookings.availability_inputs import AvailabilityVersion, RoomInputs
from gateway.config import RoomConfig
from gateway.runtime.gateway import Gateway
from rules.bookings import EVERY_WINDOW, Booking, Windows
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


@dataclass(frozen=True, slots=True)
class _RoomAnswer:
    config: RoomConfig
    bookings: tuple[Booking, ...]
    # Only for a window that includes now; else None and False.
    occupancy: Occupancy | None
    sensors_offline: bool
    holds_for: Windows
    available: bool
    order: tuple[Any, ...]
    json: bytes


# (query, whether the window includes now, its length in seconds)
_AnswerKey = tuple[AvailabilityQuery, bool, float]
# (room id, details, whether the window includes now)
_RoomKey = tuple[str, bool, bool]


class AvailabilityAnswers:
    def __init__(self, *, max_bytes: int = MAX_ANSWER_BYTES, max_answers: int = MAX_ANSWERS) -> None:
        self._max_bytes = max_bytes
        self._max_answers = max_answers
        self._answers: OrderedDict[_AnswerKey, Answer] = OrderedDict()
        self._bytes = 0
        # Guards `_answers` and `_bytes` (held for dictionary operations only).
        self._lock = threading.Lock()
        # One rebuild at a time; guards `_rooms`.
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
        self, gateway: Gateway, query: AvailabilityQuery, start: float, end: float, now: float
    ) -> Answer:
        """The query's answer for [start, end) at `now`: the kept one if it holds, else
        rebuilt (CPU for up to tens of milliseconds: call it off the event loop)."""
        found = self.cached(gateway.availability_version(), query, start, end, now)
        if found is not None:
            return found
        with self._rebuild:
            # Another request may have rebuilt it while this one waited.
            found = self.cached(gateway.availability_version(), query, start, end, now)
            if found is not None:
                return found
            includes_now = start <= now < end
            version, inputs = gateway.availability_inputs(query.wants, includes_now=includes_now)
            answer = self._build(version, inputs, query, start, end, now)
        self._keep((query, includes_now, end - start), answer)
        return answer

    def _build(
        self,
        version: AvailabilityVersion,
        inputs: list[RoomInputs],
        query: AvailabilityQuery,
        start: float,
        end: float,
        now: float,
    ) -> Answer:
        includes_now = start <= now < end
        holds_for = EVERY_WINDOW
        chosen: list[_RoomAnswer] = []
        for room_inputs in inputs:
            room = self._room(room_inputs, query.details, start, end, now, includes_now)
            holds_for &= room.holds_for
            if query.available is None or room.available == query.available:
                chosen.append(room)
        chosen.sort(key=lambda r: r.order)
        self.rebuilds += 1
        return Answer(b"[" + b",".join(r.json for r in chosen) + b"]", len(chosen), version, holds_for)

    def _room(
        self, inputs: RoomInputs, details: bool, start: float, end: float, now: float, includes_now: bool
    ) -> _RoomAnswer:
        """The room's kept answer when it holds for the window, else a new one (kept)."""
        live = inputs.room
        config = live.config
        occupancy = live.state.occupancy.state if includes_now else None
        offline = inputs.sensors_offline if includes_now else False
        key = (config.id, details, includes_now)
        kept = self._rooms.get(key)
        if (
            kept is not None
            and kept.config is config
            and kept.bookings is inputs.bookings
            and kept.occupancy == occupancy
            and kept.sensors_offline == offline
            and (start, end) in kept.holds_for
        ):
            return kept
        free = room_availability(
            inputs.bookings,
            start,
            end,
            now,
            occupied=occupancy == Occupancy.OCCUPIED,
            sensors_offline=offline,
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
            inputs.bookings,
            occupancy,
            offline,
            free.holds_for,
            free.available,
            # Best fit: available first, then the smallest that fits.
            (not free.available, config.capacity, config.building, config.floor, config.id),
            orjson.dumps(document, option=orjson.OPT_UTC_Z),
        )
        self._rooms[key] = made
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
