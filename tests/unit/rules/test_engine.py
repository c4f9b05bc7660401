"""Declarative rules as tables of (facts, event, now, memory) -> actions.

Every scenario runs its steps in order, round-tripping the memory through JSON
between steps, as a gateway that restarts after any event would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rules.engine import RuleMemory, RulesError, RuleSet, load_rules, load_rules_file
from rules.spec import FACT_KINDS
from rules.types import (
    FACT_NAMES,
    AccessEvent,
    Action,
    Alert,
    Command,
    DeviceAvailabilityChanged,
    OccupancyChanged,
    Priority,
    Publish,
    ReadingChanged,
    RoomFacts,
    RuleEvent,
    Severity,
    Tick,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rules"
PARIS = ZoneInfo("Europe/Paris")
# Monday 4 March 2024, 10:00 UTC (11:00 in Paris, winter time).
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC).timestamp()

ROOM = RoomFacts(
    room_id="orion",
    type="meeting",
    building="hq",
    floor="2",
    bookable=True,
    capacity=8,
    occupancy="occupied",
    occupancy_since=T0 - 3600,
    people=3,
    co2_ppm=600.0,
    temperature_c=21.0,
    humidity_pct=40.0,
    illuminance_lux=500.0,
    lights_on=True,
    brightness_pct=60.0,
    power_w=40.0,
    door_open=False,
    door_open_since=None,
    locked=True,
    lux_target=500.0,
    devices={"light": ("orion-l1", "orion-l2"), "hvac": ("orion-hvac",), "lock": ("orion-door",)},
)


def room(**changes: Any) -> dict[str, RoomFacts]:
    return {"orion": replace(ROOM, **changes)}


def local(text: str, zone: tzinfo = PARIS) -> float:
    """Epoch seconds of a local 'YYYY-MM-DD HH:MM[:SS]' in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def rules(text: str, tz: str = "UTC") -> RuleSet:
    return load_rules(text, source="test", tz=tz)


def show(action: Action) -> tuple[Any, ...]:
    """Actions as short tuples, so tables stay readable."""
    match action:
        case Command():
            return ("cmd", action.device_id, action.payload)
        case Alert():
            return ("alert", action.severity.value, action.message)
        case Publish():
            return ("publish", action.topic, action.payload)


Step = tuple[dict[str, RoomFacts], RuleEvent, float, list[tuple[Any, ...]]]


def run(ruleset: RuleSet, steps: list[Step], memory: RuleMemory | None = None) -> RuleMemory:
    memory = memory or RuleMemory()
    for index, (facts, event, now, expected) in enumerate(steps):
        actions, memory = ruleset.evaluate(facts, event, now, memory)
        assert [show(a) for a in actions] == expected, f"step {index}: {event}"
        # What the gateway persists and loads back after a restart.
        memory = RuleMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
    return memory


LIGHTS_OFF = [("cmd", "orion-l1", {"state": "OFF"}), ("cmd", "orion-l2", {"state": "OFF"})]
LIGHTS_ON = [("cmd", "orion-l1", {"state": "ON"}), ("cmd", "orion-l2", {"state": "ON"})]


def occupancy(old: str, new: str, at: float) -> OccupancyChanged:
    return OccupancyChanged("orion", old, new, at)


def reading(fact: str, old: Any, new: Any, at: float) -> ReadingChanged:
    return ReadingChanged("orion", fact, old, new, at)


def badge(result: str, at: float, room_id: str = "orion") -> AccessEvent:
    return AccessEvent(room_id, f"{room_id}-reader", result, "p-1234", at)


# Occupancy triggers

VACANT_OFF = rules("- {name: r, trigger: {occupancy: vacant}, actions: [{lights: off}]}")
VACANT_600 = rules("- {name: r, trigger: {occupancy: vacant, for: 600}, actions: [{lights: off}]}")
OCCUPANCY_CASES: dict[str, tuple[RuleSet, list[Step]]] = {
    "change to vacant fires": (
        VACANT_OFF,
        [(room(occupancy="vacant", occupancy_since=T0), occupancy("occupied", "vacant", T0), T0, LIGHTS_OFF)],
    ),
    "change to occupied does not": (
        VACANT_OFF,
        [(room(), occupancy("vacant", "occupied", T0), T0, [])],
    ),
    "vacant to vacant is no change": (
        VACANT_OFF,
        [(room(occupancy="vacant"), occupancy("vacant", "vacant", T0), T0, [])],
    ),
    "without for, ticks do nothing": (
        VACANT_OFF,
        [(room(occupancy="vacant", occupancy_since=T0 - 5000), Tick(T0), T0, [])],
    ),
    "for: not before the deadline, once at it, never again": (
        VACANT_600,
        [
            (room(occupancy="vacant", occupancy_since=T0), occupancy("occupied", "vacant", T0), T0, []),
            (room(occupancy="vacant", occupancy_since=T0), Tick(T0 + 599), T0 + 599, []),
            (room(occupancy="vacant", occupancy_since=T0), Tick(T0 + 600), T0 + 600, LIGHTS_OFF),
            (room(occupancy="vacant", occupancy_since=T0), Tick(T0 + 601), T0 + 601, []),
            (room(occupancy="vacant", occupancy_since=T0), Tick(T0 + 5000), T0 + 5000, []),
        ],
    ),
    "for: a new episode fires again": (
        VACANT_600,
        [
            (room(occupancy="vacant", occupancy_since=T0), Tick(T0 + 600), T0 + 600, LIGHTS_OFF),
            (room(occupancy_since=T0 + 700), Tick(T0 + 800), T0 + 800, []),
            (room(occupancy="vacant", occupancy_since=T0 + 900), Tick(T0 + 1400), T0 + 1400, []),
            (room(occupancy="vacant", occupancy_since=T0 + 900), Tick(T0 + 1500), T0 + 1500, LIGHTS_OFF),
        ],
    ),
    "for: a room that never became vacant does not fire": (
        VACANT_600,
        [(room(occupancy="unknown", occupancy_since=None), Tick(T0), T0, [])],
    ),
}


@pytest.mark.parametrize(("ruleset", "steps"), OCCUPANCY_CASES.values(), ids=OCCUPANCY_CASES.keys())
def test_occupancy_trigger(ruleset: RuleSet, steps: list[Step]) -> None:
    run(ruleset, steps)


# Fact triggers: thresholds, hysteresis, `is`, `for`, any change

CO2 = rules(
    """
- name: co2
  trigger: {fact: co2_ppm, above: 1000, hysteresis: 100}
  actions: [{alert: {severity: warning, message: "CO2 {value:.0f} in {room}"}}]
"""
)
COLD = rules(
    """
- name: cold
  trigger: {fact: temperature_c, below: 18, hysteresis: 1}
  actions: [{hvac: {mode: heat}}]
"""
)
DOOR = rules(
    """
- name: door
  trigger: {fact: door_open, is: true, for: 60}
  actions: [{alert: {severity: critical, message: "door of {room} open"}}]
"""
)
ANY_LUX = rules(
    "- {name: lux, trigger: {fact: illuminance_lux}, actions: [{publish: {topic: 'lux/{room}'}}]}"
)
CO2_HELD = rules(
    "- {name: co2, trigger: {fact: co2_ppm, above: 1000, for: 300}, actions: [{alert: {message: '{value}'}}]}"
)


def co2_alert(ppm: int) -> tuple[Any, ...]:
    return ("alert", "warning", f"CO2 {ppm} in orion")


DOOR_ALERT = ("alert", "critical", "door of orion open")
FACT_CASES: dict[str, tuple[RuleSet, list[Step]]] = {
    "fires on the crossing, once while above": (
        CO2,
        [
            (room(co2_ppm=900.0), reading("co2_ppm", 800, 900, T0), T0, []),
            (room(co2_ppm=1100.0), reading("co2_ppm", 900, 1100, T0 + 1), T0 + 1, [co2_alert(1100)]),
            (room(co2_ppm=1300.0), reading("co2_ppm", 1100, 1300, T0 + 2), T0 + 2, []),
            (room(co2_ppm=1300.0), Tick(T0 + 3), T0 + 3, []),
        ],
    ),
    "hysteresis: hovering at the threshold fires once": (
        CO2,
        [
            (room(co2_ppm=1010.0), reading("co2_ppm", 990, 1010, T0), T0, [co2_alert(1010)]),
            (room(co2_ppm=990.0), reading("co2_ppm", 1010, 990, T0 + 1), T0 + 1, []),
            (room(co2_ppm=1010.0), reading("co2_ppm", 990, 1010, T0 + 2), T0 + 2, []),
            (room(co2_ppm=901.0), reading("co2_ppm", 1010, 901, T0 + 3), T0 + 3, []),
            (room(co2_ppm=1010.0), reading("co2_ppm", 901, 1010, T0 + 4), T0 + 4, []),
            # Back below 900 (1000 - 100): re-armed.
            (room(co2_ppm=880.0), reading("co2_ppm", 1010, 880, T0 + 5), T0 + 5, []),
            (room(co2_ppm=1020.0), reading("co2_ppm", 880, 1020, T0 + 6), T0 + 6, [co2_alert(1020)]),
        ],
    ),
    "exactly at the threshold is not above it": (
        CO2,
        [(room(co2_ppm=1000.0), reading("co2_ppm", 900, 1000, T0), T0, [])],
    ),
    "a Tick notices a value set without a reading event": (
        CO2,
        [
            (room(co2_ppm=1250.0), Tick(T0), T0, [co2_alert(1250)]),
            (room(co2_ppm=1250.0), Tick(T0 + 1), T0 + 1, []),
        ],
    ),
    "an unknown value ends the episode": (
        CO2,
        [
            (room(co2_ppm=1100.0), reading("co2_ppm", 900, 1100, T0), T0, [co2_alert(1100)]),
            (room(co2_ppm=None), reading("co2_ppm", 1100, None, T0 + 1), T0 + 1, []),
            (room(co2_ppm=1100.0), reading("co2_ppm", None, 1100, T0 + 2), T0 + 2, [co2_alert(1100)]),
        ],
    ),
    "rooms are independent": (
        CO2,
        [
            (
                {"orion": ROOM, "vega": replace(ROOM, room_id="vega", co2_ppm=1500.0)},
                Tick(T0),
                T0,
                [("alert", "warning", "CO2 1500 in vega")],
            ),
        ],
    ),
    "below with hysteresis": (
        COLD,
        [
            (
                room(temperature_c=17.5),
                reading("temperature_c", 18.2, 17.5, T0),
                T0,
                [("cmd", "orion-hvac", {"mode": "heat"})],
            ),
            (room(temperature_c=18.5), reading("temperature_c", 17.5, 18.5, T0 + 1), T0 + 1, []),
            (room(temperature_c=17.9), reading("temperature_c", 18.5, 17.9, T0 + 2), T0 + 2, []),
            (room(temperature_c=19.0), reading("temperature_c", 17.9, 19.0, T0 + 3), T0 + 3, []),
            (
                room(temperature_c=17.0),
                reading("temperature_c", 19.0, 17.0, T0 + 4),
                T0 + 4,
                [("cmd", "orion-hvac", {"mode": "heat"})],
            ),
        ],
    ),
    "is + for: fires once the door has been open 60 s": (
        DOOR,
        [
            (room(door_open=True, door_open_since=T0), reading("door_open", False, True, T0), T0, []),
            (room(door_open=True, door_open_since=T0), Tick(T0 + 59), T0 + 59, []),
            (room(door_open=True, door_open_since=T0), Tick(T0 + 60), T0 + 60, [DOOR_ALERT]),
            (room(door_open=True, door_open_since=T0), Tick(T0 + 120), T0 + 120, []),
            (room(door_open=False), reading("door_open", True, False, T0 + 130), T0 + 130, []),
            (
                room(door_open=True, door_open_since=T0 + 140),
                reading("door_open", False, True, T0 + 140),
                T0 + 140,
                [],
            ),
            (room(door_open=True, door_open_since=T0 + 140), Tick(T0 + 200), T0 + 200, [DOOR_ALERT]),
        ],
    ),
    "is + for: closed before the deadline does not fire": (
        DOOR,
        [
            (room(door_open=True, door_open_since=T0), reading("door_open", False, True, T0), T0, []),
            (room(door_open=False), reading("door_open", True, False, T0 + 30), T0 + 30, []),
            (room(door_open=False), Tick(T0 + 90), T0 + 90, []),
        ],
    ),
    "is + for: a door found open on a Tick is dated by door_open_since": (
        DOOR,
        [(room(door_open=True, door_open_since=T0 - 600), Tick(T0), T0, [DOOR_ALERT])],
    ),
    "threshold + for": (
        CO2_HELD,
        [
            (room(co2_ppm=1100.0), reading("co2_ppm", 900, 1100, T0), T0, []),
            (room(co2_ppm=1100.0), Tick(T0 + 299), T0 + 299, []),
            (room(co2_ppm=1100.0), Tick(T0 + 300), T0 + 300, [("alert", "warning", "1100.0")]),
        ],
    ),
    "any change fires on every new value": (
        ANY_LUX,
        [
            (room(), reading("illuminance_lux", 400, 420, T0), T0, [("publish", "lux/orion", {})]),
            (room(), reading("illuminance_lux", 420, 420, T0 + 1), T0 + 1, []),
            (room(), reading("co2_ppm", 420, 800, T0 + 1), T0 + 1, []),
            (room(), Tick(T0 + 2), T0 + 2, []),
        ],
    ),
}


@pytest.mark.parametrize(("ruleset", "steps"), FACT_CASES.values(), ids=FACT_CASES.keys())
def test_fact_trigger(ruleset: RuleSet, steps: list[Step]) -> None:
    run(ruleset, steps)


# Time of day, in the site's time zone

EVENING = rules(
    """
- name: evening
  trigger: {at: "19:00", weekdays: [mon, tue, wed, thu, fri]}
  conditions: {fact: occupancy, value: vacant}
  actions: [{lights: off}]
""",
    tz="Europe/Paris",
)
EVENING_BOUNDED = rules(
    """
- name: evening
  trigger: {at: "19:00", catch_up: 3600}
  actions: [{lights: off}]
""",
    tz="Europe/Paris",
)
VACANT = room(occupancy="vacant", occupancy_since=T0 - 5000)
TIME_CASES: dict[str, tuple[RuleSet, list[Step]]] = {
    "fires at 19:00 Paris time, once": (
        EVENING,
        [
            (VACANT, Tick(local("2024-03-04 18:00")), local("2024-03-04 18:00"), []),
            (VACANT, Tick(local("2024-03-04 18:59:59")), local("2024-03-04 18:59:59"), []),
            (VACANT, Tick(local("2024-03-04 19:00")), local("2024-03-04 19:00"), LIGHTS_OFF),
            (VACANT, Tick(local("2024-03-04 19:00:01")), local("2024-03-04 19:00:01"), []),
            (VACANT, Tick(local("2024-03-04 23:00")), local("2024-03-04 23:00"), []),
            (VACANT, Tick(local("2024-03-05 19:00:01")), local("2024-03-05 19:00:01"), LIGHTS_OFF),
        ],
    ),
    "19:00 Paris is 18:00 UTC in winter": (
        EVENING,
        [
            (VACANT, Tick(local("2024-03-04 12:00", UTC)), local("2024-03-04 12:00", UTC), []),
            (VACANT, Tick(local("2024-03-04 17:59", UTC)), local("2024-03-04 17:59", UTC), []),
            (VACANT, Tick(local("2024-03-04 18:00", UTC)), local("2024-03-04 18:00", UTC), LIGHTS_OFF),
        ],
    ),
    "19:00 Paris is 17:00 UTC in summer": (
        EVENING,
        [
            (VACANT, Tick(local("2024-06-03 12:00", UTC)), local("2024-06-03 12:00", UTC), []),
            (VACANT, Tick(local("2024-06-03 16:59", UTC)), local("2024-06-03 16:59", UTC), []),
            (VACANT, Tick(local("2024-06-03 17:00", UTC)), local("2024-06-03 17:00", UTC), LIGHTS_OFF),
        ],
    ),
    "not on the weekend": (
        EVENING,
        [
            (VACANT, Tick(local("2024-03-08 20:00")), local("2024-03-08 20:00"), []),  # Friday, armed
            (VACANT, Tick(local("2024-03-09 19:30")), local("2024-03-09 19:30"), []),  # Saturday
            (VACANT, Tick(local("2024-03-10 19:30")), local("2024-03-10 19:30"), []),  # Sunday
            (VACANT, Tick(local("2024-03-11 19:00")), local("2024-03-11 19:00"), LIGHTS_OFF),  # Monday
        ],
    ),
    "conditions pick the rooms": (
        EVENING,
        [
            (room(), Tick(local("2024-03-04 18:00")), local("2024-03-04 18:00"), []),
            (room(), Tick(local("2024-03-04 19:00")), local("2024-03-04 19:00"), []),
        ],
    ),
    "first start after 19:00 does not fire (nothing known about the past)": (
        EVENING,
        [(VACANT, Tick(local("2024-03-04 21:00")), local("2024-03-04 21:00"), [])],
    ),
    "catch-up: down over 19:00, fires once on the first tick": (
        EVENING,
        [
            (VACANT, Tick(local("2024-03-04 18:00")), local("2024-03-04 18:00"), []),
            # ... the gateway was down from 18:00 to 23:00
            (VACANT, Tick(local("2024-03-04 23:00")), local("2024-03-04 23:00"), LIGHTS_OFF),
            (VACANT, Tick(local("2024-03-04 23:00:01")), local("2024-03-04 23:00:01"), []),
        ],
    ),
    "catch-up: several missed occurrences fire once": (
        EVENING,
        [
            (VACANT, Tick(local("2024-03-04 18:00")), local("2024-03-04 18:00"), []),
            (VACANT, Tick(local("2024-03-07 08:00")), local("2024-03-07 08:00"), LIGHTS_OFF),
            (VACANT, Tick(local("2024-03-07 08:00:01")), local("2024-03-07 08:00:01"), []),
        ],
    ),
    "catch-up: too late past catch_up is skipped, and stays skipped": (
        EVENING_BOUNDED,
        [
            (VACANT, Tick(local("2024-03-04 18:00")), local("2024-03-04 18:00"), []),
            (VACANT, Tick(local("2024-03-04 20:30")), local("2024-03-04 20:30"), []),
            (VACANT, Tick(local("2024-03-04 20:31")), local("2024-03-04 20:31"), []),
            (VACANT, Tick(local("2024-03-05 19:59")), local("2024-03-05 19:59"), LIGHTS_OFF),
        ],
    ),
}


@pytest.mark.parametrize(("ruleset", "steps"), TIME_CASES.values(), ids=TIME_CASES.keys())
def test_time_trigger(ruleset: RuleSet, steps: list[Step]) -> None:
    run(ruleset, steps)


def test_time_trigger_on_dst_change_days() -> None:
    """02:30 does not exist on 31 March 2024 in Paris and 02:30 happens twice on 27 October."""
    ruleset = rules("- {name: r, trigger: {at: '02:30'}, actions: [{lights: off}]}", tz="Europe/Paris")
    for day in ("2024-03-31", "2024-10-27"):
        memory = run(ruleset, [(VACANT, Tick(local(f"{day} 00:00")), local(f"{day} 00:00"), [])])
        fired = 0
        for minute in range(0, 6 * 60, 5):
            now = local(f"{day} 00:00") + minute * 60
            actions, memory = ruleset.evaluate(VACANT, Tick(now), now, memory)
            fired += bool(actions)
        assert fired == 1, day


# Device availability

OFFLINE_NOW = rules(
    "- {name: r, trigger: {device_offline: any}, actions: [{alert: {message: '{device} gone'}}]}"
)
LIGHT_OFFLINE_300 = rules(
    "- {name: r, trigger: {device_offline: light, for: 300}, actions: [{alert: {message: '{device} gone'}}]}"
)


def availability(device: str, online: bool, at: float) -> DeviceAvailabilityChanged:
    return DeviceAvailabilityChanged("orion", device, online, at)


def gone(device: str) -> tuple[Any, ...]:
    return ("alert", "warning", f"{device} gone")


DEVICE_CASES: dict[str, tuple[RuleSet, list[Step]]] = {
    "offline fires at once, online does not": (
        OFFLINE_NOW,
        [
            (room(), availability("orion-co2", False, T0), T0, [gone("orion-co2")]),
            (room(), availability("orion-co2", True, T0 + 5), T0 + 5, []),
        ],
    ),
    "for: fires once after 300 s": (
        LIGHT_OFFLINE_300,
        [
            (room(), availability("orion-l1", False, T0), T0, []),
            (room(), Tick(T0 + 299), T0 + 299, []),
            (room(), Tick(T0 + 300), T0 + 300, [gone("orion-l1")]),
            (room(), Tick(T0 + 400), T0 + 400, []),
        ],
    ),
    "for: back online in time does not fire": (
        LIGHT_OFFLINE_300,
        [
            (room(), availability("orion-l1", False, T0), T0, []),
            (room(), availability("orion-l1", True, T0 + 200), T0 + 200, []),
            (room(), Tick(T0 + 400), T0 + 400, []),
        ],
    ),
    "for: a second outage is a new episode": (
        LIGHT_OFFLINE_300,
        [
            (room(), availability("orion-l1", False, T0), T0, []),
            (room(), Tick(T0 + 300), T0 + 300, [gone("orion-l1")]),
            (room(), availability("orion-l1", True, T0 + 310), T0 + 310, []),
            (room(), availability("orion-l1", False, T0 + 320), T0 + 320, []),
            (room(), Tick(T0 + 620), T0 + 620, [gone("orion-l1")]),
        ],
    ),
    "kind filter: a sensor is not a light": (
        LIGHT_OFFLINE_300,
        [
            (room(), availability("orion-co2", False, T0), T0, []),
            (room(), Tick(T0 + 1000), T0 + 1000, []),
        ],
    ),
    "a repeated offline report keeps the first time": (
        LIGHT_OFFLINE_300,
        [
            (room(), availability("orion-l2", False, T0), T0, []),
            (room(), availability("orion-l2", False, T0 + 200), T0 + 200, []),
            (room(), Tick(T0 + 300), T0 + 300, [gone("orion-l2")]),
        ],
    ),
}


@pytest.mark.parametrize(("ruleset", "steps"), DEVICE_CASES.values(), ids=DEVICE_CASES.keys())
def test_device_trigger(ruleset: RuleSet, steps: list[Step]) -> None:
    run(ruleset, steps)


# Access events and bursts

BURST = rules(
    """
- name: burst
  trigger: {access: denied, count: 3, within: 60}
  actions: [{alert: {message: "{count} denied at {device}"}}]
"""
)
GRANTED = rules("- {name: g, trigger: {access: granted}, actions: [{lock: unlock}]}")
BURST_ALERT = ("alert", "warning", "3 denied at orion-reader")
ACCESS_CASES: dict[str, tuple[RuleSet, list[Step]]] = {
    "granted fires on each read": (
        GRANTED,
        [
            (room(), badge("granted", T0), T0, [("cmd", "orion-door", {"state": "UNLOCK"})]),
            (room(), badge("denied", T0 + 1), T0 + 1, []),
            (room(), badge("granted", T0 + 2), T0 + 2, [("cmd", "orion-door", {"state": "UNLOCK"})]),
        ],
    ),
    "three denials within 60 s fire once": (
        BURST,
        [
            (room(), badge("denied", T0), T0, []),
            (room(), badge("denied", T0 + 20), T0 + 20, []),
            (room(), badge("granted", T0 + 25), T0 + 25, []),
            (room(), badge("denied", T0 + 59), T0 + 59, [BURST_ALERT]),
            (room(), badge("denied", T0 + 61), T0 + 61, []),
        ],
    ),
    "denials spread out do not, a sliding window does": (
        BURST,
        [
            (room(), badge("denied", T0), T0, []),
            (room(), badge("denied", T0 + 40), T0 + 40, []),
            (room(), badge("denied", T0 + 80), T0 + 80, []),
            # The window slides: 40, 80 and 95 are within 60 s of each other.
            (room(), badge("denied", T0 + 95), T0 + 95, [BURST_ALERT]),
        ],
    ),
    "rooms count separately": (
        BURST,
        [
            (room(), badge("denied", T0), T0, []),
            (room(), badge("denied", T0 + 1, "vega"), T0 + 1, []),
            (room(), badge("denied", T0 + 2), T0 + 2, []),
            (room(), badge("denied", T0 + 3, "vega"), T0 + 3, []),
        ],
    ),
}


@pytest.mark.parametrize(("ruleset", "steps"), ACCESS_CASES.values(), ids=ACCESS_CASES.keys())
def test_access_trigger(ruleset: RuleSet, steps: list[Step]) -> None:
    run(ruleset, steps)


# Conditions

CONDITION_CASES = [
    # (condition YAML, room changes, event time, holds)
    ("{fact: people, op: gt, value: 2}", {"people": 3}, T0, True),
    ("{fact: people, op: gt, value: 3}", {"people": 3}, T0, False),
    ("{fact: people, op: ge, value: 3}", {"people": 3}, T0, True),
    ("{fact: people, op: lt, value: 3}", {"people": 3}, T0, False),
    ("{fact: people, op: le, value: 3}", {"people": 3}, T0, True),
    ("{fact: people, op: gt, value: 0}", {"people": None}, T0, False),
    ("{fact: people, op: le, value: 0}", {"people": None}, T0, False),
    ("{fact: people, value: null}", {"people": None}, T0, True),
    ("{fact: people, op: ne, value: null}", {"people": 0}, T0, True),
    ("{fact: occupancy, value: occupied}", {}, T0, True),
    ("{fact: occupancy, op: ne, value: occupied}", {}, T0, False),
    ("{fact: type, value: meeting}", {}, T0, True),
    ("{fact: lights_on, value: false}", {"lights_on": None}, T0, False),
    ("{fact: bookable, value: true}", {}, T0, True),
    ("{fact: next_booking_in, op: le, value: 900}", {"next_booking_in": 600.0}, T0, True),
    # Time windows: T0 is Monday 11:00 in Paris.
    ("{between: ['08:00', '18:00']}", {}, T0, True),
    ("{between: ['12:00', '18:00']}", {}, T0, False),
    ("{between: ['11:00', '12:00']}", {}, T0, True),
    ("{between: ['10:00', '11:00']}", {}, T0, False),
    ("{between: ['22:00', '06:00']}", {}, local("2024-03-04 23:30"), True),
    ("{between: ['22:00', '06:00']}", {}, local("2024-03-04 05:59"), True),
    ("{between: ['22:00', '06:00']}", {}, T0, False),
    ("{weekdays: [mon]}", {}, T0, True),
    ("{weekdays: [sat, sun]}", {}, T0, False),
    ("{between: ['08:00', '18:00'], weekdays: [sat]}", {}, T0, False),
    # Nesting and lists.
    ("{all: [{fact: people, op: gt, value: 0}, {weekdays: [mon]}]}", {}, T0, True),
    ("{all: [{fact: people, op: gt, value: 0}, {weekdays: [tue]}]}", {}, T0, False),
    ("{any: [{fact: people, op: gt, value: 5}, {weekdays: [mon]}]}", {}, T0, True),
    ("{any: [{fact: people, op: gt, value: 5}, {weekdays: [tue]}]}", {}, T0, False),
    ("{not: {fact: people, op: gt, value: 5}}", {}, T0, True),
    ("{not: {any: [{fact: people, value: 3}, {weekdays: [tue]}]}}", {}, T0, False),
    ("[{fact: people, value: 3}, {fact: locked, value: true}]", {}, T0, True),
    ("[{fact: people, value: 3}, {fact: locked, value: false}]", {}, T0, False),
]


@pytest.mark.parametrize(("condition", "changes", "at", "holds"), CONDITION_CASES)
def test_condition(condition: str, changes: dict[str, Any], at: float, holds: bool) -> None:
    ruleset = rules(
        f"- {{name: r, trigger: {{access: granted}}, conditions: {condition}, actions: [{{lock: unlock}}]}}",
        tz="Europe/Paris",
    )
    # The badge read's own time is what time windows judge, not `now`.
    actions, _ = ruleset.evaluate(room(**changes), badge("granted", at), at + 86_400 * 3.5, RuleMemory())
    assert bool(actions) is holds


def test_conditions_without_facts_for_the_room_do_not_hold() -> None:
    ruleset = rules(
        "- {name: r, trigger: {access: granted}, conditions: {fact: people, value: null}, "
        "actions: [{alert: {message: 'hi {room}'}}]}"
    )
    actions, _ = ruleset.evaluate({}, badge("granted", T0, "nowhere"), T0, RuleMemory())
    assert actions == []


# Actions

ACTION_CASES = [
    # (action YAML, room changes, event, expected)
    ("{lights: off}", {}, None, LIGHTS_OFF),
    ("{lights: on}", {}, None, LIGHTS_ON),
    (
        "{lights: {brightness_pct: 40}}",
        {},
        None,
        [
            ("cmd", "orion-l1", {"brightness": 102}),
            ("cmd", "orion-l2", {"brightness": 102}),
        ],
    ),
    (
        "{lights: {brightness_pct: 100}}",
        {"devices": {"light": ("x",)}},
        None,
        [("cmd", "x", {"brightness": 254})],
    ),
    ("{lights: off}", {"devices": {}}, None, []),
    (
        "{hvac: {setpoint: comfort}}",
        {"comfort_setpoint_c": 22.0},
        None,
        [("cmd", "orion-hvac", {"setpoint": 22.0})],
    ),
    ("{hvac: {setpoint: setback}}", {}, None, [("cmd", "orion-hvac", {"setpoint": 17.0})]),
    (
        "{hvac: {setpoint: 19.5, mode: heat}}",
        {},
        None,
        [("cmd", "orion-hvac", {"setpoint": 19.5, "mode": "heat"})],
    ),
    ("{hvac: {mode: 'off'}}", {}, None, [("cmd", "orion-hvac", {"mode": "off"})]),
    ("{lock: lock}", {}, None, [("cmd", "orion-door", {"state": "LOCK"})]),
    ("{lock: unlock}", {}, None, [("cmd", "orion-door", {"state": "UNLOCK"})]),
    (
        "{alert: {severity: critical, "
        "message: '{room} ({building}/{floor}, {type}): {people} people, {co2_ppm:.0f} ppm'}}",
        {},
        None,
        [("alert", "critical", "orion (hq/2, meeting): 3 people, 600 ppm")],
    ),
    # A format that does not fit the value, and an unknown value, never fail.
    (
        "{alert: {severity: info, "
        "message: '{value:.1f} {temperature_c:.1f} {value!r} {device} at {time} on {date}'}}",
        {"temperature_c": None},
        badge("granted", T0),
        [("alert", "info", "granted unknown 'granted' orion-reader at 11:00 on 2024-03-04")],
    ),
    ("{alert: {message: 'literal {{braces}}'}}", {}, None, [("alert", "warning", "literal {braces}")]),
    (
        "{publish: {topic: 'site/{building}/{room}', "
        "payload: {rule: '{rule}', n: 2, ok: true, l: ['{room}', 1]}}}",
        {},
        None,
        [("publish", "site/hq/orion", {"rule": "r", "n": 2, "ok": True, "l": ["orion", 1]})],
    ),
]


@pytest.mark.parametrize(("action", "changes", "event", "expected"), ACTION_CASES)
def test_action(
    action: str, changes: dict[str, Any], event: RuleEvent | None, expected: list[tuple[Any, ...]]
) -> None:
    ruleset = rules(f"- {{name: r, trigger: {{access: granted}}, actions: [{action}]}}", tz="Europe/Paris")
    actions, _ = ruleset.evaluate(room(**changes), event or badge("granted", T0), T0, RuleMemory())
    assert [show(a) for a in actions] == expected


def test_commands_carry_rule_priority_room_and_reason() -> None:
    ruleset = rules("- {name: r, priority: booking, trigger: {occupancy: vacant}, actions: [{lights: off}]}")
    actions, _ = ruleset.evaluate(
        room(occupancy="vacant"), occupancy("occupied", "vacant", T0), T0, RuleMemory()
    )
    assert actions[0] == Command(
        "orion-l1", {"state": "OFF"}, Priority.BOOKING, "r", "orion", "room became vacant"
    )
    first, second = actions[0], actions[1]
    assert isinstance(first, Command) and isinstance(second, Command)
    assert first.payload is not second.payload  # each command owns its payload


def test_alert_is_dated_now() -> None:
    ruleset = rules("- {name: r, trigger: {access: granted}, actions: [{alert: {message: m}}]}")
    actions, _ = ruleset.evaluate(room(), badge("granted", T0), T0 + 30, RuleMemory())
    assert actions == [Alert("r", "orion", Severity.WARNING, "m", T0 + 30)]


DAYLIGHT = rules(
    "- {name: d, trigger: {fact: illuminance_lux}, "
    "actions: [{daylight_dim: {hysteresis_lux: 50, step_pct: 10}}]}"
)
DAYLIGHT_CASES = [
    # (name, room changes, new lux, expected brightness (0-254) or None for no command)
    ("too dark: one step up", {"brightness_pct": 60.0}, 400.0, 178),
    ("too bright: one step down", {"brightness_pct": 60.0}, 600.0, 127),
    ("inside the dead band", {"brightness_pct": 60.0}, 540.0, None),
    ("at the edge of the dead band", {"brightness_pct": 60.0}, 450.0, None),
    ("already at full", {"brightness_pct": 100.0}, 100.0, None),
    ("never below min_pct", {"brightness_pct": 15.0}, 2000.0, 25),
    ("at min_pct already", {"brightness_pct": 10.0}, 2000.0, None),
    ("lights off: never switched on by dimming", {"lights_on": False, "brightness_pct": 0.0}, 10.0, None),
    ("no lux target", {"lux_target": None}, 10.0, None),
    ("on without a level counts as full", {"brightness_pct": None}, 900.0, 229),
    ("unknown on/off and level", {"brightness_pct": None, "lights_on": None}, 900.0, None),
]


@pytest.mark.parametrize(
    ("changes", "lux", "brightness"), [c[1:] for c in DAYLIGHT_CASES], ids=[c[0] for c in DAYLIGHT_CASES]
)
def test_daylight_dimming(changes: dict[str, Any], lux: float, brightness: int | None) -> None:
    facts = room(illuminance_lux=lux, **changes)
    actions, _ = DAYLIGHT.evaluate(facts, reading("illuminance_lux", 500.0, lux, T0), T0, RuleMemory())
    expected = (
        []
        if brightness is None
        else [("cmd", d, {"brightness": brightness}) for d in ("orion-l1", "orion-l2")]
    )
    assert [show(a) for a in actions] == expected


# Restart catch-up: memory persisted, gateway down, memory loaded back


def test_restart_catches_up_a_vacancy_hold_once() -> None:
    """A `for: 300` vacancy whose episode began 10 min before the restart fires on the first Tick."""
    before = run(VACANT_600, [(room(), Tick(T0), T0, [])])
    saved = json.dumps(before.to_dict())
    # Down from T0 to T0 + 900; the room went vacant at T0 + 300 (restored room state).
    facts = room(occupancy="vacant", occupancy_since=T0 + 300)
    after_restart = RuleMemory.from_dict(json.loads(saved))
    run(
        VACANT_600,
        [
            (facts, Tick(T0 + 900), T0 + 900, LIGHTS_OFF),
            (facts, Tick(T0 + 901), T0 + 901, []),
        ],
        after_restart,
    )


def test_restart_does_not_repeat_what_already_fired() -> None:
    facts = room(occupancy="vacant", occupancy_since=T0)
    memory = run(VACANT_600, [(facts, Tick(T0 + 600), T0 + 600, LIGHTS_OFF)])
    restored = RuleMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
    run(VACANT_600, [(facts, Tick(T0 + 5000), T0 + 5000, [])], restored)


def test_restart_keeps_threshold_state_bursts_and_offline_devices() -> None:
    ruleset = load_rules_file(FIXTURES / "every_kind.yaml")
    memory = run(
        ruleset,
        [
            (
                room(co2_ppm=1200.0),
                reading("co2_ppm", 900, 1200, T0),
                T0,
                [("alert", "warning", "CO2 1200 ppm in orion")],
            ),
            (room(co2_ppm=1200.0), badge("denied", T0 + 1), T0 + 1, []),
            (room(co2_ppm=1200.0), badge("denied", T0 + 2), T0 + 2, []),
            (room(co2_ppm=1200.0), availability("orion-l1", False, T0 + 3), T0 + 3, []),
        ],
    )
    restored = RuleMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
    assert restored == memory
    run(
        ruleset,
        [
            # Still above 1000: no second CO2 alert after the restart.
            (room(co2_ppm=1150.0), Tick(T0 + 10), T0 + 10, []),
            (
                room(co2_ppm=1150.0),
                badge("denied", T0 + 11),
                T0 + 11,
                [
                    ("cmd", "orion-door", {"state": "LOCK"}),
                    ("alert", "warning", "3 denied at orion-reader"),
                ],
            ),
            (
                room(co2_ppm=1150.0),
                Tick(T0 + 303),
                T0 + 303,
                [
                    (
                        "publish",
                        "officegw/events/orion/offline",
                        {
                            "device": "orion-l1",
                            "rule": "lamp-offline",
                            "level": 2,
                            "tags": ["light", "orion"],
                        },
                    )
                ],
            ),
        ],
        restored,
    )


# Memory


def test_memory_is_the_same_object_when_nothing_changed() -> None:
    ruleset = load_rules_file(FIXTURES / "every_kind.yaml")
    memory = RuleMemory()
    actions, after = ruleset.evaluate(room(), reading("humidity_pct", 40, 41, T0), T0, memory)
    assert (actions, after) == ([], memory) and after is memory
    _, armed = ruleset.evaluate(room(), Tick(T0), T0, memory)  # arms evening-off's schedule
    _, again = ruleset.evaluate(room(), Tick(T0 + 1), T0 + 1, armed)
    assert again is armed


def test_last_fired_per_rule_and_room() -> None:
    ruleset = rules("- {name: r, trigger: {access: granted}, actions: [{alert: {message: m}}]}")
    memory = run(
        ruleset,
        [
            (room(), badge("granted", T0), T0, [("alert", "warning", "m")]),
            (room(), badge("granted", T0 + 5, "vega"), T0 + 6, [("alert", "warning", "m")]),
        ],
    )
    assert memory.last_fired("r") == T0 + 6
    assert memory.last_fired("r", "orion") == T0
    assert memory.last_fired("r", "lyra") is None
    assert memory.last_fired("other") is None


def test_a_rule_whose_actions_do_nothing_has_not_fired() -> None:
    ruleset = rules("- {name: r, trigger: {occupancy: vacant}, actions: [{lights: off}]}")
    _, memory = ruleset.evaluate(room(devices={}), occupancy("occupied", "vacant", T0), T0, RuleMemory())
    assert memory.last_fired("r") is None


def test_memory_retain_drops_removed_rules() -> None:
    memory = RuleMemory(fired={"a": {"orion": T0}, "b": {"orion": T0}}, offline={"orion": {"l1": T0}})
    kept = memory.retain(["a"])
    assert kept.fired == {"a": {"orion": T0}} and kept.offline == memory.offline


@pytest.mark.parametrize(
    "data",
    [{}, {"version": 2}, {"version": 1, "fired": {"r": {"orion": "soon"}}}, {"version": 1, "extra": {}}],
)
def test_memory_from_bad_dict(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RuleMemory.from_dict(data)


# Evaluation is cheap when nothing listens


def test_events_nobody_listens_to() -> None:
    ruleset = rules("- {name: r, trigger: {fact: co2_ppm, above: 1000}, actions: [{alert: {message: m}}]}")
    memory = RuleMemory()
    assert ruleset.listens_to(reading("co2_ppm", 1, 2, T0))
    assert not ruleset.listens_to(reading("humidity_pct", 1, 2, T0))
    assert not ruleset.listens_to(badge("granted", T0))
    actions, after = ruleset.evaluate(room(), badge("granted", T0), T0, memory)
    assert actions == [] and after is memory


def test_disabled_rules_are_listed_but_never_fire() -> None:
    ruleset = load_rules_file(FIXTURES / "every_kind.yaml")
    info = {rule.name: rule for rule in ruleset.rules}
    assert info["morning-unlock"].enabled is False
    actions, _ = ruleset.evaluate(room(), badge("granted", T0), T0, RuleMemory())
    assert actions == []


# What GET /v1/rules shows


def test_rule_descriptions() -> None:
    ruleset = load_rules_file(FIXTURES / "every_kind.yaml", tz="Europe/Paris")
    summary = {
        rule.name: (rule.priority, rule.trigger, rule.conditions, rule.actions) for rule in ruleset.rules
    }
    assert summary == {
        "vacant-lights-off": (Priority.ENERGY, "room vacant", "lights_on != false", ("lights off",)),
        "vacant-setback": (
            Priority.ENERGY,
            "room vacant for 600 s",
            None,
            ("hvac setpoint setback, mode eco",),
        ),
        "co2-high": (
            Priority.SAFETY,
            "co2_ppm above 1000 (hysteresis 100)",
            None,
            ("alert (warning): CO2 {value:.0f} ppm in {room}",),
        ),
        "door-open": (
            Priority.SAFETY,
            "door_open is true for 60 s",
            None,
            ("alert (critical): door of {room} open",),
        ),
        "daylight": (
            Priority.ENERGY,
            "illuminance_lux changes",
            "occupancy == occupied and (lights_on == true or brightness_pct > 0) and not lux_target == null",
            ("dim lights toward lux_target (±50 lx, steps of 10 %)",),
        ),
        "evening-off": (
            Priority.ENERGY,
            "at 19:00 mon,tue,wed,thu,fri (Europe/Paris)",
            "time in 18:00-23:59 and occupancy == vacant",
            ("lights 0 %",),
        ),
        "lamp-offline": (
            Priority.ENERGY,
            "light device offline for 300 s",
            None,
            ("publish to officegw/events/{room}/offline",),
        ),
        "badge-burst": (
            Priority.SAFETY,
            "access denied 3 times within 60 s",
            None,
            ("lock", "alert (warning): {count} denied at {device}"),
        ),
        "morning-unlock": (
            Priority.MANUAL,
            "access granted",
            "time in 07:00-19:00 mon,tue,wed,thu,fri",
            ("unlock", "lights on", "hvac setpoint 22.5 °C"),
        ),
    }
    assert ruleset.tz == "Europe/Paris" and len(ruleset) == 9


# Loading: every problem, with its path


def test_many_errors_all_reported_with_paths() -> None:
    with pytest.raises(RulesError) as caught:
        load_rules_file(FIXTURES / "many_errors.yaml")
    assert caught.value.problems == [
        "rules[1].trigger.for: must be >= 0",
        "rules[2].conditions.all[0].fact: unknown fact 'co3'",
        "rules[2].actions[0].lights.brightness_pct: must be <= 100",
        'rules[3].trigger.at: must be a time of day "HH:MM"',
        "rules[3].actions[0].alert.message: unknown name {room.__class__} in template",
        "rules[3].name: duplicate rule name 'ok-rule' (first at rules[0])",
        "rules[4].trigger.device_offline: must be 'any' or a device kind "
        "(light, hvac, lock, sensor, switch, badge_reader)",
        "rules[4].actions[0].hvac.setpoint: must be 'comfort' or 'setback'",
    ]
    assert str(FIXTURES / "many_errors.yaml") in str(caught.value)


LOAD_ERRORS = [
    # (rules text, expected problems)
    ("- {name: r, actions: [{lights: off}]}", ["rules[0].trigger: is required"]),
    (
        "- {name: r, trigger: {occupancy: away}, actions: []}",
        ["rules[0].trigger.occupancy: must be 'occupied' or 'vacant'", "rules[0].actions: must not be empty"],
    ),
    (
        "- {name: r, trigger: {ocupancy: vacant}, actions: [{lights: off}]}",
        [
            "rules[0].trigger: must be a mapping with one of the keys "
            "occupancy, fact, at, device_offline, access",
        ],
    ),
    (
        "- {name: r, trigger: {occupancy: vacant, fro: 5}, actions: [{lights: off}]}",
        ["rules[0].trigger.fro: unknown key (did you mean 'for'?)"],
    ),
    (
        "- {name: r, trigger: {occupancy: vacant, for: '60'}, actions: [{lights: off}]}",
        ["rules[0].trigger.for: input should be a valid number"],
    ),
    (
        "- {name: r, trigger: {fact: co2, above: 1000}, actions: [{lights: off}]}",
        ["rules[0].trigger.fact: unknown fact 'co2' (did you mean 'co2_ppm'?)"],
    ),
    (
        "- {name: r, trigger: {fact: door_open, above: 1}, actions: [{lights: off}]}",
        ["rules[0].trigger.above: above needs a numeric fact; 'door_open' is not one"],
    ),
    (
        "- {name: r, trigger: {fact: co2_ppm, is: true}, actions: [{lights: off}]}",
        ["rules[0].trigger.is: use above/below for the numeric fact 'co2_ppm'"],
    ),
    (
        "- {name: r, trigger: {fact: co2_ppm, above: 1, below: 2}, actions: [{lights: off}]}",
        ["rules[0].trigger: give only one of above, below, is"],
    ),
    (
        "- {name: r, trigger: {fact: door_open, is: true, hysteresis: 2}, actions: [{lights: off}]}",
        ["rules[0].trigger: hysteresis needs above or below"],
    ),
    (
        "- {name: r, trigger: {fact: co2_ppm, for: 60}, actions: [{lights: off}]}",
        ["rules[0].trigger: for needs above, below or is (a bare fact trigger fires on every change)"],
    ),
    (
        "- {name: r, trigger: {access: denied, count: 3}, actions: [{lights: off}]}",
        ["rules[0].trigger: count above 1 needs within (seconds)"],
    ),
    (
        "- {name: r, trigger: {at: '7pm', weekdays: [mon, fun]}, actions: [{lights: off}]}",
        [
            'rules[0].trigger.at: must be a time of day "HH:MM"',
            "rules[0].trigger.weekdays[1]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
        ],
    ),
    (
        "- {name: r, trigger: {access: granted}, conditions: {fact: occupancy, value: away}, "
        "actions: [{lights: off}]}",
        ["rules[0].conditions.value: must be one of occupied, vacant, unknown for fact 'occupancy'"],
    ),
    (
        "- {name: r, trigger: {access: granted}, conditions: [{fact: lights_on, op: gt, value: 1}], "
        "actions: [{lights: off}]}",
        [
            "rules[0].conditions[0].op: op gt needs a numeric fact; 'lights_on' is not one",
            "rules[0].conditions[0].value: must be true or false for fact 'lights_on'",
        ],
    ),
    (
        "- {name: r, trigger: {access: granted}, conditions: {not: {between: ['08:00', '08:00']}}, "
        "actions: [{lights: off}]}",
        ["rules[0].conditions.not: between: start and end are the same (an empty window)"],
    ),
    (
        "- {name: r, trigger: {access: granted}, conditions: {maybe: true}, actions: [{lights: off}]}",
        [
            "rules[0].conditions: must be a mapping with one of the keys "
            "fact, between, weekdays, all, any, not"
        ],
    ),
    (
        "- {name: r, trigger: {access: granted}, "
        "actions: [{lights: dim}, {lights: off, lock: lock}, {dance: 1}]}",
        [
            "rules[0].actions[0].lights: must be 'on' or 'off'",
            "rules[0].actions[1].lock: unknown key",
            "rules[0].actions[2]: must be a mapping with one of the keys lights, daylight_dim, hvac, lock, "
            "alert, publish",
        ],
    ),
    (
        "- {name: r, trigger: {access: granted}, actions: [{alert: {message: '{value.__class__} {0} {'}}]}",
        ["rules[0].actions[0].alert.message: bad template: Single '{' encountered in format string"],
    ),
    (
        "- {name: r, trigger: {access: granted}, actions: [{alert: {message: '{romo}', severity: loud}}]}",
        [
            "rules[0].actions[0].alert.severity: must be 'info', 'warning' or 'critical'",
            "rules[0].actions[0].alert.message: unknown name {romo} in template (did you mean {room}?)",
        ],
    ),
    (
        "- {name: r, trigger: {access: granted}, "
        "actions: [{publish: {topic: 'a/+/b', payload: {x: '{nope}'}}}]}",
        [
            "rules[0].actions[0].publish.topic: a topic to publish on cannot hold the wildcards + or #",
            "rules[0].actions[0].publish.payload: unknown name {nope} in template",
        ],
    ),
    (
        "- {name: 'two words', priority: urgent, enabled: yes, "
        "trigger: {access: granted}, actions: [{lock: lock}]}",
        [
            "rules[0].name: only letters, digits, '-', '_' and '.' (starting with a letter or digit)",
            "rules[0].priority: must be 'energy', 'booking', 'manual' or 'safety'",
            "rules[0].enabled: input should be a valid boolean",
        ],
    ),
    ("rules: 3", ["rules: input should be a valid list"]),
    ("just text", ["(top level): must be a list of rules or a mapping with a rules: list"]),
    ("- {name: r, trigger: {access: granted}, actions: [{lock: lock}]}\n- [", None),
    ("- name: r\n  name: s\n  trigger: {access: granted}\n  actions: [{lock: lock}]\n", None),
]


@pytest.mark.parametrize(("text", "problems"), LOAD_ERRORS)
def test_load_errors(text: str, problems: list[str] | None) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(text)
    if problems is None:  # YAML errors: the line is what matters
        assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith("line ")
    else:
        assert caught.value.problems == problems


def test_yaml_errors_name_the_line() -> None:
    with pytest.raises(RulesError) as caught:
        load_rules("- name: r\n  name: s\n  trigger: {access: granted}\n")
    assert caught.value.problems == ["line 2 column 3: not valid YAML: duplicate key 'name'"]


def test_unknown_time_zone() -> None:
    with pytest.raises(RulesError) as caught:
        load_rules("[]", tz="Mars/Olympus")
    assert caught.value.problems == ["tz: unknown time zone 'Mars/Olympus'"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules_file(tmp_path / "missing.yaml")
    assert caught.value.problems[0].startswith("(file): cannot read:")


def test_empty_files_have_no_rules() -> None:
    assert len(load_rules("")) == 0
    assert len(load_rules("# nothing yet\n")) == 0
    assert len(load_rules("rules: []")) == 0


def test_yaml_1_1_traps_are_plain_strings() -> None:
    """`lights: off` and an unquoted `at: 19:00` mean what they say (not false and 1140)."""
    ruleset = load_rules(
        "- name: r\n  trigger: {at: 19:00, weekdays: [mon]}\n  conditions: {between: [7:30, 20:00]}\n"
        "  actions:\n    - lights: off\n    - lights: on\n"
    )
    assert ruleset.rules[0].trigger == "at 19:00 mon (UTC)"
    assert ruleset.rules[0].conditions == "time in 07:30-20:00"
    assert ruleset.rules[0].actions == ("lights off", "lights on")


def test_fact_kinds_cover_every_fact() -> None:
    assert set(FACT_KINDS) == FACT_NAMES
    assert FACT_KINDS["co2_ppm"] == "number" and FACT_KINDS["door_open"] == "bool"
    assert FACT_KINDS["occupancy"] == "str" and FACT_KINDS["capacity"] == "number"
