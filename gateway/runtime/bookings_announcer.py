"""Tells API replicas that bookings changed: `officegw/bookings/<building>/changed`
(QoS 1, not retained) after any write the shard commits to its rooms' bookings (its
REST API, a replica's command, a check-in, release or end by presence and time, a
calendar import).

A replica reloads its bookings from the shared store when told (and every
`replica.bookings_reload` seconds in case a notice was lost). The notice carries which
rooms changed, for logs; the store is what counts.

A thread looks at the bookings service's snapshot a few times a second: the service
replaces the snapshot whole on every write and each room's tuple only when that
room's bookings change, so "changed" is two identity checks per room, and the
booking path itself is untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import orjson

from gateway.logs import kv
from gateway.runtime.periodic import PeriodicThread
from gateway.shard_commands import bookings_changed_topic
from rules.bookings import Booking

log = logging.getLogger("officegw.bookings")

# How long a replica may answer from bookings older than a write (plus the broker's delay).
SCAN_INTERVAL = 0.1

BookedRooms = Callable[[], Mapping[str, tuple[Booking, ...]]]
Publish = Callable[[str, bytes], None]


class BookingsAnnouncer:
    def __init__(
        self,
        bookings: BookedRooms,
        building_of: Callable[[str], str | None],
        publish: Publish,
        *,
        gateway_id: str,
        connected: Callable[[], bool],
    ) -> None:
        self._bookings = bookings
        self._building_of = building_of
        self._publish = publish
        self._gateway_id = gateway_id
        self._connected = connected
        self._seen: Mapping[str, tuple[Booking, ...]] | None = None
        self.announced = 0
        self._loop = PeriodicThread("bookings-announcer", SCAN_INTERVAL, self.scan)

    def start(self) -> None:
        self._seen = self._bookings()  # what was loaded at start is not news
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def scan(self) -> None:
        current = self._bookings()
        seen = self._seen
        if current is seen or not self._connected():
            # Without a broker the notice waits: the snapshot stays unseen until it is up.
            return
        previous = seen if seen is not None else {}
        changed = [room for room, bookings in current.items() if previous.get(room) is not bookings]
        changed += [room for room in previous if room not in current]
        self._seen = current
        by_building: dict[str, list[str]] = {}
        for room_id in changed:
            building = self._building_of(room_id)
            if building is not None:
                by_building.setdefault(building, []).append(room_id)
        for building, rooms in sorted(by_building.items()):
            payload = orjson.dumps(
                {"gateway": self._gateway_id, "building": building, "rooms": sorted(rooms)}
            )
            self._publish(bookings_changed_topic(building), payload)
            self.announced += 1
        if by_building:
            log.debug(kv("bookings changed", buildings=",".join(sorted(by_building)), rooms=len(changed)))
