"""Bookings in action: the writes a booking system makes, and the check-ins, releases
and early ends that presence evidence calls for (`rules.bookings.decide`).

One lock serialises every write, so a clash check and the write it guards are one
step; the store is written first and the in-memory index after, so a failed write
changes nothing. Readers (availability, room status, rule facts) never take that
lock: after each write the service publishes a new snapshot of the index (room ->
its bookings), and a reader takes whichever snapshot is current. The rules read it
on the ingest thread with the live-state lock held, where waiting behind a booking
write (which may wait on SQLite) would hold up actuation. The lock is never held
while taking the live state's either: the tick reads presence first, then decides.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from gateway.bookings.calendar_import import ImportPlan
from gateway.bookings.calendar_sync import SyncReport, reconcile
from gateway.bookings.index import BookingIndex
from gateway.logs import kv
from gateway.storage.bookings_store import BookingQuery, BookingStore, NoShowCount, NoShowGroup
from gateway.storage.sql import STORE_ERRORS
from rules.bookings import (
    EARLY_CHECKIN,
    NO_SENSORS,
    Booking,
    BookingPolicy,
    BookingStatus,
    Presence,
    Transition,
    apply,
    decide,
    rebooked,
    window_problem,
)

log = logging.getLogger("officegw.bookings")

# Check-ins and releases need no finer resolution than this.
TICK_INTERVAL = 0.5
PRUNE_INTERVAL = 3600.0


class BookingError(Exception):
    """A booking request that cannot be carried out; `str()` says why."""


class BookingNotFound(BookingError, LookupError):
    pass


class InvalidBooking(BookingError, ValueError):
    """The request itself is wrong (a window that ends before it starts, ...)."""


class StorageUnavailable(BookingError):
    """The store failed (disk full, read-only); nothing was changed."""


class BookingConflict(BookingError):
    """The request clashes with what is booked (`clash`, when it is a booking) or with
    the booking's status."""

    def __init__(self, message: str, clash: Booking | None = None) -> None:
        super().__init__(message)
        self.clash = clash


@dataclass(frozen=True, slots=True)
class BookingDraft:
    """What a booking system says about a booking."""

    room_id: str
    start: float
    end: float
    title: str | None = None
    organizer: str | None = None
    external_id: str | None = None
    series_id: str | None = None

    def matches(self, booking: Booking) -> bool:
        return (self.room_id, self.start, self.end, self.title, self.organizer, self.series_id) == (
            booking.room_id,
            booking.start,
            booking.end,
            booking.title,
            booking.organizer,
            booking.series_id,
        )


# What a write did: a new booking, an existing one changed, or nothing to change.
Outcome = Literal["created", "updated", "unchanged"]
PresenceReader = Callable[[Collection[str], float], Mapping[str, Presence]]
TransitionListener = Callable[[Booking, Transition], None]


def _everywhere(room_id: str) -> bool:
    return True


@contextmanager
def _storage() -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as exc:
        log.error(kv("booking not stored", error=str(exc)))
        raise StorageUnavailable(f"bookings cannot be stored right now: {exc}") from exc


class Bookings:
    def __init__(
        self,
        store: BookingStore,
        *,
        policy_for: Callable[[str], BookingPolicy],
        presence: PresenceReader,
        on_transition: TransitionListener,
        max_duration: float,
        retention: float | None = None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self._store = store
        self._policy_for = policy_for
        self._presence = presence
        self._on_transition = on_transition
        self._max_duration = max_duration
        self._retention = retention
        self._new_id = new_id
        self._lock = threading.Lock()
        self._index = BookingIndex()
        # What readers see: replaced whole after every write, never changed in place;
        # `version` counts the replacements (bumped after each: see `_publish`).
        self._rooms: Mapping[str, tuple[Booking, ...]] = {}
        self.version = 0
        self._last_tick = float("-inf")
        self._last_prune = float("-inf")
        # Transitions made by evidence and time since start, by new status.
        self.transitions: Counter[BookingStatus] = Counter()

    def load(self) -> int:
        """Fills the index from the store; returns how many bookings hold rooms."""
        active = self._store.active()
        with self._lock:
            self._index = BookingIndex(active)
            self._publish()
            return len(self._index)

    # Writes

    def create(
        self,
        draft: BookingDraft,
        now: float,
        *,
        actor: str,
        visible: Callable[[str], bool] = _everywhere,
    ) -> tuple[Booking, Outcome]:
        """A new booking, or, when `draft.external_id` is known already, that booking
        brought up to date (an idempotent re-send)."""
        self._check_window(draft)
        with self._lock:
            existing = self._store.by_external_id(draft.external_id) if draft.external_id else None
            if existing is not None:
                if not visible(existing.room_id):
                    raise BookingConflict("external_id is taken by a booking this key cannot see")
                if draft.matches(existing):
                    return existing, "unchanged"
                if not existing.active:
                    raise BookingConflict(
                        f"booking {existing.id!r} is {existing.status.value} and can no longer change",
                        existing,
                    )
                return self._change(existing, draft, now), "updated"
            self._check_future(draft, now)
            self._refuse_clash(draft.room_id, draft.start, draft.end, None)
            booking = Booking(
                id=self._new_id(),
                room_id=draft.room_id,
                start=draft.start,
                end=draft.end,
                title=draft.title,
                organizer=draft.organizer,
                external_id=draft.external_id,
                series_id=draft.series_id,
                created_at=now,
                updated_at=now,
                created_by=actor,
            )
            with _storage():
                self._store.insert(booking)
            self._index.put(booking)
            self._publish()
            return booking, "created"

    def update(
        self,
        booking_id: str,
        draft: BookingDraft,
        now: float,
        *,
        visible: Callable[[str], bool] = _everywhere,
    ) -> tuple[Booking, Outcome]:
        """Moves or renames an active booking (`draft` is the whole booking after the change)."""
        self._check_window(draft)
        with self._lock:
            existing = self._existing(booking_id, visible)
            if draft.matches(existing):
                return existing, "unchanged"
            if not existing.active:
                raise BookingConflict(
                    f"booking {existing.id!r} is {existing.status.value} and can no longer change", existing
                )
            return self._change(existing, draft, now), "updated"

    def cancel(self, booking_id: str, now: float, *, visible: Callable[[str], bool] = _everywhere) -> Booking:
        """Cancels a booking (kept, with status cancelled); cancelling twice is no error."""
        with self._lock:
            existing = self._existing(booking_id, visible)
            if existing.status == BookingStatus.CANCELLED:
                return existing
            if not existing.active:
                raise BookingConflict(f"booking {existing.id!r} is {existing.status.value} already", existing)
            return self._write(apply(existing, Transition(BookingStatus.CANCELLED, now, "cancelled")))

    def check_in(
        self, booking_id: str, now: float, *, visible: Callable[[str], bool] = _everywhere
    ) -> Booking:
        """An explicit check-in (a site without sensors, a room panel): from
        EARLY_CHECKIN before the start until the end."""
        with self._lock:
            existing = self._existing(booking_id, visible)
            if existing.status == BookingStatus.CHECKED_IN:
                return existing
            if not existing.active:
                raise BookingConflict(f"booking {existing.id!r} is {existing.status.value}", existing)
            if now < existing.start - EARLY_CHECKIN:
                raise BookingConflict(f"check-in opens {EARLY_CHECKIN / 60:g} min before the start", existing)
            if now >= existing.end:
                raise BookingConflict(f"booking {existing.id!r} is over", existing)
            transition = Transition(BookingStatus.CHECKED_IN, now, "checked in explicitly")
            booking = self._write(apply(existing, transition))
        self._announce(booking, transition)
        return booking

    def book_now(self, room_id: str, seconds: float, now: float, *, actor: str, occupied: bool) -> Booking:
        """An ad-hoc booking from now, checked in at once (someone is at the room's panel);
        refused when the room is occupied or booked within the time asked for."""
        draft = BookingDraft(room_id, now, now + seconds)
        self._check_window(draft)
        if occupied:
            raise BookingConflict(f"room {room_id!r} is occupied")
        with self._lock:
            self._refuse_clash(room_id, draft.start, draft.end, None)
            booking = Booking(
                id=self._new_id(),
                room_id=room_id,
                start=draft.start,
                end=draft.end,
                status=BookingStatus.CHECKED_IN,
                created_at=now,
                updated_at=now,
                created_by=actor,
                checked_in_at=now,
            )
            with _storage():
                self._store.insert(booking)
            self._index.put(booking)
            self._publish()
        self._announce(booking, Transition(BookingStatus.CHECKED_IN, now, "booked at the room"))
        return booking

    def sync(
        self, plan: ImportPlan, now: float, *, actor: str, visible: Callable[[str], bool] = _everywhere
    ) -> SyncReport:
        """Applies a calendar import (`gateway.bookings.calendar_sync.reconcile`): every
        write of it in one transaction, or none (StorageUnavailable)."""
        with self._lock:
            index = self._index.copy()
            report, writes = reconcile(
                plan,
                index,
                self._store.by_external_ids,
                now,
                actor=actor,
                visible=visible,
                max_duration=self._max_duration,
                new_id=self._new_id,
            )
            with _storage():
                self._store.save(writes.new, list(writes.changed.values()))
            self._index = index
            self._publish()
        return report

    def _publish(self) -> None:
        """Hands readers a new snapshot of the index (call with the lock held). The
        version is bumped after it: a reader that takes the version, then the
        snapshot, never gets a snapshot older than its version."""
        self._rooms = self._index.rooms()
        self.version += 1

    def _existing(self, booking_id: str, visible: Callable[[str], bool]) -> Booking:
        booking = self._index.get(booking_id) or self._store.get(booking_id)
        if booking is None or not visible(booking.room_id):
            raise BookingNotFound("booking not found")
        return booking

    def _change(self, existing: Booking, draft: BookingDraft, now: float) -> Booking:
        self._check_future(draft, now)
        self._refuse_clash(draft.room_id, draft.start, draft.end, existing.id)
        changed = rebooked(
            existing,
            room_id=draft.room_id,
            start=draft.start,
            end=draft.end,
            title=draft.title,
            organizer=draft.organizer,
            series_id=draft.series_id,
            now=now,
        )
        return self._write(changed)

    def _write(self, booking: Booking) -> Booking:
        with _storage():
            self._store.update([booking])
        self._index.put(booking)
        self._publish()
        return booking

    def _announce(self, booking: Booking, transition: Transition) -> None:
        """Counts a transition and tells the listener (called without the lock held)."""
        with self._lock:
            self.transitions[transition.status] += 1
        self._on_transition(booking, transition)

    def _check_window(self, draft: BookingDraft) -> None:
        problem = window_problem(draft.start, draft.end, self._max_duration)
        if problem is not None:
            raise InvalidBooking(problem)

    @staticmethod
    def _check_future(draft: BookingDraft, now: float) -> None:
        if draft.end <= now:
            raise InvalidBooking("the booking would be over already (end is in the past)")

    def _refuse_clash(self, room_id: str, start: float, end: float, ignore: str | None) -> None:
        clash = self._index.clash(room_id, start, end, ignore)
        if clash is not None:
            raise BookingConflict(f"overlaps booking {clash.id!r} of room {room_id!r}", clash)

    # Time passing

    def tick(self, now: float) -> list[tuple[Booking, Transition]]:
        """Checks in, releases and ends the bookings whose start has come, as the rooms'
        presence says (at most every TICK_INTERVAL); applies retention hourly."""
        if now - self._last_tick < TICK_INTERVAL:
            return []
        self._last_tick = now
        with self._lock:
            started = self._index.started(now)
        made: list[tuple[Booking, Transition]] = []
        if started:
            presence = self._presence({b.room_id for b in started}, now)
            with self._lock:
                for booking in started:
                    current = self._index.get(booking.id)
                    if current is None or current.start > now:
                        continue  # changed since
                    policy = self._policy_for(current.room_id)
                    transition = decide(current, presence.get(current.room_id, NO_SENSORS), policy, now)
                    if transition is not None:
                        made.append((apply(current, transition), transition))
                if made:
                    try:
                        self._store.update([booking for booking, _ in made])
                    except STORE_ERRORS as exc:
                        # Nothing changed; the same transitions come up next tick.
                        log.warning(kv("booking transitions not stored", error=str(exc), count=len(made)))
                        return []
                    for booking, _ in made:
                        self._index.put(booking)
                    self._publish()
        for booking, transition in made:
            self._announce(booking, transition)
        self._prune(now)
        return made

    def _prune(self, now: float) -> None:
        if self._retention is None or now - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = now
        try:
            deleted = self._store.prune(now - self._retention)
        except STORE_ERRORS as exc:
            log.warning(kv("booking retention failed", error=str(exc)))
            return
        if deleted:
            log.info(kv("booking retention applied", bookings_deleted=deleted))

    # Reads

    def get(self, booking_id: str) -> Booking | None:
        with self._lock:
            indexed = self._index.get(booking_id)
        return indexed or self._store.get(booking_id)

    def find(self, query: BookingQuery) -> list[Booking]:
        return self._store.find(query)

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]:
        return self._store.no_shows(by, start, end, rooms)

    def rooms(self) -> Mapping[str, tuple[Booking, ...]]:
        """Every room's active bookings, sorted by start (a snapshot; do not change it)."""
        return self._rooms

    def of_room(self, room_id: str) -> tuple[Booking, ...]:
        return self._rooms.get(room_id, ())

    def next_start(self, room_id: str, now: float) -> float | None:
        """When the room's current or next booking starts; None: nothing booked."""
        for booking in self._rooms.get(room_id, ()):
            if booking.end > now:
                return booking.start
        return None

    def counts(self) -> dict[BookingStatus, int]:
        """Active bookings by status."""
        with self._lock:
            return self._index.counts()
