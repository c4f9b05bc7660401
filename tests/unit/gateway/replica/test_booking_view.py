"""A replica's bookings, read again from the store: a room whose bookings did not change
keeps the same tuple (availability answers kept for it stay valid) and the version
moves only when something changed."""

from __future__ import annotations

from pathlib import Path

from gateway.replica.booking_view import BookingView
from gateway.storage.bookings_store import SqliteBookingStore
from gateway.storage.sqlite_store import Store
from rules.bookings import Booking, BookingStatus


def test_a_reload_keeps_what_did_not_change(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()  # creates and migrates the file, as a gateway does
    store = SqliteBookingStore(tmp_path / "s.db")
    store.insert(Booking("a", "orion", 100.0, 200.0))
    store.insert(Booking("b", "lyra", 100.0, 200.0))
    view = BookingView(store)
    assert view.reload() and view.version == 1
    orion, lyra = view.of_room("orion"), view.of_room("lyra")

    assert not view.reload() and view.version == 1
    store.insert(Booking("c", "orion", 300.0, 400.0))
    assert view.reload() and view.version == 2
    assert view.of_room("lyra") is lyra and view.of_room("orion") is not orion
    assert [b.id for b in view.of_room("orion")] == ["a", "c"]

    store.update([Booking("b", "lyra", 100.0, 200.0, status=BookingStatus.CANCELLED)])
    assert view.reload() and view.of_room("lyra") == () and "lyra" not in view.rooms()
    store.close()
