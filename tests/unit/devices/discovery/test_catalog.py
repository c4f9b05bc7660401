"""Announcements reconciled into devices: replays change nothing, removals remove,
and memory stays within the limits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.dialects.base import DecodeError
from devices.discovery.catalog import Catalog

BASE = "zigbee2mqtt"


def bridge(*names: str) -> bytes:
    return orjson.dumps(
        [
            {"ieee_address": f"0x{index:04x}", "friendly_name": name, "definition": {"exposes": []}}
            for index, name in enumerate(names)
        ]
    )


def sensor(device: str, topic: str = "t", device_class: str = "temperature") -> bytes:
    config: dict[str, Any] = {"stat_t": topic, "dev_cla": device_class, "dev": {"ids": [device]}}
    return orjson.dumps(config)


def test_a_replayed_device_list_changes_nothing() -> None:
    catalog = Catalog()
    first = catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x", "b/y"))
    assert [d.id for d in first.upserted] == ["z2m:0x0000", "z2m:0x0001"] and not first.removed
    assert not catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x", "b/y"))


def test_rename_and_leave() -> None:
    catalog = Catalog()
    catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x", "b/y"))
    renamed = catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x", "c/y"))
    assert [(d.id, d.topic) for d in renamed.upserted] == [("z2m:0x0001", "zigbee2mqtt/c/y")]
    left = catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x"))
    assert left.removed == ("z2m:0x0001",) and len(catalog) == 1


def test_groups_change_only_their_members() -> None:
    catalog = Catalog()
    catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("x", "y"))
    groups = orjson.dumps([{"friendly_name": "hall", "members": [{"ieee_address": "0x0001"}]}])
    changed = catalog.bridge_groups(BASE, "zigbee2mqtt/bridge/groups", groups)
    assert [(d.id, d.hints.groups) for d in changed.upserted] == [("z2m:0x0001", ("hall",))]


def test_entities_join_their_device_and_an_empty_config_removes_them() -> None:
    catalog = Catalog()
    catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", sensor("dev"))
    both = catalog.ha_config(
        "homeassistant", "homeassistant/sensor/b/config", sensor("dev", "t2", "humidity")
    )
    assert [len(d.routes) for d in both.upserted] == [2]
    assert not catalog.ha_config(
        "homeassistant", "homeassistant/sensor/b/config", sensor("dev", "t2", "humidity")
    )
    one = catalog.ha_config("homeassistant", "homeassistant/sensor/b/config", b"")
    assert [len(d.routes) for d in one.upserted] == [1]
    gone = catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", b"")
    assert gone.removed == ("ha:dev",) and len(catalog) == 0 and catalog.raw() == {}


def test_an_entity_that_moves_to_another_device_leaves_the_first() -> None:
    catalog = Catalog()
    catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", sensor("one"))
    moved = catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", sensor("two"))
    assert moved.removed == ("ha:one",) and [d.id for d in moved.upserted] == ["ha:two"]


def test_limits_on_entities_refuse_past_them() -> None:
    catalog = Catalog(max_entities=2, max_entities_per_device=1)
    catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", sensor("one"))
    with pytest.raises(DecodeError, match="more than 1 entities") as raised:
        catalog.ha_config("homeassistant", "homeassistant/sensor/b/config", sensor("one", "t2"))
    assert raised.value.reason == "registry_full"
    catalog.ha_config("homeassistant", "homeassistant/sensor/c/config", sensor("two"))
    with pytest.raises(DecodeError, match="max_entities"):
        catalog.ha_config("homeassistant", "homeassistant/sensor/d/config", sensor("three"))
    # Replacing an entity in place is within the limit.
    catalog.ha_config("homeassistant", "homeassistant/sensor/c/config", sensor("two", "t9"))
    assert catalog.entity_count == 2


def test_raw_holds_what_rebuilds_the_catalog() -> None:
    catalog = Catalog()
    catalog.bridge_devices(BASE, "zigbee2mqtt/bridge/devices", bridge("a/x"))
    catalog.ha_config("homeassistant", "homeassistant/sensor/a/config", sensor("dev"))
    again = Catalog()
    for topic, payload in catalog.raw().items():
        if topic.startswith("zigbee2mqtt/"):
            again.bridge_devices(BASE, topic, payload)
        else:
            again.ha_config("homeassistant", topic, payload)
    assert {d.id: d.fingerprint for d in again} == {d.id: d.fingerprint for d in catalog}
