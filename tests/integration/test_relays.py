"""Relays, plugs and dimmers through the real broker: Tasmota and Shelly Gen2+."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson
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


def test_shelly_pro_dimmer_two_channels_in_two_rooms(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    """One Pro Dimmer 2PM on a custom prefix, its two lights in two rooms (`channel: 0`
    and `channel: 1`): one frame for both, the REST API dimming each on its own channel."""
    prefix = f"shellies/{uuid.uuid4().hex[:8]}/dimmer"
    listener = CommandListener(mqtt_broker, f"{prefix}/rpc")
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {
                "rooms": [
                    {"id": "orion", "building": "hq", "floor": 2},
                    {"id": "lyra", "building": "hq", "floor": 2},
                ],
                "devices": [
                    {
                        "id": "orion-light",
                        "room": "orion",
                        "dialect": "shelly",
                        "topic": prefix,
                        "kind": "light",
                    },
                    {"id": "lyra-light", "room": "lyra", "dialect": "shelly", "topic": prefix, "channel": 1},
                ],
            }
        },
    )
    try:
        device = gw.get("/v1/devices/lyra-light").json()
        assert (device["topic"], device["channel"]) == (prefix, 1)
        publisher.publish(f"{prefix}/online", b"true")
        publisher.publish(
            f"{prefix}/events/rpc",
            b'{"src":"shellyprodm2pm-08f9e0e48c18","dst":"shellies/x/events","method":"NotifyFullStatus",'
            b'"params":{"ts":1714805668.64,"input:0":{"id":0,"state":null},'
            b'"light:0":{"id":0,"output":true,"brightness":35.0,"apower":9.4,"aenergy":{"total":41.626}},'
            b'"light:1":{"id":1,"output":false,"brightness":73.0,"apower":0.0,"aenergy":{"total":118.358}}}}',
        )

        def lighting(room: str) -> dict[str, Any]:
            found: dict[str, Any] = gw.room(room).get("lighting", {})
            return found

        wait_until(
            lambda: lighting("orion").get("on") is True and lighting("lyra").get("on") is False, 2.0, "both"
        )
        assert lighting("orion")["brightness_pct"] == 35.0 and lighting("orion")["power_w"] == 9.4
        assert gw.get("/v1/devices/lyra-light").json()["last_state"]["brightness"] == 185  # 73 % of 254
        assert all(gw.get(f"/v1/devices/{d}").json()["online"] for d in ("orion-light", "lyra-light"))

        # The second light has reported a level: switching it needs no brightness to be a Light.Set.
        assert (
            gw.http.post("/v1/devices/lyra-light/commands", json={"state": "ON"}).json()["outcome"] == "sent"
        )
        dim = gw.http.post("/v1/rooms/orion/lights", json={"on": True, "brightness_pct": 60})
        assert dim.status_code == 200, dim.text
        wait_until(lambda: len(listener.received) >= 2, 2.0, "two RPC frames")
        frames = sorted(
            (orjson.loads(body)["params"]["id"], orjson.loads(body)) for _, body in listener.received
        )
        assert [(f["method"], f["params"]) for _, f in frames] == [
            ("Light.Set", {"id": 0, "on": True, "brightness": 60}),
            ("Light.Set", {"id": 1, "on": True}),
        ]
    finally:
        gw.stop()
        listener.close()
