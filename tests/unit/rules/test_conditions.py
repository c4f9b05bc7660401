"""Compiled conditions (rules.conditions): facts, time windows, nesting."""

from __future__ import annotations

from typing import Any

import pytest

from rules.engine import RuleMemory
from tests.unit.rules.scenarios import T0, badge, local, room, rules

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
