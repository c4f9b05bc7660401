"""Zigbee2MQTT devices mapped by the site config, acting on their room and taking commands.

The real payloads of tests/fixtures/payloads/zigbee2mqtt.jsonl are checked one
by one in test_golden_payloads.py.
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

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "zigbee2mqtt.jsonl"


def golden() -> list[dict[str, Any]]:
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
            lambda: gw.get(f"/v1/devices/{device_of[bulb_topic]}").json()["last_state"].get("state") == "OFF",
            2.0,
            "the bulb's report",
        )
    finally:
        bulb.close()
