"""Compiled actions (rules.actions): commands, alerts, publishes, daylight dimming."""

from __future__ import annotations

from typing import Any

import pytest

from rules.engine import RuleMemory
from rules.types import Alert, Command, Priority, RuleEvent, Severity
from tests.unit.rules.scenarios import LIGHTS_OFF, T0, badge, occupancy, reading, room, rules, show

LIGHTS_ON = [("cmd", "orion-l1", {"state": "ON"}), ("cmd", "orion-l2", {"state": "ON"})]


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
