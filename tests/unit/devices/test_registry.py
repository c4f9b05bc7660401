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
