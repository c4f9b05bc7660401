"""Zigbee2MQTT's device list read into devices: kinds and capabilities from exposes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.dialects.base import DecodeError, TopicKind
from devices.discovery.zigbee2mqtt_bridge import announce, parse_devices, parse_groups


def entry(name: str, exposes: Any, **more: Any) -> dict[str, Any]:
    return {
        "ieee_address": f"0x{abs(hash(name)) % 16**8:08x}",
        "friendly_name": name,
        "type": "Router",
        "definition": {"exposes": exposes},
        **more,
    }


def device_of(item: dict[str, Any], groups: tuple[str, ...] = ()) -> Any:
    devices, _ = parse_devices(orjson.dumps([item]))
    return announce("zigbee2mqtt", devices[0], groups)


def feature(name: str, prop: str | None = None) -> dict[str, Any]:
    return {"name": name, "property": prop or name, "type": "binary"}


CASES = [
    (
        "bulb",
        [{"type": "light", "features": [feature("state"), feature("brightness")]}],
        "light",
        {"state", "brightness"},
    ),
    (
        "first API: bare names",
        [{"type": "light", "features": ["state", "brightness", "color_temp"]}],
        "light",
        {"state", "brightness"},
    ),
    (
        "plug",
        [{"type": "switch", "features": [feature("state")]}, {"type": "numeric", "property": "power"}],
        "switch",
        {"state", "power"},
    ),
    ("lock", [{"type": "lock", "features": [feature("state"), feature("lock_state")]}], "lock", {"state"}),
    (
        "radar",
        [
            {"type": "binary", "property": "presence"},
            {"type": "numeric", "name": "illuminance_lux", "property": "illuminance"},
        ],
        "sensor",
        {"occupancy", "presence", "illuminance"},
    ),
    ("linkquality only", [{"type": "numeric", "property": "linkquality"}], "sensor", set()),
]


@pytest.mark.parametrize(("name", "exposes", "kind", "capabilities"), CASES, ids=[c[0] for c in CASES])
def test_kind_and_capabilities_come_from_exposes(
    name: str, exposes: Any, kind: str, capabilities: set[str]
) -> None:
    device = device_of(entry(name, exposes))
    assert (device.kind, set(device.capabilities)) == (kind, capabilities)


def test_a_second_endpoint_is_reported_not_merged() -> None:
    exposes = [
        {"type": "switch", "endpoint": "l1", "features": [feature("state", "state_l1")]},
        {"type": "switch", "endpoint": "l2", "features": [feature("state", "state_l2")]},
    ]
    device = device_of(entry("2-gang", exposes))
    assert device.kind == "switch" and "state" not in device.capabilities
    assert [p.what for p in device.problems] == ["switch state_l1", "switch of endpoint l2"]


def test_a_thermostat_is_read_and_commanded_in_its_own_names() -> None:
    exposes = [
        {
            "type": "climate",
            "features": [
                {"name": "local_temperature", "property": "local_temperature"},
                {"name": "current_heating_setpoint", "property": "current_heating_setpoint"},
                {"name": "system_mode", "property": "system_mode"},
            ],
        }
    ]
    device = device_of(entry("trv", exposes))
    assert device.kind == "hvac" and set(device.capabilities) == {"temperature", "setpoint", "mode"}
    state = next(route for route in device.routes if route.kind is TopicKind.STATE)
    decoded = state.dialect.decode_state(
        b'{"local_temperature": 20.5, "current_heating_setpoint": 21, "system_mode": "fan_only"}'
    )
    assert (decoded.temperature, decoded.setpoint, decoded.mode) == (20.5, 21, "fan")
    assert device.commander is not None
    assert device.commander({"setpoint": 22, "mode": "fan"}) == [
        ("zigbee2mqtt/trv/set", b'{"current_heating_setpoint":22,"system_mode":"fan_only"}')
    ]


def test_routes_are_the_zigbee2mqtt_dialects_and_power_source_is_read() -> None:
    device = device_of(
        entry("orion/pir", [{"type": "binary", "property": "occupancy"}], power_source="Battery")
    )
    assert {r.topic: r.kind for r in device.routes} == {
        "zigbee2mqtt/orion/pir": TopicKind.STATE,
        "zigbee2mqtt/orion/pir/availability": TopicKind.AVAILABILITY,
        "zigbee2mqtt/orion/pir/set": TopicKind.COMMAND,
    }
    assert device.power_source == "battery" and device.commander is None


def test_the_coordinator_disabled_and_unusable_entries_are_skipped() -> None:
    payload = orjson.dumps(
        [
            {"ieee_address": "0x01", "friendly_name": "Coordinator", "type": "Coordinator"},
            {"ieee_address": "0x02", "friendly_name": "off", "disabled": True},
            {"ieee_address": "0x03", "friendly_name": "a/+/b"},
            {"ieee_address": "0x04", "friendly_name": "bridge/x"},
            {"friendly_name": "no address"},
            "not an object",
            {"ieee_address": "0x05", "friendly_name": "fine", "definition": None},
        ]
    )
    devices, notes = parse_devices(payload)
    assert [d.friendly_name for d in devices] == ["fine"]
    assert len(notes) == 5
    assert "no definition" in announce("zigbee2mqtt", devices[0]).ignored[0]


def test_groups_by_member_and_bad_lists() -> None:
    groups = parse_groups(
        b'[{"friendly_name": "hall", "members": [{"ieee_address": "0x1", "endpoint": 1}]}, 3]'
    )
    assert groups == {"0x1": ("hall",)}
    with pytest.raises(DecodeError, match="not a JSON array"):
        parse_devices(b'{"devices": []}')
    with pytest.raises(DecodeError) as raised:
        parse_groups(b"[{")
    assert raised.value.reason == "invalid_json"


def test_the_fingerprint_changes_with_the_entry_or_its_groups_only() -> None:
    item = entry("orion/pir", [{"type": "binary", "property": "occupancy"}])
    first, again = device_of(item), device_of(dict(item))
    assert first.fingerprint == again.fingerprint
    assert device_of(item, ("hall",)).fingerprint != first.fingerprint
    assert device_of({**item, "friendly_name": "orion/radar"}).fingerprint != first.fingerprint
