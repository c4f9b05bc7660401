"""PahoTransport and the broker's $SYS topics, driven through its paho callbacks
without a network: $SYS messages never reach the message handler, a refused or
connection-closing $SYS subscription is given up quietly; `receiving` (readiness)
waits for the broker to acknowledge the subscriptions a connection opened with."""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gateway.mqtt import broker_stats
from gateway.mqtt.paho_transport import (
    BROKER_STATS_MAX_CLOSES,
    CONNECT_MAX_CLOSES,
    SUBSCRIBE_CHUNK,
    MqttOptions,
    PahoTransport,
)
from gateway.mqtt.transport import InboundMessage


def options(**changes: Any) -> MqttOptions:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 1,
        "client_id": "officegw-unit",
        "subscriptions": ("office/#",),
        "status_topic": "officegw/gateway/unit/availability",
    }
    return MqttOptions(**(base | changes))


class RecordingClient:
    """Stands in for paho's client in `_handle_connect`: records what it is asked."""

    def __init__(self) -> None:
        self.subscribed: list[list[tuple[str, int]]] = []
        self._mid = 0

    def subscribe(self, topics: list[tuple[str, int]]) -> tuple[int, int]:
        self.subscribed.append(topics)
        self._mid += 1
        return 0, self._mid

    def publish(self, *args: Any, **kwargs: Any) -> None:
        pass


def message(topic: str, payload: bytes, qos: int = 0) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=0, topic=topic.encode())
    m.payload = payload
    m.qos = qos
    return m


def transport_receiving(opts: MqttOptions) -> tuple[PahoTransport, list[InboundMessage]]:
    transport = PahoTransport(opts)
    received: list[InboundMessage] = []
    transport._on_message = received.append
    return transport, received


def connect(transport: PahoTransport, client: RecordingClient) -> None:
    transport._handle_connect(
        client,
        None,
        mqtt.ConnectFlags(session_present=False),
        ReasonCode(PacketTypes.CONNACK, "Success"),
        None,
    )


def disconnect(transport: PahoTransport) -> None:
    transport._handle_disconnect(
        None,
        None,
        mqtt.DisconnectFlags(is_disconnect_packet_from_server=False),
        ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"),
        None,
    )


def test_sys_messages_feed_the_counters_not_the_handler() -> None:
    transport, received = transport_receiving(options())
    transport._handle_message(None, None, message(broker_stats.UPTIME_TOPIC, b"12 seconds"))
    transport._handle_message(None, None, message(broker_stats.DROPPED_TOPIC, b"7"))
    transport._handle_message(None, None, message("office/hq/2/orion/pir", b"{}", qos=1))
    assert [m.topic for m in received] == ["office/hq/2/orion/pir"]
    stats = transport.broker_stats()
    assert stats is not None and (stats.uptime, stats.dropped) == (12, 7)


def test_with_broker_stats_off_sys_messages_are_still_not_device_messages() -> None:
    # A persistent session may still hold the $SYS subscription of an earlier run.
    transport, received = transport_receiving(options(broker_stats=False))
    transport._handle_message(None, None, message(broker_stats.DROPPED_TOPIC, b"7"))
    assert received == []
    assert transport.broker_stats() is None


def test_subscribes_to_the_sys_topics_at_qos_0_after_the_device_topics() -> None:
    transport = PahoTransport(options())
    client = RecordingClient()
    connect(transport, client)
    assert client.subscribed == [[("office/#", 1)], [(topic, 0) for topic in broker_stats.TOPICS]]


def test_no_sys_subscription_with_broker_stats_off() -> None:
    transport = PahoTransport(options(broker_stats=False))
    client = RecordingClient()
    connect(transport, client)
    assert client.subscribed == [[("office/#", 1)]]


def test_a_refused_subscription_is_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    transport = PahoTransport(options())
    client = RecordingClient()
    refused = [ReasonCode(PacketTypes.SUBACK, "Not authorized")] * len(broker_stats.TOPICS)
    with caplog.at_level(logging.DEBUG, logger="officegw.mqtt"):
        for _ in range(3):
            connect(transport, client)
            transport._handle_subscribe(client, None, client._mid, refused, None)
    said = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert said[0].getMessage().startswith("broker stats: subscription refused topics=$SYS/broker/uptime,")


def test_a_broker_that_closes_the_connection_on_the_sys_subscription_is_not_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = PahoTransport(options())
    client = RecordingClient()
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        for _ in range(BROKER_STATS_MAX_CLOSES):
            connect(transport, client)
            disconnect(transport)  # before the SUBACK
        connect(transport, client)
        connect(transport, client)
    sys_subscriptions = [s for s in client.subscribed if s[0][0].startswith("$SYS/")]
    assert len(sys_subscriptions) == BROKER_STATS_MAX_CLOSES
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line.startswith("broker stats off: the broker closed the connection after the $SYS subscription")
    assert "mqtt.broker_stats: false" in line


def test_one_unlucky_close_does_not_turn_it_off() -> None:
    transport = PahoTransport(options())
    client = RecordingClient()
    granted = [ReasonCode(PacketTypes.SUBACK, "Granted QoS 0")] * len(broker_stats.TOPICS)
    for _ in range(3):
        connect(transport, client)
        disconnect(transport)  # e.g. the broker restarting just then
        connect(transport, client)
        transport._handle_subscribe(client, None, client._mid, granted, None)
        disconnect(transport)
    transport.stop()
    assert len([s for s in client.subscribed if s[0][0].startswith("$SYS/")]) == 6


def closed_before_connack(transport: PahoTransport, times: int) -> None:
    for _ in range(times):
        disconnect(transport)  # no on_connect before it: the broker never answered


@pytest.mark.parametrize(
    ("mqtt5", "hint"),
    [
        (True, "MQTT 3.1.1 only (RabbitMQ 3.x) does this to MQTT 5: set mqtt.protocol"),
        (False, "see the broker's log"),
    ],
    ids=["mqtt5", "mqtt311"],
)
def test_a_broker_closing_before_connack_is_explained_once_a_streak(
    caplog: pytest.LogCaptureFixture, mqtt5: bool, hint: str
) -> None:
    transport = PahoTransport(options(mqtt5=mqtt5))
    transport._started = True  # as after start(), without a network
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        closed_before_connack(transport, CONNECT_MAX_CLOSES + 5)
        connect(transport, RecordingClient())  # a streak ends with an accepted connect
        disconnect(transport)
        closed_before_connack(transport, CONNECT_MAX_CLOSES)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    explained = [line for line in lines if line.startswith("mqtt broker closed the connection before")]
    assert len(explained) == 2
    assert all(hint in line for line in explained)


def test_one_close_before_connack_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    transport = PahoTransport(options())
    transport._started = True
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        closed_before_connack(transport, CONNECT_MAX_CLOSES - 1)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


GRANTED_QOS_1 = [ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")]


def subacked(transport: PahoTransport, client: RecordingClient, mid: int, codes: list[ReasonCode]) -> None:
    transport._handle_subscribe(client, None, mid, codes, None)


def test_receiving_waits_for_the_suback_of_the_device_topics() -> None:
    # RabbitMQ binds a subscription only when it handles the SUBSCRIBE: a reading
    # published between CONNACK and SUBACK never reaches a first-time session.
    transport = PahoTransport(options(broker_stats=False))
    client = RecordingClient()
    connect(transport, client)
    assert transport.connected and not transport.receiving
    subacked(transport, client, client._mid, GRANTED_QOS_1)
    assert transport.receiving


def test_the_sys_subscription_is_not_waited_for() -> None:
    transport = PahoTransport(options())
    client = RecordingClient()
    connect(transport, client)
    device_topics_mid = 1  # sent first; the $SYS topics' SUBSCRIBE may never be answered
    subacked(transport, client, device_topics_mid, GRANTED_QOS_1)
    assert transport.receiving


def test_a_refused_subscription_is_an_answer_too() -> None:
    transport = PahoTransport(options(broker_stats=False))
    client = RecordingClient()
    connect(transport, client)
    subacked(transport, client, client._mid, [ReasonCode(PacketTypes.SUBACK, "Not authorized")])
    assert transport.receiving


def test_every_chunk_of_a_large_site_is_waited_for() -> None:
    topics = tuple(f"office/hq/1/r{i}/+" for i in range(SUBSCRIBE_CHUNK + 1))
    transport = PahoTransport(options(subscriptions=topics, broker_stats=False))
    client = RecordingClient()
    connect(transport, client)
    assert len(client.subscribed) == 2
    subacked(transport, client, 2, GRANTED_QOS_1)
    assert not transport.receiving
    subacked(transport, client, 1, GRANTED_QOS_1)
    assert transport.receiving


def test_a_discovered_device_does_not_take_readiness_away() -> None:
    transport = PahoTransport(options(broker_stats=False))
    client = RecordingClient()
    transport._client = client  # type: ignore[assignment]
    connect(transport, client)
    subacked(transport, client, client._mid, GRANTED_QOS_1)
    transport.subscribe(["zigbee2mqtt/desk-lamp"])
    assert transport.subscriptions_pending() == 1
    assert transport.receiving


def test_each_connection_waits_for_its_own_subacks() -> None:
    transport = PahoTransport(options(broker_stats=False))
    client = RecordingClient()
    connect(transport, client)
    subacked(transport, client, client._mid, GRANTED_QOS_1)
    disconnect(transport)
    assert not transport.receiving
    connect(transport, client)
    assert not transport.receiving
    subacked(transport, client, client._mid - 1, GRANTED_QOS_1)  # the last connection's: stale
    assert not transport.receiving
    subacked(transport, client, client._mid, GRANTED_QOS_1)
    assert transport.receiving
