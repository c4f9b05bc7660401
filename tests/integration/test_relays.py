"""Relays and plugs through the real broker: Tasmota and Shelly Gen2."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess
from tests.support import Publisher, start_gateway, wait_until


class CommandListener:
    """Plays the device's side of the command topics: records what the gateway sends."""

    def __init__(self, broker: BrokerProcess, topic_filter: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda client, userdata, message: self.received.append(
            (message.topic, message.payload)
        )
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        assert subscribed.wait(5), f"no SUBACK for {topic_filter}"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_tasmota_plug(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    t = f"plug-{uuid.uuid4().hex[:8]}"
    listener = CommandListener(mqtt_broker, f"cmnd/{t}/#")
    commands = listener.received
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {
                "rooms": [{"id": "orion", "building": "hq", "floor": 2}],
                "devices": [
                    {"id": "orion-plug", "room": "orion", "dialect": "tasmota", "topic": t, "kind": "light"}
                ],
            }
        },
    )
    try:
        publisher.publish(
            f"tele/{t}/SENSOR", b'{"Time":"2024-03-01T10:00:00","ENERGY":{"Total":3.5,"Power":42}}'
        )
        publisher.publish(f"stat/{t}/POWER", b"ON")

        def state() -> dict[str, Any]:
            found: dict[str, Any] = gw.get("/v1/devices/orion-plug").json()["last_state"]
            return found

        wait_until(lambda: state().get("state") == "ON" and state().get("power") == 42, 2.0, "plug state")
        assert state()["energy"] == 3.5
        assert gw.room("orion")["lighting"]["on"] is True

        publisher.publish(f"tele/{t}/LWT", b"Offline")
        wait_until(lambda: gw.get("/v1/devices/orion-plug").json()["online"] is False, 2.0, "LWT offline")

        response = gw.http.post("/v1/devices/orion-plug/commands", json={"state": "OFF"})
        assert response.json()["outcome"] == "sent"
        wait_until(lambda: (f"cmnd/{t}/POWER", b"OFF") in commands, 2.0, "cmnd/<t>/POWER OFF")
    finally:
        gw.stop()
        listener.close()


def test_shelly_relay(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    prefix = f"shellyplus1pm-{uuid.uuid4().hex[:12]}"
    listener = CommandListener(mqtt_broker, f"{prefix}/rpc")
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {
                "rooms": [{"id": "orion", "building": "hq", "floor": 2}],
                "devices": [{"id": "orion-relay", "room": "orion", "dialect": "shelly", "topic": prefix}],
            }
        },
    )
    try:
        publisher.publish(
            f"{prefix}/status/switch:0", b'{"id":0,"output":true,"apower":12.5,"aenergy":{"total":1500}}'
        )
        wait_until(
            lambda: gw.get("/v1/devices/orion-relay").json()["last_state"].get("energy") == 1.5, 2.0, "status"
        )
        publisher.publish(
            f"{prefix}/events/rpc",
            b'{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"output":false}}}',
        )
        wait_until(
            lambda: gw.get("/v1/devices/orion-relay").json()["last_state"]["state"] == "OFF", 2.0, "notify"
        )
        publisher.publish(f"{prefix}/online", b"false")
        wait_until(lambda: gw.get("/v1/devices/orion-relay").json()["online"] is False, 2.0, "offline")
        gw.http.post("/v1/devices/orion-relay/commands", json={"state": "ON"})
        wait_until(lambda: listener.received, 2.0, "an RPC frame")
        assert b'"method":"Switch.Set"' in listener.received[0][1]
    finally:
        gw.stop()
        listener.close()
