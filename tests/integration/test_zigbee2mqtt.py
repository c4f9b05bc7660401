"""Golden payloads: real Zigbee2MQTT messages through the real broker into the gateway.

Every line of shared/data/device-payloads/zigbee2mqtt.jsonl is published byte for
byte on its topic; the device's state must then hold what the line expects (or the
message must be rejected and counted, for the invalid one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "data" / "device-payloads" / "zigbee2mqtt.jsonl"


def golden() -> list[dict[str, Any]]:
    assert PAYLOADS.is_file(), (
        f"golden payloads not found: {PAYLOADS} (expected shared/ beside the repository)"
    )
    return [json.loads(line) for line in PAYLOADS.read_text().splitlines() if line.strip()]


def base_topic(topic: str) -> str:
    return topic.removesuffix("/availability")


@pytest.fixture(scope="module")
def z2m(mqtt_broker: BrokerProcess) -> Iterator[tuple[RunningGateway, str, dict[str, str]]]:
    # A base topic of our own, so no other test's retained messages leak in.
    root = f"z2m-{uuid.uuid4().hex[:8]}"
    topics = sorted({base_topic(line["topic"]) for line in golden()})
    device_of = {topic: f"z2m-{index}" for index, topic in enumerate(topics)}
    devices = [
        {
            "id": device,
            "room": "lab",
            "dialect": "zigbee2mqtt",
            "topic": topic.replace("zigbee2mqtt", root, 1),
        }
        for topic, device in device_of.items()
    ]
    gw = start_gateway(
        mqtt_broker,
        {"site": {"rooms": [{"id": "lab", "building": "hq", "floor": 1}], "devices": devices}},
    )
    try:
        yield gw, root, device_of
    finally:
        gw.stop()


@pytest.mark.parametrize("line", golden(), ids=lambda line: f"{line['device'][:40]}")
def test_golden_payload(
    z2m: tuple[RunningGateway, str, dict[str, str]], publisher: Publisher, line: dict[str, Any]
) -> None:
    gw, root, device_of = z2m
    topic = line["topic"].replace("zigbee2mqtt", root, 1)
    device = device_of[base_topic(line["topic"])]
    expect = line["expect"]

    if "rejected" in expect:
        label = f'reason="{expect["rejected"]}"'
        before = gw.metric("officegw_messages_rejected_total", label)
        publisher.publish(topic, line["payload"].encode())
        wait_until(
            lambda: gw.metric("officegw_messages_rejected_total", label) == before + 1,
            2.0,
            "rejection counted",
        )
        return

    if "availability" in expect:
        publisher.publish(topic, line["payload"].encode())
        online = expect["availability"] == "online"
        wait_until(lambda: gw.get(f"/v1/devices/{device}").json()["online"] is online, 2.0, "availability")
        return

    publisher.publish(topic, line["payload"].encode())

    def state() -> dict[str, Any]:
        found: dict[str, Any] = gw.get(f"/v1/devices/{device}").json()["last_state"]
        return found

    wait_until(lambda: all(state().get(k) == v for k, v in expect.items()), 2.0, f"{device} state {expect}")


def test_mapped_devices_act_on_their_room(
    z2m: tuple[RunningGateway, str, dict[str, str]], publisher: Publisher
) -> None:
    gw, root, device_of = z2m
    door = next(topic for topic in device_of if topic.endswith("Klingel"))
    publisher.publish(door.replace("zigbee2mqtt", root, 1), b'{"contact": false, "battery": 99}')
    wait_until(lambda: gw.room("lab")["access"]["door_open"] is True, 2.0, "door open in the room")
    assert gw.get(f"/v1/devices/{device_of[door]}").json()["dialect"] == "zigbee2mqtt"


def test_commands_reach_mapped_devices_on_their_set_topic(
    z2m: tuple[RunningGateway, str, dict[str, str]], mqtt_broker: BrokerProcess
) -> None:
    from tests.support import SimLight

    gw, root, device_of = z2m
    bulb_topic = next(topic for topic in device_of if topic.endswith("0x0017880104eb6195"))
    bulb = SimLight(mqtt_broker, bulb_topic.replace("zigbee2mqtt", root, 1))
    try:
        response = gw.http.post(f"/v1/devices/{device_of[bulb_topic]}/commands", json={"state": "OFF"})
        assert response.json()["outcome"] == "sent"
        wait_until(lambda: bulb.commands == [{"state": "OFF"}], 2.0, "command on <topic>/set")
        wait_until(
            lambda: gw.get(f"/v1/devices/{device_of[bulb_topic]}").json()["last_state"]["state"] == "OFF",
            2.0,
            "the bulb's report",
        )
    finally:
        bulb.close()
