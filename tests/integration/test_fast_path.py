"""FastPathClient on a real mosquitto: what arrives is what was sent, properties or not,
and manual acknowledgement still holds back the PUBACK (so the broker redelivers)."""

from __future__ import annotations

import queue
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqtt.fast_path import FastPathClient
from gateway.mqtt.paho_transport import fast_path_supported, installed_paho_version
from simulators.broker import BrokerProcess
from tests.support import wait_until

# FastPathClient runs only on the paho-mqtt series it was written for; on another the
# gateway uses plain paho (tests/unit/gateway/mqtt/test_fast_path_switch.py).
pytestmark = pytest.mark.skipif(
    not fast_path_supported(installed_paho_version()),
    reason=f"the fast path is for paho-mqtt 2.2.x; {installed_paho_version()} is installed",
)


def connect(client: mqtt.Client, broker: BrokerProcess, topic: str, **connect_args: Any) -> None:
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port, **connect_args)
    client.loop_start()
    assert subscribed.wait(5), "no SUBACK"


def test_messages_with_and_without_properties_arrive_intact(mqtt_broker: BrokerProcess) -> None:
    root = f"fastpath-{uuid.uuid4().hex[:8]}"
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    fast = FastPathClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    fast.on_message = lambda client, userdata, message: received.put(message)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        connect(fast, mqtt_broker, f"{root}/#")
        sender.connect(mqtt_broker.host, mqtt_broker.port)
        sender.loop_start()
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = "application/json"
        props.UserProperty = ("site", "hq")
        sender.publish(f"{root}/plain", b'{"a":1}', qos=1).wait_for_publish(5)
        sender.publish(f"{root}/with props", b'{"b":2}', qos=1, properties=props).wait_for_publish(5)
        sender.publish(f"{root}/qos0", b"", qos=0).wait_for_publish(5)

        got = {m.topic: m for m in (received.get(timeout=5) for _ in range(3))}
        assert got[f"{root}/plain"].payload == b'{"a":1}'
        assert got[f"{root}/plain"].qos == 1
        assert got[f"{root}/with props"].payload == b'{"b":2}'
        with_props = got[f"{root}/with props"].properties
        assert with_props is not None
        assert with_props.ContentType == "application/json"
        assert with_props.UserProperty == [("site", "hq")]
        assert got[f"{root}/qos0"].payload == b""
        assert got[f"{root}/qos0"].qos == 0
    finally:
        for client in (fast, sender):
            client.disconnect()
            client.loop_stop()


def test_manual_ack_holds_the_puback_until_acked(mqtt_broker: BrokerProcess) -> None:
    root = f"fastpath-{uuid.uuid4().hex[:8]}"
    client_id = f"fastpath-{uuid.uuid4().hex[:8]}"
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = 60
    first: list[mqtt.MQTTMessage] = []
    second: list[mqtt.MQTTMessage] = []

    holder = FastPathClient(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    holder.on_message = lambda client, userdata, message: first.append(message)
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        connect(holder, mqtt_broker, f"{root}/#", clean_start=False, properties=session)
        sender.connect(mqtt_broker.host, mqtt_broker.port)
        sender.loop_start()
        for i in range(3):
            sender.publish(f"{root}/r", str(i).encode(), qos=1).wait_for_publish(5)
        wait_until(lambda: len(first) == 3, what="three messages")
        holder.ack(first[0].mid, 1)  # only the first is acknowledged
    finally:
        holder.disconnect()
        holder.loop_stop()

    again = FastPathClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    again.on_message = lambda client, userdata, message: second.append(message)
    try:
        again.connect(mqtt_broker.host, mqtt_broker.port, clean_start=False, properties=session)
        again.loop_start()
        wait_until(lambda: len(second) == 2, what="the two unacknowledged messages again")
        assert sorted(m.payload for m in second) == [b"1", b"2"]
        assert all(m.dup for m in second)
    finally:
        again.disconnect()
        again.loop_stop()
        sender.disconnect()
        sender.loop_stop()


def test_a_burst_arrives_whole_and_in_order(mqtt_broker: BrokerProcess) -> None:
    """Thousands of packets read in 64 KiB chunks: packets split across chunks, one
    payload bigger than a chunk, and replies published from the callback."""
    root = f"fastpath-{uuid.uuid4().hex[:8]}"
    received: list[tuple[str, bytes]] = []
    fast = FastPathClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, message.payload))
        if message.topic.endswith("/ping"):
            client.publish(f"{root}-replies/pong", message.payload, qos=1)

    fast.on_message = on_message
    replies: queue.Queue[bytes] = queue.Queue()
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sender.max_inflight_messages_set(1000)
    sender.on_message = lambda client, userdata, message: replies.put(message.payload)
    try:
        connect(fast, mqtt_broker, f"{root}/#")
        connect(sender, mqtt_broker, f"{root}-replies/#")
        expected = []
        for i in range(5000):
            topic = f"{root}/room-{i % 50}/sensor" if i % 500 else f"{root}/ping"
            payload = (b"x" * 100_000) if i == 2500 else f'{{"n":{i}}}'.encode()
            expected.append((topic, payload))
            sender.publish(topic, payload, qos=1)
        wait_until(lambda: len(received) >= 5000, 20, "all 5,000 messages")
        assert received == expected
        # FastPathClient's PUBACKs (sent coalesced) reached the broker: mosquitto keeps at
        # most 20 unacknowledged QoS 1 messages in flight to a client, so without them
        # delivery would have stalled after the first 20.
        pongs = sorted(replies.get(timeout=5) for _ in range(10))
        assert pongs == sorted(p for t, p in expected if t.endswith("/ping"))
    finally:
        for client in (fast, sender):
            client.disconnect()
            client.loop_stop()
