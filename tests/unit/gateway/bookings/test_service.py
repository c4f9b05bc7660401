"""The booking service on a real store: upserts by external id, clashes, cancel,
check-in, book-now, the tick's transitions, and a restart."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from itertools import count
from pathlib import Path

import pytest

from gateway.bookings.service import (
    BookingConflict,
    BookingDraft,
    BookingNotFound,
    Bookings,
    InvalidBooking,
)
from gateway.storage.bookings_store import SqliteBookingStore
from gateway.storage.sqlite_store import Store
from rules.bookings import Booking, BookingPolicy, BookingStatus, Presence, Transition

T0 = 1_700_000_000.0
H = 3600.0
POLICY = BookingPolicy(checkin_window=300, release_when_vacant=600, presence_min=60)


class Harness:
    """A service over a store in `path`, with presence set by the test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.presence: dict[str, Presence] = {}
        self.announced: list[tuple[Booking, Transition]] = []
        self._store = Store(path)
        self._bookings = SqliteBookingStore(path)
        ids = count(1)
        self.service = Bookings(
            self._bookings,
            policy_for=lambda room_id: POLICY,
            presence=self._read_presence,
            on_transition=lambda booking, transition: self.announced.append((booking, transition)),
            max_duration=86_400,
            new_id=lambda: f"b{next(ids)}",
        )
        self.service.load()

    def _read_presence(self, rooms: Collection[str], now: float) -> Mapping[str, Presence]:
        return {room: self.presence[room] for room in rooms if room in self.presence}

    def book(self, start: float, end: float, room: str = "orion", **fields: str) -> Booking:
        booking, outcome = self.service.create(BookingDraft(room, start, end, **fields), T0, actor="test")
        assert outcome == "created"
        return booking

    def status_of(self, booking_id: str) -> BookingStatus:
        booking = self.service.get(booking_id)
        assert booking is not None, booking_id
        return booking.status

    def close(self) -> None:
        # Closing twice is harmless (sqlite3 connections allow it).
        self._bookings.close()
        self._store.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "officegw.db")
    try:
        yield harness
    finally:
        harness.close()


def test_a_known_external_id_updates_instead_of_adding(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H, external_id="ext-1", title="Plan")
    same, outcome = h.service.create(
        BookingDraft("orion", T0 + H, T0 + 2 * H, title="Plan", external_id="ext-1"), T0 + 5, actor="test"
    )
    assert (same, outcome) == (first, "unchanged")
    moved, outcome = h.service.create(
        BookingDraft("orion", T0 + 3 * H, T0 + 4 * H, title="Plan", external_id="ext-1"), T0 + 9, actor="test"
    )
    assert outcome == "updated"
    assert (moved.id, moved.start, moved.updated_at) == (first.id, T0 + 3 * H, T0 + 9)
    # The old slot is free again, the new one taken.
    h.book(T0 + H, T0 + 2 * H)
    with pytest.raises(BookingConflict):
        h.book(T0 + 3.5 * H, T0 + 5 * H)


def test_an_overlap_names_the_clashing_booking(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H)
    with pytest.raises(BookingConflict) as refused:
        h.book(T0 + 1.5 * H, T0 + 2.5 * H)
    assert refused.value.clash == first
    assert first.id in str(refused.value)
    # Back to back is no overlap, nor is another room.
    h.book(T0 + 2 * H, T0 + 3 * H)
    h.book(T0 + H, T0 + 2 * H, room="lyra")


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (T0 + H, T0 + H, "end must be after start"),
        (T0 + H, T0, "end must be after start"),
        (T0 + H, T0 + 26 * H, "at most 24 h"),
        (T0 - 2 * H, T0 - H, "over already"),
    ],
)
def test_bad_windows_are_refused(h: Harness, start: float, end: float, problem: str) -> None:
    with pytest.raises(InvalidBooking, match=problem):
        h.book(start, end)


def test_cancel_frees_the_slot_and_keeps_the_booking(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H)
    cancelled = h.service.cancel(first.id, T0 + 10)
    assert (cancelled.status, cancelled.cancelled_at) == (BookingStatus.CANCELLED, T0 + 10)
    assert h.service.cancel(first.id, T0 + 20) == cancelled  # twice is no error
    assert h.service.get(first.id) == cancelled
    h.book(T0 + H, T0 + 2 * H)
    with pytest.raises(BookingNotFound):
        h.service.cancel("nope", T0)


def test_a_key_never_touches_bookings_of_rooms_it_cannot_see(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H, external_id="ext-1")
    annex_only = lambda room_id: room_id == "vega"  # noqa: E731
    with pytest.raises(BookingNotFound):
        h.service.cancel(first.id, T0, visible=annex_only)
    with pytest.raises(BookingNotFound):
        h.service.check_in(first.id, T0 + H, visible=annex_only)
    with pytest.raises(BookingConflict, match="cannot see"):
        h.service.create(
            BookingDraft("vega", T0 + H, T0 + 2 * H, external_id="ext-1"), T0, actor="x", visible=annex_only
        )


def test_explicit_check_in(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H)
    with pytest.raises(BookingConflict, match="opens 15 min before"):
        h.service.check_in(first.id, T0 + H - 901)
    checked = h.service.check_in(first.id, T0 + H - 60)
    assert (checked.status, checked.checked_in_at) == (BookingStatus.CHECKED_IN, T0 + H - 60)
    assert [t.status for _, t in h.announced] == [BookingStatus.CHECKED_IN]
    assert h.service.check_in(first.id, T0 + H) == checked


def test_book_now_is_refused_when_occupied_or_booked(h: Harness) -> None:
    with pytest.raises(BookingConflict, match="occupied"):
        h.service.book_now("orion", 1800, T0, actor="panel", occupied=True)
    later = h.book(T0 + 1200, T0 + H)
    with pytest.raises(BookingConflict) as refused:
        h.service.book_now("orion", 1800, T0, actor="panel", occupied=False)
    assert refused.value.clash == later
    now = h.service.book_now("orion", 1200, T0, actor="panel", occupied=False)
    assert (now.status, now.start, now.end, now.created_by) == (
        BookingStatus.CHECKED_IN,
        T0,
        T0 + 1200,
        "panel",
    )


def test_the_tick_releases_no_shows_and_checks_in_from_presence(h: Harness) -> None:
    no_show = h.book(T0 + 60, T0 + H, room="orion")
    attended = h.book(T0 + 60, T0 + H, room="lyra")
    h.presence["orion"] = Presence(sensing=True, occupied=False, since=T0 - H)
    h.presence["lyra"] = Presence(sensing=True, occupied=True, since=T0 + 100, last_seen=T0 + 170)
    made = h.service.tick(T0 + 180)
    assert [(b.id, t.status, t.at) for b, t in made] == [(attended.id, BookingStatus.CHECKED_IN, T0 + 160)]
    assert h.status_of(attended.id) == BookingStatus.CHECKED_IN
    assert h.status_of(no_show.id) == BookingStatus.BOOKED
    h.service.tick(T0 + 360)
    released = h.service.get(no_show.id)
    assert released is not None
    assert (released.status, released.released_at) == (BookingStatus.RELEASED, T0 + 360)
    assert [(b.id, t.status) for b, t in h.announced] == [
        (attended.id, BookingStatus.CHECKED_IN),
        (no_show.id, BookingStatus.RELEASED),
    ]
    # The slot is free again.
    assert h.service.of_room("orion") == ()
    h.book(T0 + 400, T0 + H, room="orion")


def test_the_tick_runs_at_most_every_half_second(h: Harness) -> None:
    h.book(T0 + 60, T0 + H)
    h.presence["orion"] = Presence(sensing=True, occupied=False, since=T0 - H)
    h.service.tick(T0 + 359.8)
    assert h.service.tick(T0 + 360) == []
    assert [t.status for _, t in h.service.tick(T0 + 360.3)] == [BookingStatus.RELEASED]


def test_bookings_and_clashes_survive_a_restart(h: Harness) -> None:
    first = h.book(T0 + H, T0 + 2 * H, external_id="ext-1")
    h.service.check_in(first.id, T0 + H)
    h.book(T0 + 3 * H, T0 + 4 * H)
    h.close()

    again = Harness(h.path)
    try:
        assert [b.id for b in again.service.of_room("orion")] == [first.id, "b2"]
        assert again.status_of(first.id) == BookingStatus.CHECKED_IN
        with pytest.raises(BookingConflict):
            again.book(T0 + 3.5 * H, T0 + 3.75 * H)
        assert again.service.next_start("orion", T0 + 1.5 * H) == T0 + H
        assert again.service.next_start("orion", T0 + 2 * H) == T0 + 3 * H
    finally:
        again.close()
