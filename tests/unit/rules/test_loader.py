"""From YAML text to validated rules or every problem (rules.loader)."""

from __future__ import annotations

import pytest

from rules.engine import RulesError, load_rules, load_rules_file
from tests.unit.rules.scenarios import FIXTURES

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
