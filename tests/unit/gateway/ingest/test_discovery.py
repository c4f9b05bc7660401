"""Discovered devices mapped at run time on a gateway of fakes: who holds a topic,
shared availability topics, silence, and restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes import GatewayOnFakes, running_gateway

ROOMS = [{"id": "orion", "building": "hq", "floor": 2}, {"id": "annex-hall", "building": "annex", "floor": 0}]


def config(**more: Any) -> dict[str, Any]:
    return {
        "site": {"rooms": ROOMS, **more.pop("site", {})},
        "discovery": {"zigbee2mqtt": True, "homeassistant": True},
        **more,
    }


def bridge(*entries: tuple[str, str]) -> bytes:
    return orjson.dumps(
        [
            {
                "ieee_address": ieee,
                "friendly_name": name,
                "definition": {"exposes": [{"type": "binary", "property": "occupancy"}]},
            }
            for ieee, name in entries
        ]
    )


def ha_sensor(gw: GatewayOnFakes, key: str, state_topic: str, **more: Any) -> None:
    payload = {
        "stat_t": state_topic,
        "dev_cla": "motion",
        "val_tpl": "{{ value_json.occupancy }}",
        "pl_on": True,
        "pl_off": False,
        "dev": {"ids": [key], "sa": "orion"},
        **more,
    }
    gw.transport.deliver(
        f"homeassistant/binary_sensor/{key}/occupancy/config", orjson.dumps(payload), retained=True
    )


def status(gw: GatewayOnFakes) -> dict[str, str]:
    return {entry.device.id: entry.status for entry in gw.gateway.discovered()}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, config()) as running:
        yield running


def test_a_configured_device_keeps_its_topic(tmp_path: Path) -> None:
    site = {
        "devices": [
            {"id": "orion-pir", "room": "orion", "dialect": "zigbee2mqtt", "topic": "zigbee2mqtt/orion/pir"}
        ]
    }
    with running_gateway(tmp_path, config(site=site)) as gw:
        gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
        assert status(gw) == {"z2m:0x01": "refused"}
        gw.transport.deliver("zigbee2mqtt/orion/pir", {"occupancy": True})
        assert gw.gateway.device("orion-pir").last_state == {"occupancy": True}


def test_home_assistant_gives_way_to_zigbee2mqtts_own_list_and_comes_back_when_it_leaves(
    gw: GatewayOnFakes,
) -> None:
    ha_sensor(gw, "zigbee2mqtt_0x01", "zigbee2mqtt/orion/pir")
    assert status(gw) == {"ha:zigbee2mqtt_0x01": "mapped"}
    gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
    assert status(gw) == {"ha:zigbee2mqtt_0x01": "superseded", "z2m:0x01": "mapped"}
    assert gw.gateway.device("ha:zigbee2mqtt_0x01") is None
    gw.transport.deliver("zigbee2mqtt/orion/pir", {"occupancy": True})
    assert gw.gateway.device("z2m:0x01").last_state == {"occupancy": True}
    gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(), retained=True)
    assert status(gw) == {"ha:zigbee2mqtt_0x01": "mapped"}
    assert "zigbee2mqtt/orion/pir" in gw.transport.subscribed


def test_an_availability_topic_several_devices_announce_is_followed_for_none(gw: GatewayOnFakes) -> None:
    ha_sensor(gw, "one", "z/one", avty_t="z/bridge/state")
    assert "z/bridge/state" in gw.transport.subscribed
    ha_sensor(gw, "two", "z/two", avty_t="z/bridge/state")
    assert "z/bridge/state" not in gw.transport.subscribed
    gw.transport.deliver("homeassistant/binary_sensor/two/occupancy/config", b"", retained=True)
    assert "z/bridge/state" in gw.transport.subscribed
    gw.transport.deliver("z/bridge/state", b"offline")
    assert gw.gateway.device("ha:one").online is False


def test_discovered_devices_are_not_forgotten_for_silence(tmp_path: Path) -> None:
    with running_gateway(tmp_path, config(registry={"forget_after": 60})) as gw:
        gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
        gw.advance(3600)
        gw.advance(3600)
        assert gw.gateway.device("z2m:0x01") is not None


def test_a_bad_announcement_is_rejected_and_changes_nothing(gw: GatewayOnFakes) -> None:
    gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
    gw.transport.deliver("zigbee2mqtt/bridge/devices", b"[{", retained=True)
    gw.transport.deliver("homeassistant/sensor/x/t/config", b"42", retained=True)
    assert [letter.reason for letter in gw.gateway.dead_letters_page()] == ["invalid_json", "not_an_object"]
    assert status(gw) == {"z2m:0x01": "mapped"}


def test_a_device_may_not_claim_native_or_gateway_topics(gw: GatewayOnFakes) -> None:
    prefix = gw.gateway.settings.mqtt.topic_prefix
    ha_sensor(gw, "sneaky", f"{prefix}/hq/2/orion/orion-pir")
    ha_sensor(gw, "loud", "officegw/state/hq/2/orion")
    assert status(gw) == {"ha:sneaky": "refused", "ha:loud": "refused"}
    assert gw.gateway.devices() == []


def test_a_restart_restores_routes_and_subscriptions_before_connecting(tmp_path: Path) -> None:
    with running_gateway(tmp_path, config()) as gw:
        gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
        ha_sensor(gw, "ha1", "z/ha1")
        gw.transport.deliver("zigbee2mqtt/orion/pir", {"occupancy": True})
        gw.flush()
    with running_gateway(tmp_path, config()) as gw:
        # Subscribed before any announcement was replayed: the snapshot had them.
        assert {"zigbee2mqtt/orion/pir", "z/ha1"} <= set(gw.transport.subscribed)
        assert gw.gateway.device("z2m:0x01").last_state == {"occupancy": True}
        gw.transport.deliver("zigbee2mqtt/bridge/devices", bridge(("0x01", "orion/pir")), retained=True)
        assert sorted(status(gw).items()) == [("ha:ha1", "mapped"), ("z2m:0x01", "mapped")]
        assert len(gw.gateway.devices()) == 2


def test_a_room_from_the_full_path_is_created_within_the_registry(tmp_path: Path) -> None:
    with running_gateway(tmp_path, config(registry={"max_auto_rooms": 1})) as gw:
        gw.transport.deliver(
            "zigbee2mqtt/bridge/devices",
            bridge(("0x01", "hq/3/atrium/pir"), ("0x02", "hq/3/lobby-3/pir")),
            retained=True,
        )
        assert status(gw) == {"z2m:0x01": "mapped", "z2m:0x02": "refused"}
        assert gw.gateway.room("atrium") is not None
        assert [letter.reason for letter in gw.gateway.dead_letters_page()] == ["registry_full"]
