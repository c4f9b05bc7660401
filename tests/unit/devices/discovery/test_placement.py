"""Which room an announced device goes to: rules, area, name, group, in that order."""

from __future__ import annotations

import pytest

from devices.discovery.model import PlacementHints
from devices.discovery.placement import Placement, RoomDirectory, RoomRef, RoomRule, place

ROOMS = RoomDirectory(
    [
        RoomRef("orion", "Orion", "hq", "2"),
        RoomRef("dining-room", "Dining room", "hq", "1"),
        RoomRef("kitchen_3", None, "annex", "0"),
    ]
)
RULES = [
    RoomRule("pattern", "0x00158d*", "orion", 0),
    RoomRule("group", "Lights *", "kitchen_3", 1),
    RoomRule("area", "Upstairs", "orion", 2),
]


def hints(
    name: str, ids: tuple[str, ...] = (), groups: tuple[str, ...] = (), area: str | None = None
) -> PlacementHints:
    return PlacementHints(name, ids, groups, area)


CASES = [
    ("rule on an id", hints("sensor", ("0x00158d0001",)), "zigbee2mqtt", ("orion", "config_rule")),
    (
        "rule on a group",
        hints("lamp", groups=("lights kitchen",)),
        "zigbee2mqtt",
        ("kitchen_3", "config_rule"),
    ),
    ("rule on an area", hints("x", area="upstairs"), "homeassistant", ("orion", "config_rule")),
    ("rules come first", hints("dining room/x", ("0x00158d00",)), "zigbee2mqtt", ("orion", "config_rule")),
    ("room level by id", hints("orion/radar"), "zigbee2mqtt", ("orion", "name")),
    ("room level by name", hints("Dining room/lamp"), "zigbee2mqtt", ("dining-room", "name")),
    ("room level by slug", hints("Kitchen 3/plug"), "zigbee2mqtt", ("kitchen_3", "name")),
    ("deeper names: the level before the last", hints("work/orion/chair"), "zigbee2mqtt", ("orion", "name")),
    ("suggested area", hints("x", area="Dining room"), "homeassistant", ("dining-room", "suggested_area")),
    (
        "area before name",
        hints("orion/x", area="dining room"),
        "homeassistant",
        ("dining-room", "suggested_area"),
    ),
    ("area only for Home Assistant", hints("x", area="orion"), "zigbee2mqtt", (None, "none")),
    ("group names a room", hints("bulb", groups=("Orion",)), "zigbee2mqtt", ("orion", "group")),
    ("name before group", hints("orion/bulb", groups=("dining room",)), "zigbee2mqtt", ("orion", "name")),
    ("nothing", hints("0x0017880104dfc05e"), "zigbee2mqtt", (None, "none")),
    ("unknown room level", hints("attic/x"), "zigbee2mqtt", (None, "none")),
]


@pytest.mark.parametrize(("hint", "source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_placement(hint: PlacementHints, source: str, expected: tuple[str | None, str]) -> None:
    found = place(hint, RULES, ROOMS, source=source)
    assert (found.room, found.rule) == expected, found.detail


def test_a_full_path_creates_an_unknown_room_in_its_building_and_floor() -> None:
    found = place(hints("hq/3/atrium/radar"), [], ROOMS, source="zigbee2mqtt")
    assert found == Placement("atrium", "name", found.detail, "hq", "3")


def test_a_full_path_that_contradicts_a_known_room_places_nothing() -> None:
    found = place(hints("annex/1/orion/radar"), [], ROOMS, source="zigbee2mqtt")
    assert found.room is None and found.problem == "room orion is in hq/2, not annex/1"


def test_a_full_path_with_levels_that_are_no_ids_creates_nothing() -> None:
    assert place(hints("hq/3/big hall/radar"), [], ROOMS, source="zigbee2mqtt").room is None
