"""The booking store on a real SQLite file: survives reopening, unique external ids,
filters and pages, no-show counts, retention."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.storage.bookings_store import BookingQuery, BookingStoreError, NoShowCount, SqliteBookingStore
from gateway.storage.sqlite_store import Store
from rules.bookings import Booking, BookingStatus

T0 = 1_700_000_000.0
H = 3600.0


def booking(booking_id: str, start: float, room: str = "orion", **fields: Any) -> Booking:
    return Booking(booking_id, room, start, start + H, created_at=T0, updated_at=T0, **fields)


def open_store(path: Path) -> tuple[Store, SqliteBookingStore]:
    store = Store(path)
    return store, SqliteBookingStore(path)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[SqliteBookingStore]:
    store, bookings = open_store(tmp_path / "officegw.db")
    try:
        yield bookings
    finally:
        bookings.close()
        store.close()


def test_bookings_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "officegw.db"
    store, bookings = open_store(path)
    first = booking("a", T0, title="Standup", organizer="ana", external_id="ext-1", series_id="s1")
    bookings.insert(first)
    bookings.insert(booking("b", T0 + 2 * H))
    checked = replace(first, status=BookingStatus.CHECKED_IN, checked_in_at=T0 + 60, updated_at=T0 + 60)
    bookings.update([checked])
    bookings.close()
    store.close()

    store, bookings = open_store(path)
    try:
        assert bookings.get("a") == checked
        assert bookings.by_external_id("ext-1") == checked
        assert [b.id for b in bookings.active()] == ["a", "b"]
        assert bookings.get("nope") is None
    finally:
        bookings.close()
        store.close()


def test_the_store_needs_the_migrated_file(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "bare.db").close()
    with pytest.raises(BookingStoreError, match="no bookings table"):
        SqliteBookingStore(tmp_path / "bare.db")


def test_external_ids_are_unique(stores: SqliteBookingStore) -> None:
    stores.insert(booking("a", T0, external_id="ext-1"))
    with pytest.raises(sqlite3.IntegrityError):
        stores.insert(booking("b", T0 + 2 * H, external_id="ext-1"))
    # Bookings without one are many.
    stores.insert(booking("c", T0 + 4 * H))
    stores.insert(booking("d", T0 + 6 * H))


def test_find_filters_and_pages(stores: SqliteBookingStore) -> None:
    stores.insert(booking("a", T0, organizer="ana"))
    stores.insert(booking("b", T0 + H, organizer="bo", status=BookingStatus.CANCELLED))
    stores.insert(booking("c", T0 + 2 * H, room="lyra", organizer="ana"))
    stores.insert(booking("d", T0 + 3 * H, external_id="x-d", series_id="weekly"))

    def ids(**query: Any) -> list[str]:
        return [b.id for b in stores.find(BookingQuery(**query))]

    assert ids() == ["a", "b", "c", "d"]
    assert ids(room_id="lyra") == ["c"]
    assert ids(rooms=frozenset({"orion"})) == ["a", "b", "d"]
    assert ids(rooms=frozenset()) == []
    # Overlapping the window [T0 + 1.5 h, T0 + 3 h): b ends inside, c is inside, d starts at its end.
    assert ids(start=T0 + 1.5 * H, end=T0 + 3 * H) == ["b", "c"]
    assert ids(statuses=frozenset({BookingStatus.BOOKED})) == ["a", "c", "d"]
    assert ids(organizer="ana") == ["a", "c"]
    assert ids(external_id="x-d") == ["d"]
    assert ids(series_id="weekly") == ["d"]
    assert ids(limit=2) == ["a", "b"]
    assert ids(limit=2, offset=2) == ["c", "d"]


def test_no_shows_per_organizer_and_series(stores: SqliteBookingStore) -> None:
    released, ended = BookingStatus.RELEASED, BookingStatus.ENDED
    rows = [
        ("a", "ana", "weekly", released),
        ("b", "ana", "weekly", released),
        ("c", "ana", "weekly", ended),
        ("d", "bo", None, ended),
        ("e", "bo", None, BookingStatus.CANCELLED),  # not counted
        ("f", "bo", None, BookingStatus.BOOKED),  # not over yet
    ]
    for index, (booking_id, organizer, series, status) in enumerate(rows):
        stores.insert(
            booking(booking_id, T0 + index * H, organizer=organizer, series_id=series, status=status)
        )
    stores.insert(booking("g", T0 - 10 * H, organizer="bo", status=released))  # before the period

    assert stores.no_shows("organizer", T0, T0 + 10 * H, None) == [
        NoShowCount("ana", 3, 2),
        NoShowCount("bo", 1, 0),
    ]
    assert stores.no_shows("series", T0, T0 + 10 * H, None) == [
        NoShowCount("weekly", 3, 2),
        NoShowCount(None, 1, 0),
    ]
    assert stores.no_shows("organizer", T0, T0 + 10 * H, frozenset({"lyra"})) == []


def test_retention_deletes_only_old_finished_bookings(stores: SqliteBookingStore) -> None:
    stores.insert(booking("old-ended", T0 - 100 * H, status=BookingStatus.ENDED))
    stores.insert(booking("old-but-held", T0 - 100 * H, room="lyra"))
    stores.insert(booking("recent", T0, status=BookingStatus.RELEASED))
    assert stores.prune(T0 - H) == 1
    assert stores.get("old-ended") is None
    assert stores.get("old-but-held") is not None
    assert stores.get("recent") is not None
