"""Which room an announced device is in: a documented convention, first match wins.

1. A rule of the site config (`discovery.rooms`), in its order: `pattern` matches
   the device's name or one of its ids (IEEE address, identifiers, unique ids),
   `group` the name of a Zigbee2MQTT group it is a member of, `area` a Home
   Assistant `suggested_area`; glob patterns (`*`, `?`), case-insensitive.
2. For Home Assistant devices, the announced `suggested_area`.
3. The name: `[<building>/<floor>/]<room>/<name>`. The level before the last names
   the room (Zigbee2MQTT's docs suggest `kitchen/floor_light`); when the two levels
   before it are there too, they are the room's building and floor, which must
   match a known room's, and let an unknown room be created (as a room first seen
   on a native topic is).
4. For Zigbee2MQTT devices, a group whose name names a room.

A text names a room when it is the room's id, or equals its id or its `name`
ignoring case, or equals its id once spaces and underscores are dashes
(`Dining room` -> `dining-room`). A device that none of these place is not mapped:
it is listed, unplaced, until an announcement or a rule places it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from devices.discovery.model import PlacementHints
from devices.identity import valid_segment

__all__ = ["Placement", "RoomRef", "RoomRule", "place"]

Rule = Literal["config_rule", "suggested_area", "name", "group", "none"]


@dataclass(frozen=True, slots=True)
class RoomRef:
    """What placement needs of a room."""

    id: str
    name: str | None
    building: str
    floor: str


@dataclass(frozen=True, slots=True)
class RoomRule:
    """One `discovery.rooms` entry: `field` is "pattern", "group" or "area"."""

    field: Literal["pattern", "group", "area"]
    pattern: str
    room: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a device goes and why; `room` None when nothing places it (or, with a
    `problem`, when its name contradicts a known room). `building`/`floor` are set
    when the room is not known yet and the name says where to create it."""

    room: str | None
    rule: Rule
    detail: str
    building: str | None = None
    floor: str | None = None
    problem: str | None = None


class RoomDirectory:
    """Rooms by every text that names them."""

    def __init__(self, rooms: Iterable[RoomRef]) -> None:
        self._by_id: dict[str, RoomRef] = {}
        self._by_text: dict[str, RoomRef] = {}
        for room in rooms:
            self._by_id.setdefault(room.id, room)
        for room in self._by_id.values():
            for text in (room.id, room.name or ""):
                if text:
                    self._by_text.setdefault(text.casefold(), room)
        for room in self._by_id.values():
            self._by_text.setdefault(_slug(room.id), room)

    def get(self, room_id: str) -> RoomRef | None:
        return self._by_id.get(room_id)

    def find(self, text: str) -> RoomRef | None:
        return self._by_id.get(text) or self._by_text.get(text.casefold()) or self._by_text.get(_slug(text))


def _slug(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip()).casefold()


def place(
    hints: PlacementHints,
    rules: Iterable[RoomRule],
    rooms: RoomDirectory | Mapping[str, RoomRef],
    *,
    source: str,
) -> Placement:
    """Where the announced device goes (see the module docstring for the order)."""
    directory = rooms if isinstance(rooms, RoomDirectory) else RoomDirectory(rooms.values())
    for rule in rules:
        found = _rule_match(rule, hints)
        if found is not None:
            return Placement(
                rule.room,
                "config_rule",
                f"discovery.rooms[{rule.index}] {rule.field} {rule.pattern!r} matches {found!r}",
            )
    if source == "homeassistant" and hints.area:
        room = directory.find(hints.area)
        if room is not None:
            return Placement(room.id, "suggested_area", f"suggested_area {hints.area!r}")
    by_name = _by_name(hints.name, directory)
    if by_name is not None:
        return by_name
    for group in hints.groups:
        room = directory.find(group)
        if room is not None:
            return Placement(room.id, "group", f"member of group {group!r}")
    said = [f"name {hints.name!r}"]
    if hints.area:
        said.append(f"suggested_area {hints.area!r}")
    if hints.groups:
        said.append(f"groups {', '.join(hints.groups)}")
    return Placement(None, "none", f"no rule matches and no room is named by its {'; '.join(said)}")


def _rule_match(rule: RoomRule, hints: PlacementHints) -> str | None:
    if rule.field == "pattern":
        candidates: tuple[str, ...] = (hints.name, *hints.ids)
    elif rule.field == "group":
        candidates = hints.groups
    else:
        candidates = (hints.area,) if hints.area else ()
    wanted = rule.pattern.casefold()
    return next((text for text in candidates if fnmatch.fnmatchcase(text.casefold(), wanted)), None)


def _by_name(name: str, directory: RoomDirectory) -> Placement | None:
    levels = name.split("/")
    if len(levels) < 2:
        return None
    level = levels[-2]
    room = directory.find(level)
    where = f"room level {level!r} of the name {name!r}"
    if len(levels) >= 4:
        building, floor = levels[-4], levels[-3]
        if room is not None and (room.building, room.floor) != (building, floor):
            problem = f"room {room.id} is in {room.building}/{room.floor}, not {building}/{floor}"
            return Placement(None, "name", where, problem=problem)
        if room is None:
            if not all(valid_segment(part) for part in (building, floor, level)):
                return None
            return Placement(level, "name", f"{where} (a new room in {building}/{floor})", building, floor)
    return Placement(room.id, "name", where) if room is not None else None
