"""Which commands a device takes, by its kind (and, for lights, whether it dims)."""

from __future__ import annotations

import pytest

from devices.commands import refusal


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("light", {"state": "ON"}),
        ("light", {"state": "OFF", "brightness": 0}),
        ("switch", {"state": "OFF"}),
        ("hvac", {"setpoint": 21.0, "mode": "heat"}),
        ("lock", {"state": "UNLOCK"}),
        (None, {"state": "UNLOCK", "setpoint": 20.0}),
    ],
)
def test_what_suits_the_kind_is_taken(kind: str | None, payload: dict[str, object]) -> None:
    assert refusal(kind, (), payload) is None


@pytest.mark.parametrize(
    ("kind", "payload", "reason"),
    [
        ("light", {"state": "LOCK"}, "a light takes state ON/OFF and brightness, not state LOCK"),
        ("switch", {"brightness": 10}, "a switch takes state ON/OFF, not brightness"),
        ("hvac", {"state": "ON"}, "an HVAC unit takes setpoint and mode, not state"),
        ("lock", {"setpoint": 20.0}, "a lock takes state LOCK/UNLOCK, not setpoint"),
        ("sensor", {"state": "ON"}, "a sensor takes no commands"),
        ("badge_reader", {"state": "UNLOCK"}, "a badge reader takes no commands"),
    ],
)
def test_what_does_not_suit_the_kind_is_refused(kind: str, payload: dict[str, object], reason: str) -> None:
    assert refusal(kind, (), payload) == reason


def test_a_light_that_never_reported_brightness_only_switches() -> None:
    assert refusal("light", ("power", "state"), {"brightness": 100}) is not None
    assert refusal("light", ("power", "state"), {"state": "ON"}) is None
    assert refusal("light", ("brightness", "state"), {"brightness": 100}) is None
    # Nothing reported yet: no reason to doubt it dims.
    assert refusal("light", (), {"brightness": 100}) is None
