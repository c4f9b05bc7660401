"""Which rooms an API caller may see, as the bookings service checks it (`visible`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomScope:
    """The rooms in `buildings` (None: every room), placed by `building_of`. A callable
    (room id -> may see it), and it says its buildings, so a replica can hand the
    same scope to the gateway that owns the room (gateway/shard_commands.py)."""

    buildings: frozenset[str] | None
    building_of: Callable[[str], str | None]

    def __call__(self, room_id: str) -> bool:
        if self.buildings is None:
            return True
        building = self.building_of(room_id)
        return building is not None and building in self.buildings
