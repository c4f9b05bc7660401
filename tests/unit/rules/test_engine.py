"""The rule set (rules.engine): which rules an event reaches, what GET /v1/rules shows,
loading a file in a time zone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.engine import RuleMemory, RulesError, load_rules, load_rules_file
from rules.types import Priority
from tests.unit.rules.scenarios import FIXTURES, T0, badge, reading, room, rules

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


# Loading: the time zone and the file


def test_unknown_time_zone() -> None:
    with pytest.raises(RulesError) as caught:
        load_rules("[]", tz="Mars/Olympus")
    assert caught.value.problems == ["tz: unknown time zone 'Mars/Olympus'"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules_file(tmp_path / "missing.yaml")
    assert caught.value.problems[0].startswith("(file): cannot read:")
