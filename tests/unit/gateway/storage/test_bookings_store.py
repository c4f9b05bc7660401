"""The booking store on a real SQLite file and a real PostgreSQL: survives reopening, unique external ids,
filters and pages, no-show counts, retention."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.storage.bookings_store import (
    BookingQuery,
    BookingStoreError,
    NoShowCount,
    SqlBookingStore,
    SqliteBookingStore,
)
from gateway.storage.postgres_store import PostgresStore
from rules.bookings import Booking, BookingStatus
from tests.unit.gateway.storage.conftest import INTEGRITY_ERRORS, Backend

T0 = 1_700_000_000.0
H = 3600.0


def booking(booking_id: str, start: float, room: str = "orion", **fields: Any) -> Booking:
    return Booking(booking_id, room, start, start + H, created_at=T0, updated_at=T0, **fields)


@pytest.fixture
def stores(backend: Backend) -> SqlBookingStore:
    return backend.bookings(backend.open())


def test_bookings_survive_a_restart(backend: Backend) -> None:
    store = backend.open()
    bookings = backend.bookings(store)
    first = booking("a", T0, title="Standup", organizer="ana", external_id="ext-1", series_id="s1")
    bookings.insert(first)
    bookings.insert(booking("b", T0 + 2 * H))
    checked = replace(first, status=BookingStatus.CHECKED_IN, checked_in_at=T0 + 60, updated_at=T0 + 60)
    bookings.update([checked])
    backend.close()

    bookings = backend.bookings(backend.open())
    assert bookings.get("a") == checked
    assert bookings.by_external_id("ext-1") == checked
    assert [b.id for b in bookings.active()] == ["a", "b"]
    assert bookings.get("nope") is None


def test_the_store_needs_the_migrated_file(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "bare.db").close()
    with pytest.raises(BookingStoreError, match="no bookings table"):
        SqliteBookingStore(tmp_path / "bare.db")


def test_external_ids_are_unique(stores: SqlBookingStore) -> None:
    stores.insert(booking("a", T0, external_id="ext-1"))
    with pytest.raises(INTEGRITY_ERRORS):
        stores.insert(booking("b", T0 + 2 * H, external_id="ext-1"))
    # Bookings without one are many.
    stores.insert(booking("c", T0 + 4 * H))
    stores.insert(booking("d", T0 + 6 * H))


def test_find_filters_and_pages(stores: SqlBookingStore) -> None:
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


def test_no_shows_per_organizer_and_series(stores: SqlBookingStore) -> None:
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


def test_retention_deletes_only_old_finished_bookings(stores: SqlBookingStore) -> None:
    stores.insert(booking("old-ended", T0 - 100 * H, status=BookingStatus.ENDED))
    stores.insert(booking("old-but-held", T0 - 100 * H, room="lyra"))
    stores.insert(booking("recent", T0, status=BookingStatus.RELEASED))
    assert stores.prune(T0 - H) == 1
    assert stores.get("old-ended") is None
    assert stores.get("old-but-held") is not None
    assert stores.get("recent") is not None


def test_a_batch_is_saved_in_one_transaction_or_not_at_all(stores: SqlBookingStore) -> None:
    first = Booking("a", "orion", 100.0, 200.0, external_id="uid/1", series_id="uid")
    stores.save([first], [])
    second = Booking("b", "orion", 300.0, 400.0, external_id="uid/2", series_id="uid")
    moved = Booking("a", "orion", 150.0, 250.0, external_id="uid/1", series_id="uid")
    stores.save([second], [moved])
    assert stores.by_external_ids(["uid/1", "uid/2", "uid/3"]) == {"uid/1": moved, "uid/2": second}
    clashing_id = Booking("c", "orion", 500.0, 600.0, external_id="uid/2")
    with pytest.raises(INTEGRITY_ERRORS):
        stores.save([Booking("d", "lyra", 1.0, 2.0), clashing_id], [])
    assert stores.get("d") is None


def test_a_shard_loads_and_prunes_only_its_own_rooms(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, "gw-a")
    try:
        mine = SqlBookingStore(store, frozenset({"orion"}))
        everyone = SqlBookingStore(store)
        everyone.insert(booking("held-here", T0))
        everyone.insert(booking("held-there", T0, room="vega"))
        everyone.insert(booking("old-here", T0 - 100 * H, status=BookingStatus.ENDED))
        everyone.insert(booking("old-there", T0 - 100 * H, room="vega", status=BookingStatus.ENDED))
        assert [b.id for b in mine.active()] == ["held-here"]
        assert mine.prune(T0 - H) == 1
        assert everyone.get("old-there") is not None and everyone.get("old-here") is None
        # Reads by id or query are the campus's.
        assert mine.get("held-there") is not None
    finally:
        store.close()
