"""What rules remember (rules.memory): restart catch-up and the memory itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rules.engine import RuleMemory, load_rules_file
from rules.types import Tick
from tests.unit.rules.scenarios import (
    FIXTURES,
    LIGHTS_OFF,
    T0,
    availability,
    badge,
    occupancy,
    reading,
    room,
    rules,
    run,
)

VACANT_600 = rules("- {name: r, trigger: {occupancy: vacant, for: 600}, actions: [{lights: off}]}")


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


def test_forgotten_rooms_and_devices_leave_the_memory() -> None:
    memory = RuleMemory(
        fired={"co2-alert": {"attic": 1.0, "orion": 2.0}},
        episodes={"door-held": {"attic.door": 1.0, "orion-door": 2.0, "*": 3.0}},
        active={"co2-alert": {"attic": 1.0}},
        bursts={"badge-burst": {"attic": (1.0, 2.0)}},
        offline={"attic": {"attic.env": 1.0}, "orion": {"attic.env": 1.0, "orion-env": 2.0}},
    )
    assert memory.without(["nowhere", "nothing"]) is memory
    kept = memory.without(["attic", "attic.env", "attic.door"])
    assert kept.fired == {"co2-alert": {"orion": 2.0}}
    assert kept.episodes == {"door-held": {"orion-door": 2.0, "*": 3.0}}
    assert kept.active == {"co2-alert": {}}
    assert kept.bursts == {"badge-burst": {}}
    assert kept.offline == {"orion": {"orion-env": 2.0}}
    # A rule that happens to share a room's name is still a rule.
    assert RuleMemory(fired={"attic": {"orion": 1.0}}).without(["attic"]).fired == {"attic": {"orion": 1.0}}
