"""What the gateway subscribes to and where it says it is up, derived from the config."""

from __future__ import annotations

from devices.dialects.native import TopicKind
from gateway.config import Settings
from gateway.ingest.discovery import announcement_topics
from gateway.ingest.pipeline import Route, mapped_routes
from gateway.mqtt.paho_transport import MqttOptions
from gateway.shard_commands import command_filters


def status_topic(gateway_id: str) -> str:
    """Where the gateway says `online`/`offline` (retained, LWT); outside the device prefix."""
    return f"officegw/gateway/{gateway_id}/availability"


def clock_topic(gateway_id: str) -> str:
    """Where a gateway on device time says, after each tick, how far it got (QoS 0)."""
    return f"officegw/gateway/{gateway_id}/clock"


def event_topic(kind: str, building: str, room_id: str) -> str:
    """Where the gateway publishes an event of a room (DESIGN.md §2); outside the device prefix."""
    return f"officegw/events/{kind}/{building}/{room_id}"


def subscriptions(settings: Settings) -> tuple[str, ...]:
    """Native topics of the gateway's buildings, the exact topics of mapped devices and
    the announcement topics of discovery, and (`gateway.commands`) API replicas'
    commands for its buildings; discovered devices' topics are added at run time
    (gateway/ingest/discovery.py)."""
    prefix = settings.mqtt.topic_prefix
    buildings = settings.gateway.buildings
    native = [f"{prefix}/{b}/#" for b in buildings] if buildings else [f"{prefix}/#"]
    return (
        *native,
        *(topic for topic, route in routes(settings).items() if route.kind is not TopicKind.COMMAND),
        *announcement_topics(settings),
        *(command_filters(frozenset(buildings) or None) if settings.gateway.commands else ()),
    )


def routes(settings: Settings) -> dict[str, Route]:
    """Topics of devices the config maps to rooms (non-native dialects), in this shard."""
    building_of = {room.id: room.building for room in settings.site.rooms}
    shard = set(settings.gateway.buildings)
    devices = [d for d in settings.site.devices if not shard or building_of[d.room] in shard]
    return mapped_routes(
        ((d.id, d.room, d.topic, d.dialect) for d in devices),
        {d.id: d.channel for d in devices if d.channel is not None},
    )


def mqtt_options(settings: Settings) -> MqttOptions:
    """The broker connection of a gateway with these settings."""
    mqtt = settings.mqtt
    return MqttOptions(
        host=mqtt.host,
        port=mqtt.port,
        client_id=f"officegw-{settings.gateway.id}",
        subscriptions=subscriptions(settings),
        status_topic=status_topic(settings.gateway.id),
        mqtt5=mqtt.protocol == "5",
        username=mqtt.username,
        password=mqtt.password,
        keepalive=mqtt.keepalive,
        session_expiry=mqtt.session_expiry,
        reconnect_min_delay=mqtt.reconnect_min_delay,
        reconnect_max_delay=mqtt.reconnect_max_delay,
        # Acknowledged once the history writer committed what they carry.
        manual_ack=settings.storage.history,
        receive_maximum=mqtt.receive_maximum,
        fast_path=mqtt.fast_path,
        broker_stats=mqtt.broker_stats,
    )
