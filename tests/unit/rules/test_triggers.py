"""Compiled triggers (rules.triggers): when each kind of trigger fires, step by step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any

import pytest

from rules.engine import RuleSet
from rules.types import Tick
from tests.unit.rules.scenarios import (
    LIGHTS_OFF,
    ROOM,
    T0,
    Step,
    availability,
    badge,
    local,
    occupancy,
    reading,
    room,
    rules,
    run,
)

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
