"""What differs on RabbitMQ (3.x MQTT plugin, MQTT 3.1.1 only), on private nodes
(tests/rabbitmq.py): the gateway says what to set when it speaks MQTT 5 to it, retained
messages reach exact-topic subscriptions only, and in a two-node cluster a persistent
session made on one node resumes on the other with nothing lost.

The ingest, restart and durability tests run on RabbitMQ too (conftest `broker`,
`restartable_broker`); these are the cases that exist only here.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.mqtt.paho_transport import MqttOptions, PahoTransport
from gateway.mqtt.transport import InboundMessage
from tests.rabbitmq import RabbitCluster, RabbitMQ
from tests.support import Publisher, start_gateway, unique_prefix, wait_until

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def rabbitmq(rabbitmq_broker: RabbitMQ) -> RabbitMQ:
    if not rabbitmq_broker.is_running():
        rabbitmq_broker.start()
    return rabbitmq_broker


@pytest.fixture
def mqtt_broker(rabbitmq: RabbitMQ) -> RabbitMQ:
    """Here the `publisher` publishes to RabbitMQ."""
    return rabbitmq


def test_mqtt5_to_rabbitmq_is_refused_and_the_log_says_what_to_set(
    rabbitmq: RabbitMQ, caplog: pytest.LogCaptureFixture
) -> None:
    # RabbitMQ 3.x cannot parse an MQTT 5 CONNECT and closes the connection without a
    # CONNACK; paho would retry silently for ever.
    transport = PahoTransport(
        MqttOptions(
            host=rabbitmq.host,
            port=rabbitmq.port,
            client_id=f"officegw-{uuid.uuid4().hex[:8]}",
            subscriptions=(f"{unique_prefix()}/#",),
            status_topic=f"officegw/gateway/{uuid.uuid4().hex[:8]}/availability",
            mqtt5=True,
            reconnect_min_delay=1,
            reconnect_max_delay=1,
        )
    )
    received: list[InboundMessage] = []
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        transport.start(received.append)
        try:
            wait_until(
                lambda: [r for r in caplog.records if "before answering CONNECT" in r.getMessage()],
                15,
                "the warning",
            )
        finally:
            transport.stop()
    assert not transport.connected
    (line,) = [r.getMessage() for r in caplog.records if "before answering CONNECT" in r.getMessage()]
    assert "protocol=5" in line and "mqtt.protocol" in line and "3.1.1" in line


def test_retained_messages_reach_exact_topic_subscriptions_only(
    rabbitmq: RabbitMQ, publisher: Publisher
) -> None:
    """RabbitMQ 3.x keeps one retained message per topic and sends it to a new
    subscription to that exact topic, never to one with a wildcard (mosquitto does both)."""
    prefix = unique_prefix()
    retained = f"{prefix}/hq/2/orion/orion-pir"
    inbox: queue.SimpleQueue[tuple[str, str, bool]] = queue.SimpleQueue()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = lambda _c, _u, m: inbox.put((m.topic, m.payload.decode(), bool(m.retain)))
    client.on_subscribe = lambda *_: subscribed.set()
    publisher.publish(retained, "kept", retain=True)
    client.connect(rabbitmq.host, rabbitmq.port)
    client.loop_start()
    try:
        client.subscribe([(f"{prefix}/#", 1)])
        assert subscribed.wait(5)
        publisher.publish(f"{prefix}/marker", "live")  # after anything sent on subscribing
        assert inbox.get(timeout=5) == (f"{prefix}/marker", "live", False)
        subscribed.clear()
        client.subscribe([(retained, 1)])
        assert subscribed.wait(5)
        assert inbox.get(timeout=5) == (retained, "kept", True)
    finally:
        client.loop_stop()
        client.disconnect()
        publisher.publish(retained, b"", retain=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    """Two RabbitMQ nodes joined into one cluster (~25 s to start on 2 cores)."""
    with RabbitCluster(2) as running:
        yield running
        pids = [running.epmd.pid, *(node.pid for node in running.nodes)]
    # Nothing of ours outlives the cluster: both nodes and their epmd are gone.
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_persistent_session_resumes_on_the_other_cluster_node(
    cluster: RabbitCluster, tmp_path: Path
) -> None:
    first, second = cluster.nodes
    assert cluster.running_nodes() == sorted(node.name for node in cluster.nodes)
    prefix = unique_prefix()
    config = {
        "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2, "type": "meeting"}]},
        "gateway": {"id": f"gw-{prefix}"},
        "mqtt": {"topic_prefix": prefix},
    }
    storage = tmp_path / "officegw.db"
    env = f"{prefix}/hq/2/orion/orion-env"
    gw = start_gateway(first, config, storage=storage)
    try:
        on_first = Publisher(first)
        on_first.publish(env, {"co2": 500})
        wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == 500, 5, "via the first node")
        on_first.close()
    finally:
        gw.stop()
    # Published to the other node while the gateway is away: the session's queue (a
    # durable classic queue on the first node) holds them for the cluster.
    on_second = Publisher(second)
    for co2 in range(600, 650):
        on_second.publish(env, {"co2": co2})
    on_second.close()
    gw = start_gateway(second, config, storage=storage)
    try:
        wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == 649, 10, "the last reading")
        assert gw.metric("officegw_messages_accepted_total") == 50
    finally:
        gw.stop()
