"""The bookings that hold rooms, in memory, per room: what availability, room status,
the rules' `next_booking_in` and the check-in ticker read, without SQL.

Loaded from the store at start and kept in step by every write (`put`). Each room's
bookings are an immutable tuple sorted by start, replaced whole on a change, so a
snapshot (`rooms`) stays valid while writers move on. Active bookings of one room
never overlap (the service refuses clashes), so sorted by start they are sorted by
end too. Not locked: `gateway.bookings.service.Bookings` serialises writers and
hands readers the snapshots.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from rules.bookings import Booking, BookingStatus


class BookingIndex:
    def __init__(self, bookings: Iterable[Booking] = ()) -> None:
        self._by_room: dict[str, tuple[Booking, ...]] = {}
        self._by_id: dict[str, Booking] = {}
        for booking in bookings:
            self.put(booking)

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, booking_id: str) -> Booking | None:
        return self._by_id.get(booking_id)

    def put(self, booking: Booking) -> None:
        """Adds or replaces `booking`; one no longer active leaves the index."""
        old = self._by_id.pop(booking.id, None)
        if old is not None:
            remaining = tuple(b for b in self._by_room.get(old.room_id, ()) if b.id != booking.id)
            self._set_room(old.room_id, remaining)
        if not booking.active:
            return
        self._by_id[booking.id] = booking
        room = list(self._by_room.get(booking.room_id, ()))
        bisect.insort(room, booking, key=lambda b: (b.start, b.id))
        self._set_room(booking.room_id, tuple(room))

    def _set_room(self, room_id: str, bookings: tuple[Booking, ...]) -> None:
        if bookings:
            self._by_room[room_id] = bookings
        else:
            self._by_room.pop(room_id, None)

    def rooms(self) -> Mapping[str, tuple[Booking, ...]]:
        """A snapshot: room -> its active bookings (sorted by start)."""
        return dict(self._by_room)

    def clash(self, room_id: str, start: float, end: float, ignore: str | None = None) -> Booking | None:
        """The first active booking of the room overlapping [start, end), other than `ignore`."""
        for booking in self._by_room.get(room_id, ()):
            if booking.start >= end:
                return None
            if booking.end > start and booking.id != ignore:
                return booking
        return None

    def started(self, now: float) -> list[Booking]:
        """Active bookings whose start has come."""
        started: list[Booking] = []
        for bookings in self._by_room.values():
            for booking in bookings:
                if booking.start > now:
                    break
                started.append(booking)
        return started

    def counts(self) -> dict[BookingStatus, int]:
        counts = dict.fromkeys((BookingStatus.BOOKED, BookingStatus.CHECKED_IN), 0)
        for booking in self._by_id.values():
            counts[booking.status] += 1
        return counts
