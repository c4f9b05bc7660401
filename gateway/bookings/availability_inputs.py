"""What the availability of the bookable rooms rests on, as the gateway hands it out:
a version that changes whenever any of it may have changed (but time), and the
inputs themselves, for the API to compute availability from and to keep what it
computed until the version or the window says otherwise (`api.availability_answers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import RoomConfig
from rules.bookings import Booking
from rules.room_model import RoomState


@dataclass(frozen=True, slots=True)
class AvailabilityVersion:
    """Taken before the inputs it goes with, so inputs are never older than their version."""

    # `Bookings.version` (a count of the bookings' snapshots), `LiveState.rooms_version`,
    # `occupancy_version`, `sensors_version`. Plain numbers: an answer kept with its
    # version keeps nothing else alive.
    bookings: int
    rooms: int
    occupancy: int
    sensors: tuple[int, int]

    def same_as(self, other: AvailabilityVersion, *, includes_now: bool) -> bool:
        """Whether an answer made at `other` still holds now (for a window that does
        not include now, occupancy and sensors do not count)."""
        return (
            self.bookings == other.bookings
            and self.rooms == other.rooms
            and (not includes_now or (self.occupancy == other.occupancy and self.sensors == other.sensors))
        )


@dataclass(frozen=True, slots=True)
class AvailabilityInputs:
    version: AvailabilityVersion
    # Every room's active bookings, sorted by start (the bookings service's snapshot:
    # a room's tuple is replaced whole when its bookings change).
    bookings: Mapping[str, tuple[Booking, ...]]
    # The bookable rooms: the same tuple until a room is added or forgotten.
    rooms: tuple[RoomConfig, ...]
    # Every room's live state (frozen states: a copy of the references).
    states: Mapping[str, RoomState]
    # The rooms whose presence sensors are all offline (empty when not asked for).
    sensors_offline: frozenset[str]
