"""Rule memory without the rooms and devices the registry forgot."""

from __future__ import annotations

from rules.memory import RuleMemory


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
