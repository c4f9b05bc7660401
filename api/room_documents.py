"""Room documents (the JSON of `GET /v1/rooms/{id}`) rendered once per change, shared
by the retained-state publisher and the room routes.

A whole-campus `GET /v1/rooms` is 2,000 room documents, 1.16 MB: built with pydantic
on every request it answered 14 times a second. Yet a room's document changes only
when the room does. So each room's document is kept with what it was made from:

- the state publisher (`gateway.runtime.room_state_publisher`) renders through
  `render` (the composition root hands it to the gateway as its `RoomRenderer`): a
  room that changed is rendered once, for MQTT, the stream and the API alike;
- a listing joins the kept documents of the rooms it wants, rendering again only
  those that no longer hold; the joined body is kept per query (the key's building
  scope, whether it may see booking titles, the filters) until a room's state, the
  room list or a booking changes, or time crosses a boundary one of its rooms rests on.

A room's document holds while its config, state and `configured` are the very
objects it was made from (states are frozen, replaced on change) and, for its
booking in progress and next one, while the room's bookings are the same tuple (the
bookings service replaces it whole) and now stays between the same two booking
edges (`rules.bookings.current_and_next_holds`). One part of a document depends on
now by itself: `energy` counts a lit room's draw up to the moment asked. That part is
kept apart, with the window over which its rounded figures stay the same
(`api.room_energy`: a day for a dark room, a fraction of a second for a lit one),
and put back between the two halves of the document when it is sent.

So every answer is, byte for byte, what `RoomOut.of` gives at the same now
(tests/unit/api/test_room_documents.py compares them after every kind of change).
Thread safe: entries are immutable and replaced whole; campus builds run one at a time
(they are CPU under one GIL: side by side they only delay each other).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo

from api.room_energy import energy_holds
from api.schemas import EnergyOut, room_json
from gateway.config import RoomConfig
from gateway.live_state import LiveRoom, RoomsView
from rules.bookings import Booking, current_and_next, current_and_next_holds
from rules.occupancy import Occupancy
from rules.room_model import EnergyToday, RoomState

Pair = tuple[Booking | None, Booking | None]
NO_BOOKINGS: tuple[Booking, ...] = ()
ENERGY_KEY = b'"energy":'
# Joined bodies kept (least recently used first out): a campus is 1.16 MB.
MAX_BODIES = 32
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RoomsQuery:
    """Which rooms a listing wants and may see, and what it may see of them."""

    # The key's buildings (None: every building).
    buildings: frozenset[str] | None
    # Titles and organizers of bookings (operator keys and above).
    details: bool
    building: str | None = None
    floor: str | None = None
    type: str | None = None
    occupied: bool | None = None
    bookable: bool | None = None

    def wants(self, c: RoomConfig) -> bool:
        """By the room's description (occupancy aside)."""
        return (
            (self.buildings is None or c.building in self.buildings)
            and (self.building is None or c.building == self.building)
            and (self.floor is None or c.floor == self.floor)
            and (self.type is None or c.type == self.type)
            and (self.bookable is None or c.bookable == self.bookable)
        )


@dataclass(frozen=True, slots=True)
class _Document:
    config: RoomConfig
    state: RoomState
    configured: bool
    sensors_offline: bool
    pair: Pair
    # The bookings `pair` was worked out from, and [since, until) it holds over; None
    # (and an empty window) for a document the publisher asked for with its own pair.
    bookings: tuple[Booking, ...] | None
    since: float
    until: float
    json: bytes
    # The document before and after its `energy` value; None: the room has no energy
    # figures (both null whenever asked), so `json` is the answer as it is.
    head: bytes | None
    tail: bytes


@dataclass(frozen=True, slots=True)
class _Energy:
    state: RoomState
    today: EnergyToday
    # The rounded figures, their JSON, and [since, until) they hold over.
    figures: tuple[float, float]
    json: bytes
    since: float
    until: float


@dataclass(frozen=True, slots=True)
class _Body:
    version: tuple[int, int]
    booked: Mapping[str, tuple[Booking, ...]]
    since: float
    until: float
    body: bytes


# (buildings, building, floor, type, bookable): a listing's rooms but for occupancy.
_OrderKey = tuple[frozenset[str] | None, str | None, str | None, str | None, bool | None]


class RoomDocuments:
    def __init__(self, *, max_bodies: int = MAX_BODIES, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._max_bodies = max_bodies
        self._max_bytes = max_bytes
        # Room id -> its document: as a viewer key gets it, and with booking titles.
        self._documents: tuple[dict[str, _Document], dict[str, _Document]] = ({}, {})
        self._energy: dict[str, _Energy] = {}
        # A listing's room ids in answer order, and the rooms_version they are of.
        self._orders: dict[_OrderKey, tuple[int, tuple[tuple[str, RoomConfig], ...]]] = {}
        self._bodies: OrderedDict[RoomsQuery, _Body] = OrderedDict()
        self._body_bytes = 0
        # Guards `_bodies` and `_body_bytes` (held for dictionary operations only).
        self._lock = threading.Lock()
        # One campus build at a time; guards `_orders` and the pruning of removed rooms.
        self._build = threading.Lock()
        self._pruned_at: int | None = None
        # Documents rendered and listings joined since start (for tests and benchmarks).
        self.rendered = 0
        self.joined = 0

    # The state publisher's renderer (gateway.runtime.room_state_publisher.RoomRenderer)

    def render(self, room: LiveRoom, now: float, pair: Pair) -> bytes:
        """The room's document as a viewer key gets it: the kept one when it was made
        from this very state and bookings, else rendered (and kept)."""
        doc = self._documents[False].get(room.config.id)
        if (
            doc is not None
            and doc.state is room.state
            and doc.config is room.config
            and doc.configured == room.configured
            and doc.sensors_offline == room.sensors_offline
            and doc.pair == pair
        ):
            return doc.json
        return self._new(room, now, pair, None, (now, now), details=False).json

    # What the routes answer

    def room(self, room: LiveRoom, bookings: tuple[Booking, ...], now: float, *, details: bool) -> bytes:
        """The body of GET /v1/rooms/{id} at `now`; `bookings`: the room's active ones."""
        doc = self._document(room, bookings, now, details)
        if doc.head is None:
            return doc.json
        return doc.head + self._energy_of(room.state, room.zone, now).json + doc.tail

    def kept_rooms(
        self, view: RoomsView, booked: Mapping[str, tuple[Booking, ...]], query: RoomsQuery, now: float
    ) -> bytes | None:
        """The body of GET /v1/rooms for `query` when the kept one still holds, else None;
        never longer than a dictionary lookup (safe on the event loop)."""
        with self._lock:
            kept = self._bodies.get(query)
            if (
                kept is None
                or kept.version != view.version
                or kept.booked is not booked
                or not kept.since <= now < kept.until
            ):
                return None
            self._bodies.move_to_end(query)
            return kept.body

    def rooms(
        self, view: RoomsView, booked: Mapping[str, tuple[Booking, ...]], query: RoomsQuery, now: float
    ) -> bytes:
        """The body of GET /v1/rooms for `query` at `now`: kept, or joined from the rooms'
        documents (a few ms of CPU for a campus: call it off the event loop)."""
        kept = self.kept_rooms(view, booked, query, now)
        if kept is not None:
            return kept
        with self._build:
            kept = self.kept_rooms(view, booked, query, now)
            if kept is not None:
                return kept
            joined = self._join(view, booked, query, now)
        assert joined is not None, "no limit on renders"
        self._keep(query, joined)
        return joined.body

    def rooms_at_once(
        self,
        view: RoomsView,
        booked: Mapping[str, tuple[Booking, ...]],
        query: RoomsQuery,
        now: float,
        *,
        max_renders: int,
    ) -> bytes | None:
        """`rooms`, when that is quick: None (after keeping what it rendered) when
        another build is running or more than `max_renders` rooms need rendering. For
        the event loop: joining kept documents is about a millisecond for a campus,
        less than handing the work to a thread and waiting for the GIL to come back."""
        kept = self.kept_rooms(view, booked, query, now)
        if kept is not None:
            return kept
        if not self._build.acquire(blocking=False):
            return None
        try:
            joined = self._join(view, booked, query, now, max_renders)
        finally:
            self._build.release()
        if joined is None:
            return None
        self._keep(query, joined)
        return joined.body

    # Building blocks

    def _join(
        self,
        view: RoomsView,
        booked: Mapping[str, tuple[Booking, ...]],
        query: RoomsQuery,
        now: float,
        max_renders: int | None = None,
    ) -> _Body | None:
        """One pass of identity checks per wanted room (this runs whenever any room of
        a campus changed), rendering only rooms whose document no longer holds; None
        once more than `max_renders` rooms needed rendering (what they got is kept)."""
        self._prune(view)
        states, configured, zone, offline = view.states, view.configured, view.zone, view.sensors_offline
        # Most of the time no room has all its sensors offline: then a document says so
        # by itself (a cheaper test than a set lookup per room).
        any_offline = bool(offline)
        details, occupied = query.details, query.occupied
        documents, energies = self._documents[details], self._energy
        since, until = -math.inf, math.inf
        # The rooms' parts, each room's led by a comma: joined in one copy.
        pieces: list[bytes] = []
        add = pieces.extend
        count = 0
        rendered = self.rendered
        # Plain comparisons only in this loop: it runs for every room of a listing
        # whenever any of them changed, a lit room's energy figures included.
        for room_id, config in self._order(view, query):
            state = states[room_id]
            if occupied is not None and (state.occupancy.state == Occupancy.OCCUPIED) != occupied:
                continue
            bookings = booked.get(room_id, NO_BOOKINGS)
            doc = documents.get(room_id)
            if (
                doc is None
                or doc.state is not state
                or doc.bookings is not bookings
                or not doc.since <= now < doc.until
                or doc.config is not config
                or ((any_offline or doc.sensors_offline) and doc.sensors_offline is not (room_id in offline))
            ):
                room = LiveRoom(config, state, room_id in configured, zone, room_id in offline)
                doc = self._document(room, bookings, now, details)
                if max_renders is not None and self.rendered - rendered > max_renders:
                    return None
            if doc.since > since:
                since = doc.since
            if doc.until < until:
                until = doc.until
            count += 1
            head = doc.head
            if head is None:
                add((b",", doc.json))
                continue
            energy = energies.get(room_id)
            if energy is None or energy.state is not state or not energy.since <= now < energy.until:
                energy = self._energy_of(state, zone, now)
            if energy.since > since:
                since = energy.since
            if energy.until < until:
                until = energy.until
            add((b",", head, energy.json, doc.tail))
        self.joined += 1
        if pieces:
            pieces[0] = b'{"rooms":['
        else:
            pieces.append(b'{"rooms":[')
        pieces.append(b'],"count":%d}' % count)
        return _Body(view.version, booked, since, until, b"".join(pieces))

    def _document(
        self, room: LiveRoom, bookings: tuple[Booking, ...], now: float, details: bool
    ) -> _Document:
        """The room's kept document when it holds at `now`, else a new one."""
        documents = self._documents[details]
        config = room.config
        doc = documents.get(config.id)
        pair = None
        if (
            doc is not None
            and doc.state is room.state
            and doc.config is config
            and doc.configured == room.configured
            and doc.sensors_offline == room.sensors_offline
        ):
            if doc.bookings is bookings and doc.since <= now < doc.until:
                return doc
            pair = current_and_next(bookings, now)
            if pair == doc.pair:
                # Still right (rendered by the publisher, or bookings elsewhere changed):
                # now known to hold over these bookings' window.
                since, until = current_and_next_holds(bookings, now)
                doc = dataclasses.replace(doc, bookings=bookings, since=since, until=until)
                documents[config.id] = doc
                return doc
        if pair is None:
            pair = current_and_next(bookings, now)
        return self._new(room, now, pair, bookings, current_and_next_holds(bookings, now), details=details)

    def _new(
        self,
        room: LiveRoom,
        now: float,
        pair: Pair,
        bookings: tuple[Booking, ...] | None,
        window: tuple[float, float],
        *,
        details: bool,
    ) -> _Document:
        json = room_json(room, now, pair, details=details)
        head, tail = None, b""
        if room.state.energy_at is not None:
            # The first '"energy":' is the field's: a string's quotes are escaped.
            start = json.index(ENERGY_KEY) + len(ENERGY_KEY)
            end = json.index(b"}", start) + 1
            head, tail = json[:start], json[end:]
        doc = _Document(
            room.config,
            room.state,
            room.configured,
            room.sensors_offline,
            pair,
            bookings,
            *window,
            json,
            head,
            tail,
        )
        self._documents[details][room.config.id] = doc
        self.rendered += 1
        return doc

    def _energy_of(self, state: RoomState, zone: tzinfo, now: float) -> _Energy:
        kept = self._energy.get(state.room_id)
        if kept is not None and kept.state is not state:
            kept = None
        if kept is not None and kept.since <= now < kept.until:
            return kept
        today = kept.today if kept is not None and kept.today.since <= now < kept.today.until else None
        if today is None:
            today = state.energy_today(now, zone)
            assert today is not None, "a room with energy figures"
        kwh, wasted = today.at(now)
        figures = (round(kwh, EnergyOut.DIGITS), round(wasted, EnergyOut.DIGITS))
        if kept is not None and kept.figures == figures:
            json = kept.json
        else:
            json = EnergyOut(kwh_today=figures[0], kwh_wasted_today=figures[1]).model_dump_json().encode()
        energy = _Energy(state, today, figures, json, *energy_holds(today, now))
        self._energy[state.room_id] = energy
        return energy

    def _order(self, view: RoomsView, query: RoomsQuery) -> tuple[tuple[str, RoomConfig], ...]:
        """The rooms the query wants by their description, in answer order (building,
        floor, id), with their configs; worked out again when the room list changes."""
        key = (query.buildings, query.building, query.floor, query.type, query.bookable)
        rooms_version = view.version[1]
        found = self._orders.get(key)
        if found is not None and found[0] == rooms_version:
            return found[1]
        wanted = sorted((c for c in view.configs.values() if query.wants(c)), key=_answer_order)
        rooms = tuple((c.id, c) for c in wanted)
        if len(self._orders) >= 4 * self._max_bodies:
            self._orders.clear()
        self._orders[key] = (rooms_version, rooms)
        return rooms

    def _prune(self, view: RoomsView) -> None:
        """Forgets the documents of rooms no longer there (forgotten auto-registered rooms)."""
        rooms_version = view.version[1]
        if self._pruned_at == rooms_version:
            return
        self._pruned_at = rooms_version
        for documents in self._documents:
            for room_id in [room_id for room_id in documents if room_id not in view.configs]:
                documents.pop(room_id, None)
        for room_id in [room_id for room_id in self._energy if room_id not in view.configs]:
            self._energy.pop(room_id, None)

    def _keep(self, query: RoomsQuery, body: _Body) -> None:
        size = len(body.body)
        if size > self._max_bytes or body.since >= body.until:
            return
        with self._lock:
            old = self._bodies.pop(query, None)
            if old is not None:
                self._body_bytes -= len(old.body)
            self._bodies[query] = body
            self._body_bytes += size
            while self._body_bytes > self._max_bytes or len(self._bodies) > self._max_bodies:
                _, evicted = self._bodies.popitem(last=False)
                self._body_bytes -= len(evicted.body)


def _answer_order(c: RoomConfig) -> tuple[str, str, str]:
    return c.building, c.floor, c.id
