"""Devices that announce themselves, through a real mosquitto: Zigbee2MQTT's device list
(join, rename, leave) and Home Assistant discovery from Zigbee2MQTT, Tasmota, Shelly
and Zwave2Mqtt firmware.

The announcements and messages are tests/fixtures/payloads/discovery/*.jsonl (one
real message a line, with its source; the folder's README). Each line is published
byte for byte on its topic, the announcement prefix swapped for one of the test's
own, and what the gateway made of it is checked over the API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "discovery"

ROOMS = [
    {"id": "lab", "building": "hq", "floor": 1},
    {"id": "balcony", "building": "hq", "floor": 1},
    {"id": "garden", "building": "hq", "floor": 0},
    {"id": "boiler", "building": "hq", "floor": 0},
    {"id": "livingroom", "name": "Living room", "building": "hq", "floor": 1},
    {"id": "dining-room", "name": "Dining room", "building": "hq", "floor": 1},
    {"id": "lounge", "building": "hq", "floor": 2},
]
# Where the golden announcements' devices go when their names say nothing (README).
RULES = [
    {"group": "hue lights", "room": "lounge"},
    {"pattern": "0x001788010213f612", "room": "lab"},
    {"pattern": "0x00124b001b50416b", "room": "lab"},
    {"pattern": "balc_*", "room": "balcony"},
    {"pattern": "D04DF5", "room": "garden"},
    {"pattern": "caldera*", "room": "boiler"},
    {"pattern": "led1", "room": "lab"},
    {"pattern": "Shelly 1L *", "room": "lab"},
    {"pattern": "Shelly 2.5 *", "room": "dining-room"},
    {"pattern": "in_wall_*", "room": "lab"},
]


def golden(name: str) -> list[dict[str, Any]]:
    path = FIXTURES / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def announced(gw: RunningGateway) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in gw.get("/v1/discovery").json()["devices"]}


def received(gw: RunningGateway) -> float:
    return gw.metric("officegw_messages_received_total")


def nothing_arrives(gw: RunningGateway, publisher: Publisher, topic: str, payload: bytes) -> None:
    """Publishes on `topic`, then a native message, and waits for the latter: the broker
    delivers one publisher's messages in order, so had the gateway still been
    subscribed to `topic`, that message would have come first."""
    before = received(gw)
    publisher.publish(topic, payload)
    publisher.publish(f"{gw.prefix}/hq/1/lab/sentinel", {"temperature": 21.0})
    wait_until(lambda: received(gw) >= before + 1, 3.0, "the sentinel message")
    assert received(gw) == before + 1, f"{topic} still reaches the gateway"


def check_announcement(gw: RunningGateway, expect: dict[str, Any]) -> None:
    def matches() -> list[str]:
        problems: list[str] = []
        report = announced(gw)
        for device_id, want in expect.get("mapped", {}).items():
            response = gw.get(f"/v1/devices/{device_id}")
            if response.status_code != 200:
                problems.append(f"{device_id} not mapped: {report.get(device_id)}")
                continue
            view = response.json()
            if view["configured"] is not False or view["mapping"] is None:
                problems.append(f"{device_id}: configured {view['configured']}, mapping {view['mapping']}")
                continue
            for key, field in (("room", "room_id"), ("kind", "kind")):
                if key in want and view[field] != want[key]:
                    problems.append(f"{device_id} {field} {view[field]} != {want[key]}")
            if "rule" in want and view["mapping"]["rule"] != want["rule"]:
                problems.append(f"{device_id} rule {view['mapping']['rule']} != {want['rule']}")
            if "capabilities" in want and view["capabilities"] != want["capabilities"]:
                problems.append(f"{device_id} capabilities {view['capabilities']} != {want['capabilities']}")
        for device_id, status in expect.get("status", {}).items():
            if report.get(device_id, {}).get("status") != status:
                problems.append(f"{device_id} status {report.get(device_id, {}).get('status')} != {status}")
        for device_id in expect.get("absent", []):
            if device_id in report or gw.get(f"/v1/devices/{device_id}").status_code != 404:
                problems.append(f"{device_id} still there")
        for device_id, entities in expect.get("unsupported", {}).items():
            found = sorted(
                {problem["entity"] for problem in report.get(device_id, {}).get("unsupported", [])}
            )
            if found != sorted(entities):
                problems.append(f"{device_id} unsupported {found} != {sorted(entities)}")
        for device_id, entities in expect.get("ignored", {}).items():
            ignored = report.get(device_id, {}).get("ignored", [])
            if not all(any(entity in note for note in ignored) for entity in entities):
                problems.append(f"{device_id} ignored {ignored}")
        return problems

    wait_until(lambda: not matches(), 3.0, "the announcement's devices", progress=matches)
    # Their topics are subscribed at run time: what a device publishes before the broker
    # acknowledged that is not delivered, as with any subscriber.
    wait_until(
        lambda: gw.metric("officegw_mqtt_subscriptions_pending") == 0, 3.0, "subscriptions acknowledged"
    )


def check_state(gw: RunningGateway, expect: dict[str, Any]) -> None:
    device_id = expect["device"]

    def view() -> dict[str, Any]:
        response = gw.get(f"/v1/devices/{device_id}")
        return response.json() if response.status_code == 200 else {}

    def matches() -> bool:
        found = view()
        if not found:
            return False
        if "online" in expect and found["online"] is not expect["online"]:
            return False
        return all(found["last_state"].get(key) == value for key, value in expect.get("state", {}).items())

    wait_until(matches, 3.0, f"{device_id} state {expect}", progress=view)


@pytest.fixture
def tag() -> str:
    return f"disc-{uuid.uuid4().hex[:8]}"


def local(topic: str, tag: str, prefix: str = "zigbee2mqtt") -> str:
    """The line's topic with the announcement prefix (Zigbee2MQTT's base topic, or Home
    Assistant's discovery prefix) made the test's own; other topics stay as they are."""
    return f"{tag}-{topic}" if topic.startswith(prefix + "/") else topic


@pytest.fixture
def z2m_gateway(mqtt_broker: BrokerProcess, tag: str) -> Iterator[RunningGateway]:
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {"rooms": ROOMS},
            "discovery": {"zigbee2mqtt": {"base_topic": f"{tag}-zigbee2mqtt"}, "rooms": RULES},
        },
    )
    try:
        yield gw
    finally:
        gw.stop()


def test_zigbee2mqtt_device_list_join_rename_leave(
    z2m_gateway: RunningGateway, publisher: Publisher, tag: str
) -> None:
    gw = z2m_gateway
    for line in golden("zigbee2mqtt-bridge.jsonl"):
        assert line.get("source"), "every golden line names where it was published"
        topic = local(line["topic"], tag)
        expect = line["expect"]
        if line["step"] == "announce":
            publisher.publish(topic, line["payload"].encode(), retain=line.get("retain", False))
            check_announcement(gw, expect)
            for gone in expect.get("unrouted", []):
                # No longer subscribed: the broker does not even deliver it.
                nothing_arrives(gw, publisher, local(gone, tag), b'{"temperature": 30.0}')
        else:
            before = gw.metric("officegw_messages_duplicate_total")
            rejected = gw.metric("officegw_messages_rejected_total", 'reason="unknown_topic"')
            publisher.publish(topic, line["payload"].encode())
            if expect.get("duplicate"):
                wait_until(
                    lambda b=before: gw.metric("officegw_messages_duplicate_total") == b + 1,
                    3.0,
                    "a duplicate",
                )
            check_state(gw, expect)
            assert gw.metric("officegw_messages_rejected_total", 'reason="unknown_topic"') == rejected


def test_zigbee2mqtt_commands_go_to_the_current_friendly_name(
    z2m_gateway: RunningGateway, mqtt_broker: BrokerProcess, publisher: Publisher, tag: str
) -> None:
    from tests.support import SimLight

    gw = z2m_gateway
    for line in golden("zigbee2mqtt-bridge.jsonl")[:2]:  # its groups (the bulb's room), then its devices
        publisher.publish(local(line["topic"], tag), line["payload"].encode(), retain=True)
    wait_until(
        lambda: gw.get("/v1/devices/z2m:0x0017880104dfc05e").status_code == 200, 3.0, "the bulb mapped"
    )
    wait_until(
        lambda: gw.metric("officegw_mqtt_subscriptions_pending") == 0, 3.0, "subscriptions acknowledged"
    )
    bulb = SimLight(mqtt_broker, f"{tag}-zigbee2mqtt/hue_back_tv")
    try:
        response = gw.http.post("/v1/devices/z2m:0x0017880104dfc05e/commands", json={"state": "ON"})
        assert response.status_code == 200, response.text
        wait_until(lambda: bulb.commands == [{"state": "ON"}], 3.0, "the command on <base>/hue_back_tv/set")
        wait_until(
            lambda: gw.get("/v1/devices/z2m:0x0017880104dfc05e").json()["last_state"].get("state") == "ON",
            3.0,
            "the bulb's report",
        )
    finally:
        bulb.close()


@pytest.fixture(scope="module")
def ha_gateway(mqtt_broker: BrokerProcess) -> Iterator[tuple[RunningGateway, str]]:
    tag = f"disc-{uuid.uuid4().hex[:8]}"
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {"rooms": ROOMS},
            "discovery": {"homeassistant": {"prefix": f"{tag}-homeassistant"}, "rooms": RULES},
        },
    )
    try:
        yield gw, tag
    finally:
        gw.stop()


def _families() -> list[str]:
    return sorted({line["firmware"].split()[0] for line in golden("homeassistant.jsonl")})


@pytest.mark.parametrize("family", _families())
def test_home_assistant_discovery_golden(
    ha_gateway: tuple[RunningGateway, str], mqtt_broker: BrokerProcess, publisher: Publisher, family: str
) -> None:
    gw, tag = ha_gateway
    lines = [line for line in golden("homeassistant.jsonl") if line["firmware"].split()[0] == family]
    assert lines
    for line in lines:
        assert line.get("source"), "every golden line names where it was published"
        expect = line["expect"]
        if line["step"] == "command":
            _check_command(gw, mqtt_broker, line)
            continue
        topic = local(line["topic"], tag, "homeassistant")
        publisher.publish(topic, line["payload"].encode(), retain=line.get("retain", False))
        if line["step"] == "announce":
            check_announcement(gw, expect)
        else:
            check_state(gw, expect)


def _check_command(gw: RunningGateway, broker: BrokerProcess, line: dict[str, Any]) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    wanted = [tuple(message) for message in line["expect"]["published"]]
    seen: list[tuple[str, str]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: seen.append((m.topic, m.payload.decode()))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for topic in {topic for topic, _ in wanted}:
            client.subscribe(topic, qos=1)
        wait_until(lambda: client.is_connected(), 3.0, "listener connected")
        # The SUBACK: a retained-free probe on a topic of ours comes back once subscribed.
        probe = f"officegw-test/{uuid.uuid4().hex[:8]}"
        client.subscribe(probe, qos=1)
        client.publish(probe, b"probe", qos=1)
        wait_until(lambda: (probe, "probe") in seen, 3.0, "listener subscribed")
        response = gw.http.post(f"/v1/devices/{line['device_id']}/commands", json=line["command"])
        assert response.status_code == 200, response.text
        wait_until(
            lambda: [m for m in seen if m[0] != probe] == wanted, 3.0, f"commands {wanted}", lambda: seen
        )
    finally:
        client.loop_stop()
        client.disconnect()


def test_an_empty_retained_config_removes_the_device_and_its_subscription(
    ha_gateway: tuple[RunningGateway, str], publisher: Publisher
) -> None:
    gw, tag = ha_gateway
    config_topic = f"{tag}-homeassistant/sensor/probe-{uuid.uuid4().hex[:6]}/temperature/config"
    state_topic = f"{tag}-probe/state"
    config = {
        "name": "probe",
        "stat_t": state_topic,
        "dev_cla": "temperature",
        "unit_of_meas": "°C",
        "val_tpl": "{{ value_json.t }}",
        "uniq_id": f"{tag}-probe",
        "dev": {"ids": [f"{tag}-probe"], "sa": "lab"},
    }
    publisher.publish(config_topic, json.dumps(config).encode(), retain=True)
    device = f"ha:{tag}-probe"
    wait_until(lambda: gw.get(f"/v1/devices/{device}").status_code == 200, 3.0, "mapped by suggested_area")
    wait_until(
        lambda: gw.metric("officegw_mqtt_subscriptions_pending") == 0, 3.0, "subscriptions acknowledged"
    )
    assert gw.get(f"/v1/devices/{device}").json()["mapping"]["rule"] == "suggested_area"
    publisher.publish(state_topic, b'{"t": 22.5}')
    wait_until(lambda: gw.get(f"/v1/devices/{device}").json()["last_state"].get("temperature") == 22.5, 3.0)

    publisher.publish(config_topic, b"", retain=True)
    wait_until(lambda: gw.get(f"/v1/devices/{device}").status_code == 404, 3.0, "removed")
    assert device not in announced(gw)
    nothing_arrives(gw, publisher, state_topic, b'{"t": 23.5}')


def test_retained_announcements_after_a_restart_do_not_duplicate_devices(
    mqtt_broker: BrokerProcess, publisher: Publisher, tag: str, tmp_path: Path
) -> None:
    """The device list is replayed (retained) on every subscribe; readings a discovered
    device published while the gateway was down wait in its session and are applied
    when it is back, since the routes come back from the store before it connects."""
    config = {
        "gateway": {"id": f"restart-{tag}"},
        "site": {"rooms": ROOMS},
        "discovery": {"zigbee2mqtt": {"base_topic": f"{tag}-zigbee2mqtt"}, "rooms": RULES},
    }
    lines = golden("zigbee2mqtt-bridge.jsonl")
    storage = tmp_path / "officegw.db"
    gw = start_gateway(mqtt_broker, dict(config), storage=storage)
    try:
        for line in lines[:2]:
            publisher.publish(local(line["topic"], tag), line["payload"].encode(), retain=True)
        check_announcement(gw, lines[1]["expect"])
        count = gw.get("/v1/devices").json()["count"]
        prefix = gw.prefix
    finally:
        gw.stop()
    # While it is down: a reading from a discovered sensor (QoS 1, queued by the broker).
    publisher.publish(f"{tag}-zigbee2mqtt/livingroom/window", b'{"battery":97,"contact":false}')
    gw = start_gateway(mqtt_broker, {**config, "mqtt": {"topic_prefix": prefix}}, storage=storage)
    try:
        check_state(gw, {"device": "z2m:0x00158d0001e1a85a", "state": {"contact": False, "battery": 97}})
        check_announcement(gw, lines[1]["expect"])
        assert gw.get("/v1/devices").json()["count"] == count
        assert sum(1 for entry in announced(gw).values() if entry["status"] == "mapped") == 5
    finally:
        gw.stop()


def test_a_flood_of_fake_announcements_hits_the_registry_limits(
    mqtt_broker: BrokerProcess, publisher: Publisher, tag: str
) -> None:
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {"rooms": ROOMS},
            "registry": {"max_auto_devices": 20},
            "discovery": {
                "homeassistant": {"prefix": f"{tag}-homeassistant", "enabled": True},
                "max_entities": 50,
            },
        },
    )
    try:
        before = gw.metric("officegw_messages_rejected_total", 'reason="registry_full"')
        for n in range(200):
            config = {
                "stat_t": f"{tag}-fake/{n}",
                "dev_cla": "temperature",
                "uniq_id": f"fake-{n}",
                "dev": {"ids": [f"{tag}-fake-{n}"], "sa": "lab"},
            }
            publisher.publish(
                f"{tag}-homeassistant/sensor/fake{n}/t/config", json.dumps(config).encode(), retain=True
            )
        # 20 mapped (max_auto_devices); 30 more kept as refused (the catalog holds 50,
        # max_entities); the 150 past that refused outright. Every refusal is counted.
        wait_until(
            lambda: gw.metric("officegw_messages_rejected_total", 'reason="registry_full"') == before + 180,
            10.0,
            "180 registry_full rejections",
            lambda: gw.metric("officegw_messages_rejected_total", 'reason="registry_full"'),
        )
        report = announced(gw)
        assert sum(1 for entry in report.values() if entry["status"] == "mapped") == 20
        assert len(report) == 50
        assert gw.metric("officegw_discovery_devices", 'status="mapped"') == 20
        assert gw.metric("officegw_discovery_devices", 'status="refused"') == 30
    finally:
        gw.stop()


def test_a_shard_maps_only_its_buildings_devices(
    mqtt_broker: BrokerProcess, publisher: Publisher, tag: str
) -> None:
    rooms = [*ROOMS, {"id": "annex-hall", "building": "annex", "floor": 0}]
    gw = start_gateway(
        mqtt_broker,
        {
            "gateway": {"buildings": ["hq"]},
            "site": {"rooms": rooms},
            "discovery": {"homeassistant": {"prefix": f"{tag}-homeassistant"}},
        },
    )
    try:
        for room in ("lab", "annex-hall"):
            config = {
                "stat_t": f"{tag}-{room}/state",
                "dev_cla": "temperature",
                "dev": {"ids": [f"{tag}-{room}"], "sa": room},
            }
            publisher.publish(
                f"{tag}-homeassistant/sensor/{room}/t/config", json.dumps(config).encode(), retain=True
            )
        wait_until(lambda: len(announced(gw)) == 2, 3.0, "both announced")
        report = announced(gw)
        assert report[f"ha:{tag}-lab"]["status"] == "mapped"
        assert report[f"ha:{tag}-annex-hall"]["status"] == "other_shard"
        # Not subscribed: the other shard's device's messages never reach this gateway.
        nothing_arrives(gw, publisher, f"{tag}-annex-hall/state", b"21.5")
    finally:
        gw.stop()
