"""The room model as a table of (state, reading, now) -> state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from devices.fields import DevicePayload
from rules.occupancy import FusionParams, Occupancy
from rules.room_model import RoomState, apply, expire, rename_devices

T0 = 1_699_948_800.0  # 08:00 UTC


def reading(**fields: Any) -> DevicePayload:
    return DevicePayload.model_validate(fields)


def fold(*steps: tuple[str, dict[str, Any], float]) -> RoomState:
    state = RoomState("orion")
    for device, fields, now in steps:
        state = apply(state, device, reading(**fields), now)
    return state


def test_environment_keeps_what_a_reading_does_not_mention() -> None:
    state = fold(("env", {"co2": 700, "temperature": 21.0}, T0), ("env", {"humidity": 45.0}, T0 + 60))
    env = state.environment
    assert (env.co2_ppm, env.temperature_c, env.humidity_pct, env.illuminance_lux) == (700, 21.0, 45.0, None)
    assert state.updated_at == T0 + 60


LIGHTING_TABLE = [
    ("one light on", [("l1", {"state": "ON", "brightness": 127, "power": 10})], (True, 50.0, 10)),
    ("brightness as percent", [("l1", {"state": "ON", "brightness": 254})], (True, 100.0, None)),
    ("off reports zero brightness", [("l1", {"state": "OFF", "brightness": 200})], (False, 0.0, None)),
    (
        "any light on, brightest wins, powers add",
        [
            ("l1", {"state": "ON", "brightness": 64, "power": 5}),
            ("l2", {"state": "ON", "brightness": 254, "power": 9}),
            ("l3", {"state": "OFF", "power": 0}),
        ],
        (True, 100.0, 14),
    ),
    (
        "brightness alone keeps state",
        [("l1", {"state": "ON"}), ("l1", {"brightness": 25})],
        (True, 9.8, None),
    ),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [row[1:] for row in LIGHTING_TABLE], ids=[row[0] for row in LIGHTING_TABLE]
)
def test_lighting_summary(steps: list[tuple[str, dict[str, Any]]], expected: tuple[Any, ...]) -> None:
    state = fold(*((device, fields, T0 + i) for i, (device, fields) in enumerate(steps)))
    lighting = state.lighting
    assert (lighting.on, lighting.brightness_pct, lighting.power_w) == expected


def test_power_of_a_non_light_does_not_count_as_lighting() -> None:
    assert fold(("plug", {"power": 120}, T0)).lighting.power_w is None


def test_doors_and_locks() -> None:
    state = fold(("door", {"contact": False}, T0), ("lock", {"state": "UNLOCK"}, T0))
    assert (state.door_open, state.locked) == (True, False)
    state = apply(state, "door", reading(contact=True), T0 + 1)
    state = apply(state, "lock2", reading(state="LOCK"), T0 + 1)
    # One open door makes the room's door open; every lock must be locked.
    assert (state.door_open, state.locked) == (False, False)
    assert (RoomState("x").door_open, RoomState("x").locked) == (None, None)


def test_energy_is_integrated_from_lighting_power() -> None:
    state = fold(("l1", {"state": "ON", "power": 100}, T0), ("l1", {"power": 50}, T0 + 3_600))
    assert state.kwh_today(T0 + 3_600) == pytest.approx(0.1)
    assert state.kwh_today(T0 + 7_200) == pytest.approx(0.15)
    # A new day starts from zero at midnight (UTC by default): 50 W since then, 8 h.
    assert state.kwh_today(T0 + 86_400) == pytest.approx(0.4)
    assert RoomState("x").kwh_today(T0) is None


def test_asked_about_a_day_before_the_counters_nothing_was_used_then() -> None:
    """A clock that went back (a gateway on device time, restarted and not yet told
    the time by a device, answers in the machine's time) does not see the counters of
    the later day as its own."""
    state = fold(("l1", {"state": "ON", "power": 100}, T0), ("l1", {"power": 50}, T0 + 3_600))
    assert state.kwh_today(T0 - 2 * 86_400) == 0.0
    assert state.kwh_wasted_today(T0 - 2 * 86_400) == 0.0
    assert state.kwh_today(T0 + 3_600) == pytest.approx(0.1)


BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_energy_days_are_the_sites_days() -> None:
    # 100 W from 23:00 to 00:30 Berlin time (22:00 to 23:30 UTC, the same UTC day).
    state = apply(
        RoomState("orion"), "l1", reading(state="ON", power=100), at("2023-11-14T23:00+01:00"), zone=BERLIN
    )
    assert state.energy_day_end == at("2023-11-15T00:00+01:00")
    half_past = at("2023-11-15T00:30+01:00")
    assert state.kwh_today(half_past, BERLIN) == pytest.approx(0.05)
    assert state.kwh_today(half_past, UTC) == pytest.approx(0.15)
    # A reading after midnight closes the old day and counts the half hour since.
    state = apply(state, "l1", reading(power=0), half_past, zone=BERLIN)
    assert (state.energy_kwh, state.energy_day_end) == (pytest.approx(0.05), at("2023-11-16T00:00+01:00"))


def test_the_day_clocks_go_forward_has_23_hours() -> None:
    midnight = at("2024-03-31T00:00+01:00")
    state = apply(RoomState("orion"), "l1", reading(state="ON", power=1000), midnight, zone=BERLIN)
    # The next local midnight is 23 hours later.
    assert state.energy_day_end == midnight + 23 * 3_600
    assert state.kwh_today(midnight + 23 * 3_600 - 1, BERLIN) == pytest.approx(23 - 1 / 3_600)
    assert state.kwh_today(midnight + 23 * 3_600 + 3_600, BERLIN) == pytest.approx(1.0)


def test_a_state_saved_before_site_days_counts_in_the_day_of_its_last_report() -> None:
    state = apply(RoomState("orion"), "l1", reading(state="ON", power=100), T0)
    old = RoomState("orion", lights=state.lights, energy_kwh=0.2, energy_at=T0)
    assert old.energy_day_end is None
    assert old.kwh_today(T0 + 3_600, BERLIN) == pytest.approx(0.3)


def test_occupancy_flows_through_and_expires() -> None:
    state = fold(("pir", {"occupancy": True}, T0))
    assert state.occupancy.state == Occupancy.OCCUPIED
    assert expire(state, T0 + 10, FusionParams(vacancy_timeout=60.0)) is state
    later = expire(state, T0 + 61, FusionParams(vacancy_timeout=60.0))
    assert (later.occupancy.state, later.occupancy.since) == (Occupancy.VACANT, T0 + 60)


def test_a_reading_without_occupancy_fields_keeps_occupancy() -> None:
    state = fold(("pir", {"occupancy": True}, T0), ("env", {"co2": 500}, T0 + 5))
    assert state.occupancy.since == T0


def test_rated_watts_estimate_the_draw_of_lights_that_report_no_power() -> None:
    state = apply(RoomState("orion"), "l1", reading(state="ON", brightness=127), T0, rated_watts=40.0)
    assert state.lighting.power_w == pytest.approx(20.0)
    state = apply(state, "l1", reading(state="OFF"), T0 + 3_600)
    assert state.lighting.power_w == 0.0
    assert state.kwh_today(T0 + 7_200) == pytest.approx(0.02)


def test_energy_used_while_vacant_is_waste() -> None:
    state = fold(("pir", {"occupancy": True}, T0), ("l1", {"state": "ON", "power": 100}, T0))
    # Vacant at T0 + 600 (timeout); the light burns on for another 3,000 s.
    state = expire(state, T0 + 700, FusionParams(vacancy_timeout=600.0))
    assert state.occupancy.state == Occupancy.VACANT
    assert state.kwh_today(T0 + 3_600) == pytest.approx(0.1)
    assert state.kwh_wasted_today(T0 + 3_600) == pytest.approx(100 * 3_000 / 3_600_000)


def test_devices_can_be_renamed_or_dropped() -> None:
    state = fold(
        ("lamp", {"state": "ON", "power": 100}, T0),
        ("door", {"contact": False}, T0),
        ("lock", {"state": "LOCK"}, T0),
        ("radar", {"presence": True}, T0),
    )
    assert rename_devices(state, lambda device: device, T0 + 1) is state

    moved = rename_devices(state, lambda device: f"orion.{device}", T0 + 1)
    assert set(moved.lights) == {"orion.lamp"}
    assert set(moved.doors_open) == {"orion.door"} and set(moved.locks_locked) == {"orion.lock"}
    assert moved.occupancy.present == frozenset({"orion.radar"})
    assert moved.occupancy.open_doors == frozenset({"orion.door"})
    assert (moved.lighting, moved.door_open, moved.locked) == (state.lighting, True, True)
    assert moved.kwh_today(T0 + 3_600) == state.kwh_today(T0 + 3_600)

    dropped = rename_devices(state, lambda device: None if device == "lamp" else device, T0 + 3_600)
    assert dropped.lights == {} and dropped.lighting.power_w is None
    # What the lamp used until it was dropped still counts, and nothing after.
    assert dropped.kwh_today(T0 + 7_200) == pytest.approx(0.1)
    assert set(dropped.doors_open) == {"door"}
