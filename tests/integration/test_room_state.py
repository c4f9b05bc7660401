"""Room status retained on officegw/state/<building>/<floor>/<room> (DESIGN §7), on a
real mosquitto: after motion a fresh subscriber gets the room's state, retained, as
GET /v1/rooms/{id} shows it; changes are rate-limited per room and end with the latest;
a shard publishes only its own buildings' rooms."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess
from tests.support import Publisher, start_gateway, wait_until


class StateSubscriber:
    """A plain paho client following `filter`; every message with its retain flag."""

    def __init__(self, broker: BrokerProcess, topic_filter: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool, float]] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(topic_filter, qos=1)
        self._client.loop_start()
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                (message.topic, orjson.loads(message.payload), bool(message.retain), time.monotonic())
            )

    def on(self, topic: str) -> list[tuple[dict[str, Any], bool, float]]:
        with self._lock:
            return [(body, retained, at) for t, body, retained, at in self.messages if t == topic]

    def topics(self) -> set[str]:
        with self._lock:
            return {t for t, *_ in self.messages}

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def test_a_fresh_subscriber_gets_the_rooms_state_retained(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    building, other = f"b{uuid.uuid4().hex[:8]}", f"c{uuid.uuid4().hex[:8]}"
    config = {
        "gateway": {"buildings": [building]},
        "site": {
            "rooms": [
                {"id": "r0", "name": "Orion", "building": building, "floor": 2, "type": "meeting"},
                {"id": "r1", "building": building, "floor": 2},
                # Configured, but another shard's: never published by this gateway.
                {"id": "elsewhere", "building": other, "floor": 1},
            ]
        },
        "occupancy": {"vacancy_timeout": 3600},
    }
    gw = start_gateway(mqtt_broker, config)
    topic = f"officegw/state/{building}/2/r0"
    try:
        publisher.publish(f"{gw.prefix}/{building}/2/r0/r0-pir", {"occupancy": True})
        wait_until(lambda: gw.room("r0")["occupancy"]["state"] == "occupied", 5.0, "r0 occupied")
        # The first state (unknown) went out when the gateway started: the change waits
        # for the rest of that second. A follower sees it go out ...
        follower = StateSubscriber(mqtt_broker, topic)
        try:
            wait_until(
                lambda: any(body["occupancy"]["state"] == "occupied" for body, _, _ in follower.on(topic)),
                5.0,
                "the occupied state published",
            )
        finally:
            follower.close()

        # ... and a subscriber that comes after gets it from the broker, retained.
        fresh = StateSubscriber(mqtt_broker, f"officegw/state/{building}/#")
        try:

            def retained_occupied() -> dict[str, Any] | None:
                for body, retained, _ in fresh.on(topic):
                    if retained and body["occupancy"]["state"] == "occupied":
                        return body
                return None

            state = wait_until(retained_occupied, 5.0, "r0 retained state", progress=lambda: fresh.on(topic))
            # The same JSON as the REST API (nothing changed since).
            assert state == gw.room("r0")
            assert state["name"] == "Orion" and state["building"] == building
            # Every room of the shard, none of the other building.
            wait_until(lambda: fresh.on(f"officegw/state/{building}/2/r1"), 5.0, "r1's state")
        finally:
            fresh.close()
        everything = StateSubscriber(mqtt_broker, "officegw/state/#")
        try:
            # Retained states come in one burst on subscribe: once both of the shard's
            # rooms are here, so would another building's be.
            wait_until(
                lambda: everything.on(topic) and everything.on(f"officegw/state/{building}/2/r1"),
                5.0,
                "the shard's rooms under officegw/state/#",
            )
            assert not [t for t in everything.topics() if other in t]
        finally:
            everything.close()
    finally:
        gw.stop()


def test_changes_are_rate_limited_per_room_and_end_with_the_latest(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    building = f"b{uuid.uuid4().hex[:8]}"
    gw = start_gateway(mqtt_broker, {"site": {"rooms": [{"id": "r0", "building": building, "floor": 1}]}})
    topic = f"officegw/state/{building}/1/r0"
    follower = StateSubscriber(mqtt_broker, topic)
    try:
        wait_until(lambda: follower.on(topic), 5.0, "the first state")
        started, count_before = time.monotonic(), len(follower.on(topic))
        for co2 in range(500, 520):
            publisher.publish(f"{gw.prefix}/{building}/1/r0/r0-env", {"co2": co2})
        wait_until(
            lambda: follower.on(topic)[-1][0]["environment"]["co2_ppm"] == 519,
            5.0,
            "the latest co2 published",
        )
        elapsed = time.monotonic() - started
        changes = follower.on(topic)[count_before:]
        # 20 readings, each a change of the room: at most one publication a second
        # (plus the one at the start of the burst).
        assert len(changes) <= elapsed / 1.0 + 2, (len(changes), elapsed)
        assert len(changes) < 20
        assert gw.metric("officegw_room_states_published_total") >= len(changes) + 1
    finally:
        follower.close()
        gw.stop()
