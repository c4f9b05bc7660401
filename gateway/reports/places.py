"""Where each room is (building, floor, type), which rooms a report window keeps, and
which group a room's figures go to.

From the store's point of view a room is an id in its events and readings; its
place comes from the site config, or, for a room registered automatically from its
topic, from the state snapshot (type `unknown`). A room known to neither cannot be
placed and is left out of every report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.config import Settings
from gateway.reports.table import GroupBy, ReportWindow


class SnapshotSource(Protocol):
    """Where the auto-registered rooms are kept (the gateway's state store)."""

    def snapshot_entry(self, key: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class RoomPlace:
    room: str
    building: str
    floor: str
    room_type: str


def room_places(settings: Settings, store: SnapshotSource) -> dict[str, RoomPlace]:
    places: dict[str, RoomPlace] = {}
    auto = store.snapshot_entry("auto_rooms")
    for room in auto if isinstance(auto, list) else []:
        try:
            room_id, building, floor = str(room["id"]), str(room["building"]), str(room["floor"])
        except (KeyError, TypeError):
            continue
        places[room_id] = RoomPlace(room_id, building, floor, "unknown")
    for config in settings.site.rooms:
        places[config.id] = RoomPlace(config.id, config.building, str(config.floor), config.type)
    return places


def kept(place: RoomPlace, window: ReportWindow) -> bool:
    """Whether the window's filters and scope keep the room."""
    return (
        (window.buildings is None or place.building in window.buildings)
        and (window.building is None or place.building == window.building)
        and (window.floor is None or place.floor == window.floor)
        and (window.room is None or place.room == window.room)
        and (window.room_type is None or place.room_type == window.room_type)
    )


def places_kept(places: Mapping[str, RoomPlace], window: ReportWindow) -> dict[str, RoomPlace]:
    return {room: place for room, place in places.items() if kept(place, window)}


def group_of(place: RoomPlace, group_by: GroupBy) -> tuple[tuple[str, str], ...]:
    """The row key a room's figures go to: (field, value) pairs in column order."""
    if group_by is GroupBy.ROOM:
        return (("building", place.building), ("floor", place.floor), ("room", place.room))
    if group_by is GroupBy.FLOOR:
        return (("building", place.building), ("floor", place.floor))
    if group_by is GroupBy.BUILDING:
        return (("building", place.building),)
    if group_by is GroupBy.ROOM_TYPE:
        return (("room_type", place.room_type),)
    raise ValueError(f"rooms are not grouped by {group_by.value}")
