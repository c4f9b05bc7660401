"""The device registry: registration, rooms, availability by last-seen time."""

from __future__ import annotations

from devices.fields import DevicePayload
from devices.registry import DeviceRegistry, DeviceSpec

T0 = 1_000.0


def seen(registry: DeviceRegistry, device: str, now: float, **fields: object) -> None:
    payload = DevicePayload.model_validate(fields)
    registry.observe(device, payload, dict(fields), now)


def test_silent_devices_go_offline_after_their_timeout() -> None:
    registry = DeviceRegistry(
        [
            DeviceSpec("plug", "orion"),
            DeviceSpec("pir", "orion"),
            DeviceSpec("door", "orion", power_source="battery"),
        ]
    )
    seen(registry, "plug", T0, state="ON")
    seen(registry, "pir", T0, occupancy=True, battery=90)  # reports a battery: battery powered
    seen(registry, "door", T0, contact=True)
    assert registry.expire_silent(T0 + 600, mains_timeout=600, battery_timeout=90_000) == []
    assert registry.expire_silent(T0 + 601, mains_timeout=600, battery_timeout=90_000) == [("plug", "orion")]
    assert registry.get("plug", T0 + 601).online is False  # type: ignore[union-attr]
    # Already offline: not reported again.
    assert registry.expire_silent(T0 + 700, mains_timeout=600, battery_timeout=90_000) == []
    assert registry.expire_silent(T0 + 90_001, mains_timeout=600, battery_timeout=90_000) == [
        ("pir", "orion"),
        ("door", "orion"),
    ]
    seen(registry, "plug", T0 + 90_002, state="OFF")
    assert registry.get("plug", T0 + 90_002).online is True  # type: ignore[union-attr]


def test_devices_never_heard_from_stay_unknown() -> None:
    registry = DeviceRegistry([DeviceSpec("plug", "orion")])
    assert registry.expire_silent(T0 + 10**6, mains_timeout=1, battery_timeout=1) == []
    assert registry.get("plug", T0).online is None  # type: ignore[union-attr]


def test_auto_registered_devices_silent_too_long_are_forgotten() -> None:
    registry = DeviceRegistry([DeviceSpec("orion-env", "orion")])
    registry.ensure("orion.pir-1", "orion", topic="office/hq/2/orion/pir-1", name="pir-1")
    registry.ensure("attic.env", "attic", name="env")
    assert registry.auto_count == 2
    registry.heard("orion.pir-1", T0)
    registry.heard("attic.env", T0 + 50)
    registry.heard("orion-env", T0)
    seen(registry, "orion.pir-1", T0, occupancy=True)
    version = registry.version

    assert registry.forget_silent(T0 + 100, after=100) == []
    assert registry.forget_silent(T0 + 101, after=100) == [("orion.pir-1", "orion")]
    assert "orion.pir-1" not in registry and registry.auto_count == 1
    assert registry.version > version
    assert registry.has_room("orion")  # its configured device stays, silent or not
    assert not registry.has_room("nowhere")
    assert registry.forget_silent(T0 + 1_000, after=100) == [("attic.env", "attic")]
    assert not registry.has_room("attic")
    assert [view.id for view in registry.views(T0 + 1_000)] == ["orion-env"]


def test_configured_and_auto_devices_are_told_apart() -> None:
    registry = DeviceRegistry([DeviceSpec("orion-env", "orion")])
    registry.ensure("orion.pir-1", "orion", name="pir-1")
    assert registry.configured_room("orion-env") == "orion"
    assert registry.configured_room("orion.pir-1") is None
    assert registry.configured_room("nothing") is None
    found = registry.spec_of("orion.pir-1")
    assert found is not None and found[0].name == "pir-1" and found[1] is False
    assert registry.spec_of("nothing") is None


def test_fields_past_the_limit_are_named() -> None:
    registry = DeviceRegistry([DeviceSpec("env", "orion")])
    assert registry.fields_problem("env", {"co2", "temperature"}, max_fields=2) is None
    assert registry.fields_problem("new", {"a", "b", "c"}, max_fields=2) == (
        "device new would keep 3 fields > registry.max_fields 2"
    )
    seen(registry, "env", T0, co2=500, temperature=21.0)
    # Fields it already has do not count twice.
    assert registry.fields_problem("env", {"co2", "temperature"}, max_fields=2) is None
    assert registry.fields_problem("env", {"co2", "humidity"}, max_fields=2) is not None


def test_the_last_state_keeps_every_field_said_newest_value_first() -> None:
    registry = DeviceRegistry([DeviceSpec("a", "orion"), DeviceSpec("b", "orion")])
    seen(registry, "a", T0, temperature=21.5, humidity=40.0)
    seen(registry, "a", T0 + 1, temperature=22.0, humidity=41.0)  # the same fields again
    seen(registry, "a", T0 + 2, co2=600)  # a field not said before: the others stay
    assert registry.last_state_of("a") == {"temperature": 22.0, "humidity": 41.0, "co2": 600}
    # A copy: changing it changes nothing held.
    registry.last_state_of("a")["co2"] = 0
    assert registry.last_state_of("a")["co2"] == 600
    assert registry.holds("a", {"co2": 600}) and not registry.holds("a", {"co2": 601.0})
    assert registry.last_state_of("b") == {}
    assert registry.restore_last_state("b", {"state": "ON", "brightness": 10})
    seen(registry, "b", T0, brightness=200)
    assert registry.last_state_of("b") == {"state": "ON", "brightness": 200}
    assert registry.kind_of("b") == "light"  # from what it said
