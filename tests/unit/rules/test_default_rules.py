"""The built-in rules (rules/default.yaml) each do what their description says."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rules.engine import RuleMemory, RuleSet, default_rules
from rules.types import (
    AccessEvent,
    Action,
    Alert,
    Command,
    OccupancyChanged,
    Priority,
    ReadingChanged,
    RoomFacts,
    RuleEvent,
    Severity,
    Tick,
)

PARIS = ZoneInfo("Europe/Paris")


def local(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


MONDAY_10 = local("2024-03-04 10:00")
ROOM = RoomFacts(
    room_id="orion",
    type="meeting",
    building="hq",
    floor="2",
    bookable=True,
    capacity=8,
    occupancy="occupied",
    occupancy_since=MONDAY_10 - 1800,
    people=4,
    co2_ppm=650.0,
    temperature_c=21.0,
    humidity_pct=45.0,
    illuminance_lux=500.0,
    lights_on=True,
    brightness_pct=60.0,
    power_w=35.0,
    door_open=False,
    door_open_since=None,
    locked=True,
    lux_target=500.0,
    comfort_setpoint_c=21.5,
    setback_setpoint_c=16.5,
    devices={"light": ("orion-light",), "hvac": ("orion-hvac",), "lock": ("orion-door",)},
)
VACANT = replace(ROOM, occupancy="vacant", occupancy_since=MONDAY_10, people=0)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return default_rules(tz="Europe/Paris")


def evaluate(
    ruleset: RuleSet, room: RoomFacts, event: RuleEvent, now: float, memory: RuleMemory | None = None
) -> tuple[list[Action], RuleMemory]:
    return ruleset.evaluate({room.room_id: room}, event, now, memory or RuleMemory())


def commands(actions: list[Action]) -> list[tuple[str, str, dict[str, Any], Priority]]:
    return [(a.rule, a.device_id, a.payload, a.priority) for a in actions if isinstance(a, Command)]


def alerts(actions: list[Action]) -> list[tuple[str, Severity, str]]:
    return [(a.rule, a.severity, a.message) for a in actions if isinstance(a, Alert)]


def test_the_default_rule_set(ruleset: RuleSet) -> None:
    assert [rule.name for rule in ruleset.rules] == [
        "lights-off-when-vacant",
        "daylight-dimming",
        "after-hours-lights-off",
        "hvac-setback-when-vacant",
        "hvac-comfort-when-occupied",
        "hvac-comfort-before-booking",
        "co2-ventilation-alert",
        "door-held-open",
        "denied-badge-burst",
        "after-hours-access",
    ]
    for rule in ruleset.rules:
        assert rule.enabled and len(rule.description) > 40, rule.name
    assert ruleset.tz == "Europe/Paris"


def test_lights_off_when_vacant(ruleset: RuleSet) -> None:
    event = OccupancyChanged("orion", "occupied", "vacant", MONDAY_10)
    actions, _ = evaluate(ruleset, VACANT, event, MONDAY_10)
    assert ("lights-off-when-vacant", "orion-light", {"state": "OFF"}, Priority.ENERGY) in commands(actions)
    # Lights already off: nothing to switch.
    actions, _ = evaluate(ruleset, replace(VACANT, lights_on=False), event, MONDAY_10)
    assert [c for c in commands(actions) if c[0] == "lights-off-when-vacant"] == []


@pytest.mark.parametrize(
    ("lux", "occupancy", "brightness"),
    [
        (700.0, "occupied", 127),  # sunny: 60 % -> 50 %
        (380.0, "occupied", 178),  # cloudy: 60 % -> 70 %
        (530.0, "occupied", None),  # within 50 lx of the target
        (700.0, "vacant", None),  # nobody there: vacancy rules handle it
    ],
)
def test_daylight_dimming(ruleset: RuleSet, lux: float, occupancy: str, brightness: int | None) -> None:
    room = replace(ROOM, illuminance_lux=lux, occupancy=occupancy)
    actions, _ = evaluate(
        ruleset, room, ReadingChanged("orion", "illuminance_lux", 500.0, lux, MONDAY_10), MONDAY_10
    )
    expected = [] if brightness is None else [("daylight-dimming", "orion-light", {"brightness": brightness})]
    assert [c[:3] for c in commands(actions)] == expected


def test_after_hours_lights_off(ruleset: RuleSet) -> None:
    lit_vacant = replace(VACANT, occupancy_since=local("2024-03-04 18:40"))
    memory = RuleMemory()
    facts = {"orion": lit_vacant, "vega": replace(ROOM, room_id="vega", devices={"light": ("vega-light",)})}
    seen: list[list[Action]] = []
    for moment in ("2024-03-04 18:50", "2024-03-04 19:00", "2024-03-04 19:00:01"):
        now = local(moment)
        actions, memory = ruleset.evaluate(facts, Tick(now), now, memory)
        seen.append([a for a in actions if isinstance(a, Command) and a.rule == "after-hours-lights-off"])
    assert seen[0] == [] and seen[2] == []
    # Only the vacant room; the occupied one keeps its lights.
    assert [(c.device_id, c.payload) for c in seen[1] if isinstance(c, Command)] == [
        ("orion-light", {"state": "OFF"})
    ]


def test_after_hours_lights_off_not_on_saturday(ruleset: RuleSet) -> None:
    memory = RuleMemory()
    for moment in ("2024-03-09 18:50", "2024-03-09 19:00"):
        now = local(moment)
        actions, memory = evaluate(ruleset, VACANT, Tick(now), now, memory)
        assert [a for a in actions if getattr(a, "rule", "") == "after-hours-lights-off"] == []


def test_hvac_setback_after_30_minutes_vacant(ruleset: RuleSet) -> None:
    memory = RuleMemory()
    actions, memory = evaluate(ruleset, VACANT, Tick(MONDAY_10 + 1799), MONDAY_10 + 1799, memory)
    assert commands(actions) == []
    actions, memory = evaluate(ruleset, VACANT, Tick(MONDAY_10 + 1800), MONDAY_10 + 1800, memory)
    assert commands(actions) == [
        ("hvac-setback-when-vacant", "orion-hvac", {"setpoint": 16.5}, Priority.ENERGY)
    ]


def test_no_setback_when_a_booking_starts_soon(ruleset: RuleSet) -> None:
    room = replace(VACANT, next_booking_in=600.0)
    actions, _ = evaluate(ruleset, room, Tick(MONDAY_10 + 1800), MONDAY_10 + 1800)
    assert [c for c in commands(actions) if c[0] == "hvac-setback-when-vacant"] == []


def test_hvac_comfort_when_occupied(ruleset: RuleSet) -> None:
    event = OccupancyChanged("orion", "vacant", "occupied", MONDAY_10)
    actions, _ = evaluate(ruleset, replace(ROOM, occupancy_since=MONDAY_10), event, MONDAY_10)
    assert commands(actions) == [
        ("hvac-comfort-when-occupied", "orion-hvac", {"setpoint": 21.5}, Priority.ENERGY)
    ]


def test_hvac_comfort_before_a_booking(ruleset: RuleSet) -> None:
    memory = RuleMemory()
    booked_later = replace(VACANT, next_booking_in=3600.0)
    actions, memory = evaluate(ruleset, booked_later, Tick(MONDAY_10), MONDAY_10, memory)
    assert commands(actions) == []
    booked_soon = replace(VACANT, next_booking_in=890.0)
    actions, memory = evaluate(ruleset, booked_soon, Tick(MONDAY_10 + 1), MONDAY_10 + 1, memory)
    assert commands(actions) == [
        ("hvac-comfort-before-booking", "orion-hvac", {"setpoint": 21.5}, Priority.BOOKING)
    ]
    actions, memory = evaluate(
        ruleset, replace(booked_soon, next_booking_in=889.0), Tick(MONDAY_10 + 2), MONDAY_10 + 2, memory
    )
    assert commands(actions) == []


def test_co2_ventilation_alert_with_hysteresis(ruleset: RuleSet) -> None:
    memory = RuleMemory()
    fired = []
    for ppm in (950.0, 1120.0, 980.0, 1060.0, 880.0, 1010.0):
        room = replace(ROOM, co2_ppm=ppm)
        actions, memory = evaluate(
            ruleset, room, ReadingChanged("orion", "co2_ppm", None, ppm, MONDAY_10), MONDAY_10, memory
        )
        fired += alerts(actions)
    assert fired == [
        (
            "co2-ventilation-alert",
            Severity.WARNING,
            "CO2 in orion is 1120 ppm (above 1000 ppm): ventilate the room",
        ),
        (
            "co2-ventilation-alert",
            Severity.WARNING,
            "CO2 in orion is 1010 ppm (above 1000 ppm): ventilate the room",
        ),
    ]


def test_door_held_open(ruleset: RuleSet) -> None:
    opened = replace(ROOM, door_open=True, door_open_since=MONDAY_10)
    memory = RuleMemory()
    actions, memory = evaluate(
        ruleset, opened, ReadingChanged("orion", "door_open", False, True, MONDAY_10), MONDAY_10, memory
    )
    assert alerts(actions) == []
    actions, memory = evaluate(ruleset, opened, Tick(MONDAY_10 + 60), MONDAY_10 + 60, memory)
    assert alerts(actions) == [
        ("door-held-open", Severity.WARNING, "Door of orion held open for more than 60 s")
    ]
    actions, memory = evaluate(ruleset, opened, Tick(MONDAY_10 + 90), MONDAY_10 + 90, memory)
    assert alerts(actions) == []


def test_denied_badge_burst(ruleset: RuleSet) -> None:
    memory = RuleMemory()
    fired = []
    for offset in (0, 10, 25):
        at = MONDAY_10 + offset
        actions, memory = evaluate(
            ruleset, ROOM, AccessEvent("orion", "orion-reader", "denied", "p-9", at), at, memory
        )
        fired.append(alerts(actions))
    assert fired == [
        [],
        [],
        [
            (
                "denied-badge-burst",
                Severity.WARNING,
                "3 badge reads denied within 60 s at orion (last at orion-reader, 10:00)",
            )
        ],
    ]


@pytest.mark.parametrize(
    ("moment", "alerted"),
    [
        ("2024-03-04 10:00", False),  # Monday, working hours
        ("2024-03-04 07:00", False),
        ("2024-03-04 06:59", True),
        ("2024-03-04 20:00", True),
        ("2024-03-04 21:30", True),
        ("2024-03-09 10:00", True),  # Saturday
        ("2024-03-10 15:00", True),  # Sunday
    ],
)
def test_after_hours_access(ruleset: RuleSet, moment: str, alerted: bool) -> None:
    at = local(moment)
    # Processed a day later (say, after an outage): judged by when the badge was read.
    actions, _ = evaluate(
        ruleset, ROOM, AccessEvent("orion", "orion-reader", "granted", "p-9", at), at + 86_400
    )
    expected = [
        (
            "after-hours-access",
            Severity.INFO,
            f"After-hours access to orion at {moment[11:]} on {moment[:10]} (orion-reader)",
        )
    ]
    assert alerts(actions) == (expected if alerted else [])


def test_a_normal_working_day_hour_is_quiet(ruleset: RuleSet) -> None:
    """An occupied, well-lit, fresh room in working hours: an hour of ticks does nothing."""
    memory = RuleMemory()
    for second in range(0, 3600, 5):
        now = MONDAY_10 + second
        actions, memory = evaluate(ruleset, ROOM, Tick(now), now, memory)
        assert actions == [], second
