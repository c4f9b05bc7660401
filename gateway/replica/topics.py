"""What an API replica follows on the broker and how it connects, from the config."""

from __future__ import annotations

import socket

from gateway.config import Settings
from gateway.mqtt.paho_transport import MqttOptions
from gateway.replica.room_documents import STATE_FILTER
from gateway.runtime.room_state_publisher import state_topic
from gateway.shard_commands import BOOKINGS_CHANGED_FILTER, reply_filter


def replica_id(settings: Settings) -> str:
    """`replica.id`, else <host name>-<api.port>: stable across restarts, distinct per replica."""
    if settings.replica.id is not None:
        return settings.replica.id
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname()) or "host"
    return f"{host}-{settings.api.port}"


def replica_subscriptions(settings: Settings, name: str) -> tuple[str, ...]:
    """Every room's state (the wildcard), and the exact state topic of each room of the
    site config too: some brokers (RabbitMQ) hand retained messages only to a
    subscription naming the topic exactly, never to a wildcard. A broker may deliver a
    message matching both twice; taking a document twice changes nothing."""
    exact = (state_topic(room.building, room.floor, room.id) for room in settings.site.rooms)
    return (
        STATE_FILTER,
        *sorted({topic for topic in exact if topic is not None}),
        BOOKINGS_CHANGED_FILTER,
        reply_filter(name),
    )


def replica_mqtt_options(settings: Settings, name: str) -> MqttOptions:
    """The broker connection of a replica: no persistent session (it needs nothing the
    broker would queue: the retained states come again on every connect)."""
    mqtt = settings.mqtt
    return MqttOptions(
        host=mqtt.host,
        port=mqtt.port,
        client_id=f"officegw-api-{name}",
        subscriptions=replica_subscriptions(settings, name),
        status_topic=f"officegw/api/{name}/availability",
        mqtt5=mqtt.protocol == "5",
        username=mqtt.username,
        password=mqtt.password,
        keepalive=mqtt.keepalive,
        session_expiry=0,
        persistent_session=False,
        reconnect_min_delay=mqtt.reconnect_min_delay,
        reconnect_max_delay=mqtt.reconnect_max_delay,
        manual_ack=False,
        receive_maximum=mqtt.receive_maximum,
        fast_path=mqtt.fast_path,
        broker_stats=False,
    )
