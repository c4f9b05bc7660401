"""A mixed floor (native + Zigbee2MQTT + Tasmota + Shelly devices, and one that announces
itself by Home Assistant discovery) through the real broker and a real gateway: its rooms
look the same as those of the all-native floor of the same seed.

The floor is stepped in virtual time by the test, every message is published and
counted in before the next step, so both runs feed their gateway the same story in
the same order; the rules are off so nothing but the story moves the rooms. Then
every room's lights are set over the API, and the simulated devices obey in their
own dialect (`/set`, `cmnd/<t>/Dimmer`, a Shelly's `Light.Set` on `<prefix>/rpc`).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess
from simulators.floor import Message, VirtualFloor
from tests.support import Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

SCENARIO = 90.0  # real seconds of floor time: an hour and a half at 60x
STEP = 1.0


class DeviceSide:
    """The floor's devices on the broker: they hear commands on the floor's command topics."""

    def __init__(self, broker: BrokerProcess, topics: list[str]) -> None:
        self.commands: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = lambda _c, _u, m: self.commands.put((m.topic, bytes(m.payload)))
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe([(topic, 1) for topic in topics])
        self._client.loop_start()
        assert subscribed.wait(5), "no SUBACK for the floor's command topics"

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def room_view(room: dict[str, Any]) -> dict[str, Any]:
    """What a dashboard shows of a room, without times or the energy integrated in real time."""
    occupancy, lighting = room["occupancy"], room["lighting"]
    brightness = lighting["brightness_pct"]
    return {
        "occupancy": {k: occupancy[k] for k in ("state", "people", "confidence")},
        "environment": room["environment"],
        "lighting": {
            "on": lighting["on"],
            # Tasmota dims in whole percent: a level may come back one step off.
            "brightness_pct": None if brightness is None else round(brightness),
            "power_w": lighting["power_w"],
        },
        "access": room["access"],
        "available_now": room["available_now"],
    }


def rooms(gw: RunningGateway) -> dict[str, dict[str, Any]]:
    return {room["id"]: room_view(room) for room in gw.get("/v1/rooms").json()["rooms"]}


def run(broker: BrokerProcess, publisher: Publisher, tmp_path: Path, building: str, dialects: str) -> Any:
    prefix = unique_prefix()
    floor = VirtualFloor(
        building=building,
        rooms=9,
        seed=3,
        time_scale=60,
        prefix=prefix,
        dialects=dialects,
        discovery_prefix=f"{prefix}-homeassistant",
    )
    no_rules = tmp_path / f"no-rules-{dialects}.yaml"
    no_rules.write_text("rules: []\n")
    gw = start_gateway(
        broker,
        {
            "mqtt": {"topic_prefix": prefix},
            "site": {"rooms": floor.site_rooms(), "devices": floor.site_devices()},
            "discovery": {"homeassistant": {"prefix": floor.discovery_prefix}},
            "rules": str(no_rules),
        },
    )
    devices = DeviceSide(broker, floor.command_topics())
    try:
        sent, start = 0, time.time() - SCENARIO
        # Devices that announce themselves do so first; their topics are subscribed
        # once the announcements are read (and the broker acknowledged them).
        for topic, payload in floor.announcements():
            publisher.publish(topic, payload, retain=True)
            sent += 1
        wait_until(lambda count=sent: gw.metric("officegw_messages_accepted_total") == count, 5.0)
        wait_until(lambda: gw.metric("officegw_mqtt_subscriptions_pending") == 0, 5.0, "subscriptions")

        def taken_in(count: int) -> bool:
            return gw.metric("officegw_messages_accepted_total") == count

        for i in range(int(SCENARIO / STEP) + 1):
            for topic, payload in floor.step(start + i * STEP):
                publisher.publish(topic, payload)
                sent += 1
            # Every message accepted (none rejected) before the story moves on.
            wait_until(lambda count=sent: taken_in(count), 5.0, f"{sent} messages accepted")
        after_story = rooms(gw)

        for room in after_story:
            response = gw.http.post(f"/v1/rooms/{room}/lights", json={"on": True, "brightness_pct": 40})
            assert response.status_code == 200, response.text

        def lights_at_40() -> bool:
            while not devices.commands.empty():
                for topic, payload in floor.command(*devices.commands.get_nowait(), time.time()):
                    publisher.publish(topic, payload)
            lit = [r["lighting"] for r in rooms(gw).values()]
            return all(light["on"] and light["brightness_pct"] == 40 for light in lit)

        wait_until(lights_at_40, 5.0, f"every {dialects} light at 40 %")
        return after_story, rooms(gw)
    finally:
        devices.close()
        gw.stop()


def test_mixed_rooms_look_the_same_as_native_ones(
    mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path
) -> None:
    # A building of our own: Zigbee2MQTT names and Tasmota topics carry it, so
    # nothing retained by another test can leak in.
    building = f"hq{uuid.uuid4().hex[:6]}"
    native_story, native_lit = run(mqtt_broker, publisher, tmp_path, building, "native")
    mixed_story, mixed_lit = run(mqtt_broker, publisher, tmp_path, building, "mixed")
    assert set(mixed_story) == set(native_story)
    occupied = [r for r, v in native_story.items() if v["occupancy"]["state"] == "occupied"]
    assert 0 < len(occupied) < len(native_story)  # a story worth comparing
    assert any(v["lighting"]["on"] for v in native_story.values())
    for room in native_story:
        assert mixed_story[room] == native_story[room], room
        assert mixed_lit[room] == native_lit[room], room
