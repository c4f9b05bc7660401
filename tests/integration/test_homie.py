"""Homie 5 devices through the real broker: golden messages, room state, availability, commands.

Every line of tests/fixtures/payloads/homie5.jsonl is published byte for byte on its
topic (under a root of this module's own, Homie allows any root); the device's
state, availability or the metrics must then show what the line expects. The lines
of one device run in file order: its `$description` comes before the values it
describes, as the device would publish them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "homie5.jsonl"


def golden() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAYLOADS.read_text(encoding="utf-8").splitlines() if line.strip()]


def base_of(topic: str) -> str:
    return "/".join(topic.split("/")[:3])  # homie/5/<device-id>


class HomieLamp:
    """A Homie 5 dimmable light: obeys `<base>/light/{on,brightness}/set` and reports the
    new value on the property topic, as the convention asks."""

    def __init__(self, broker: BrokerProcess, base: str) -> None:
        self.base = base
        self.received: list[tuple[str, bytes]] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(f"{base}/light/+/set", qos=1)
        self._client.loop_start()
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append((message.topic, message.payload))
        client.publish(message.topic.removesuffix("/set"), message.payload, qos=1, retain=True)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture(scope="module")
def homie(mqtt_broker: BrokerProcess) -> Iterator[tuple[RunningGateway, str, dict[str, str]]]:
    root = f"homie-{uuid.uuid4().hex[:8]}"  # no other test's retained messages leak in
    device_of = {base: base.split("/")[2] for base in sorted({base_of(line["topic"]) for line in golden()})}
    devices = [
        {"id": device, "room": "orion", "dialect": "homie", "topic": base.replace("homie", root, 1)}
        for base, device in device_of.items()
    ]
    gw = start_gateway(
        mqtt_broker,
        {"site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2}], "devices": devices}},
    )
    try:
        yield gw, root, device_of
    finally:
        gw.stop()


def device_json(gw: RunningGateway, device: str) -> dict[str, Any]:
    found: dict[str, Any] = gw.get(f"/v1/devices/{device}").json()
    return found


@pytest.mark.parametrize(
    "line", golden(), ids=lambda line: f"{line['device']}: {line['topic'].split('/', 3)[3]}"
)
def test_golden_message(
    homie: tuple[RunningGateway, str, dict[str, str]], publisher: Publisher, line: dict[str, Any]
) -> None:
    gw, root, device_of = homie
    topic = line["topic"].replace("homie", root, 1)
    device = device_of[base_of(line["topic"])]
    expect = line["expect"]
    payload = line["payload"].encode()

    if "rejected" in expect:
        label = f'reason="{expect["rejected"]}"'
        before = gw.metric("officegw_messages_rejected_total", label)
        publisher.publish(topic, payload)
        wait_until(
            lambda: gw.metric("officegw_messages_rejected_total", label) == before + 1, 2.0, "rejection"
        )
        letters = gw.get("/v1/dead-letters", reason=expect["rejected"], limit=1000).json()["dead_letters"]
        assert letters[-1]["topic"] == topic
        return

    if "ignored" in expect:
        online = device_json(gw, device)["online"]
        before = gw.metric("officegw_messages_ignored_total")
        publisher.publish(topic, payload)
        wait_until(lambda: gw.metric("officegw_messages_ignored_total") == before + 1, 2.0, "ignored")
        assert device_json(gw, device)["online"] is online
        return

    publisher.publish(topic, payload)
    if "availability" in expect:
        online = expect["availability"] == "online"
        wait_until(lambda: device_json(gw, device)["online"] is online, 2.0, f"{device} {expect}")
        return
    wait_until(
        lambda: all(device_json(gw, device)["last_state"].get(k) == v for k, v in expect.items()),
        2.0,
        f"{device} state {expect}",
    )


def test_homie_devices_drive_their_room(
    homie: tuple[RunningGateway, str, dict[str, str]], publisher: Publisher
) -> None:
    gw, root, _ = homie
    multi, door = f"{root}/5/orion-multi", f"{root}/5/orion-door"
    publisher.publish(f"{multi}/air/co2", b"905", retain=True)
    publisher.publish(f"{multi}/climate/temperature", b"22.25", retain=True)
    publisher.publish(f"{multi}/pir/motion", b"true", retain=True)
    publisher.publish(f"{door}/entrance/open", b"true", retain=True)

    def room() -> dict[str, Any]:
        return gw.room("orion")

    wait_until(lambda: room()["environment"]["co2_ppm"] == 905, 2.0, "co2 in the room")
    assert room()["environment"]["temperature_c"] == 22.25
    assert room()["occupancy"]["state"] == "occupied"
    wait_until(lambda: room()["access"]["door_open"] is True, 2.0, "door open in the room")
    assert device_json(gw, "orion-multi")["dialect"] == "homie"


def test_light_commands_go_to_homie_set_topics(
    homie: tuple[RunningGateway, str, dict[str, str]], mqtt_broker: BrokerProcess
) -> None:
    gw, root, _ = homie
    lamp = HomieLamp(mqtt_broker, f"{root}/5/orion-lamp")
    try:
        response = gw.http.post("/v1/devices/orion-lamp/commands", json={"state": "OFF"})
        assert response.json()["outcome"] == "sent"
        wait_until(lambda: lamp.received, 2.0, "a /set message")
        assert lamp.received == [(f"{root}/5/orion-lamp/light/on/set", b"false")]
        wait_until(
            lambda: device_json(gw, "orion-lamp")["last_state"]["state"] == "OFF", 2.0, "lamp reports off"
        )

        lamp.received.clear()
        gw.http.post("/v1/devices/orion-lamp/commands", json={"state": "ON", "brightness": 200})
        wait_until(lambda: len(lamp.received) == 2, 2.0, "two /set messages")
        assert lamp.received == [
            (f"{root}/5/orion-lamp/light/on/set", b"true"),
            (f"{root}/5/orion-lamp/light/brightness/set", b"79"),
        ]
        # 79 % reported back is 201 of 254: within the actuator's tolerance of 200.
        wait_until(
            lambda: device_json(gw, "orion-lamp")["last_state"].get("brightness") == 201,
            2.0,
            "lamp reports 79 %",
        )
        assert device_json(gw, "orion-lamp")["last_state"]["state"] == "ON"
    finally:
        lamp.close()


def test_retained_description_and_values_are_read_on_start(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    """A gateway that starts after the device gets its retained topics: the description
    first (it is subscribed first), so the °F value is converted."""
    base = f"homie-{uuid.uuid4().hex[:8]}/5/lobby-thermo"
    description = {
        "homie": "5.0",
        "version": 1,
        "name": "Lobby thermostat",
        "nodes": {"thermostat": {"properties": {"temperature": {"datatype": "float", "unit": "°F"}}}},
    }
    publisher.publish(f"{base}/$state", b"ready", retain=True)
    publisher.publish(f"{base}/$description", json.dumps(description).encode(), retain=True)
    publisher.publish(f"{base}/thermostat/temperature", b"68", retain=True)
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {
                "rooms": [{"id": "lobby", "building": "hq", "floor": 0}],
                "devices": [{"id": "lobby-thermo", "room": "lobby", "dialect": "homie", "topic": base}],
            }
        },
    )
    try:
        wait_until(lambda: device_json(gw, "lobby-thermo")["online"] is True, 2.0, "retained ready")
        wait_until(
            lambda: device_json(gw, "lobby-thermo")["last_state"].get("temperature") == 20.0,
            2.0,
            "68 °F as °C",
        )
    finally:
        gw.stop()
        for topic in ("$state", "$description", "thermostat/temperature"):
            publisher.publish(f"{base}/{topic}", b"", retain=True)
