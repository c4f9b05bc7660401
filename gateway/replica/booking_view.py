"""The campus's active bookings as a replica serves them (availability, room status):
read from the shared store, again after each `officegw/bookings/<building>/changed`
notice, after each booking write this replica forwarded, and every
`replica.bookings_reload` seconds in case a notice was lost.

A reload keeps a room's tuple (the same object) when its bookings did not change, so
availability answers kept for that room stay valid (api.availability_answers compares
by identity); `version` counts reloads that changed anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from gateway.bookings.index import BookingIndex
from gateway.logs import kv
from gateway.storage.bookings_store import BookingStore
from gateway.storage.sql import STORE_ERRORS
from rules.bookings import Booking

log = logging.getLogger("officegw.replica")


class BookingView:
    def __init__(self, store: BookingStore, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._monotonic = monotonic
        self._rooms: Mapping[str, tuple[Booking, ...]] = {}
        self.version = 0
        self.loaded_at = float("-inf")
        self.reloads = 0
        # One reload at a time; readers never wait for it.
        self._lock = threading.Lock()

    def reload(self) -> bool:
        """Reads the active bookings again; True when anything changed. A store that
        fails keeps the bookings as they were (logged)."""
        with self._lock:
            try:
                active = self._store.active()
            except STORE_ERRORS as exc:
                log.warning(kv("bookings not reloaded", error=str(exc)))
                return False
            fresh = BookingIndex(active).rooms()
            old = self._rooms
            rooms = {
                room: (old[room] if old.get(room) == bookings else bookings)
                for room, bookings in fresh.items()
            }
            self.loaded_at = self._monotonic()
            self.reloads += 1
            changed = rooms.keys() != old.keys() or any(rooms[room] is not old[room] for room in rooms)
            if changed:
                self._rooms = rooms
                self.version += 1
            return changed

    def rooms(self) -> Mapping[str, tuple[Booking, ...]]:
        """Every room's active bookings, sorted by start (a snapshot; do not change it)."""
        return self._rooms

    def of_room(self, room_id: str) -> tuple[Booking, ...]:
        return self._rooms.get(room_id, ())
