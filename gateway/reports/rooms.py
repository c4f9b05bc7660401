"""The rooms a report covers: what it needs to know of each, and which ones a window selects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.config import RoomConfig, Settings
from gateway.reports.table import GROUP_FIELDS, GroupBy, ReportWindow


@dataclass(frozen=True, slots=True)
class ReportRoom:
    id: str
    building: str
    floor: str
    type: str
    capacity: int = 0
    # The baseline's draw (reports.baseline_w, else the lights' rated watts); None: unknown.
    baseline_w: float | None = None
    # Rated watts of the room's devices that have them (site config), by device id.
    rated_watts: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def group(self, group_by: GroupBy) -> dict[str, str]:
        values = {"building": self.building, "floor": self.floor, "room": self.id, "room_type": self.type}
        return {name: values[name] for name in GROUP_FIELDS[group_by]}


def report_rooms(configs: Iterable[RoomConfig], settings: Settings) -> list[ReportRoom]:
    """The rooms as reports see them, with their baseline from the settings."""
    rated: dict[str, dict[str, float]] = {}
    for device in settings.site.devices:
        if device.rated_watts is not None:
            rated.setdefault(device.room, {})[device.id] = device.rated_watts
    baseline = settings.reports.baseline_w
    rooms = []
    for config in configs:
        watts = rated.get(config.id, {})
        draw = baseline.rooms.get(config.id)
        if draw is None:
            draw = baseline.room_types.get(config.type)
        if draw is None and watts:
            draw = sum(watts.values())
        rooms.append(
            ReportRoom(
                config.id,
                config.building,
                str(config.floor),
                config.type,
                config.capacity,
                draw,
                MappingProxyType(watts),
            )
        )
    return rooms


def selected(rooms: Sequence[ReportRoom], window: ReportWindow) -> list[ReportRoom]:
    """The rooms the window's filters keep, by (building, floor, id)."""
    kept = [
        room
        for room in rooms
        if (window.building is None or room.building == window.building)
        and (window.floor is None or room.floor == window.floor)
        and (window.room is None or room.id == window.room)
        and (window.room_type is None or room.type == window.room_type)
    ]
    return sorted(kept, key=lambda room: (room.building, room.floor, room.id))
