"""The composition root: the one place that builds a gateway with its MQTT transport
and the HTTP app around it. `officegw run`, the demo and the integration tests use it."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.replica.app import create_replica_app
from api.room_documents import RoomDocuments
from gateway.clock import Clock
from gateway.config import Settings
from gateway.mqtt.paho_transport import PahoTransport
from gateway.replica.replica import Replica
from gateway.replica.stores import open_replica_stores
from gateway.replica.topics import replica_id, replica_mqtt_options
from gateway.runtime.gateway import Gateway
from gateway.runtime.shard_role import ShardRole
from gateway.runtime.topics import mqtt_options


def build_gateway(
    settings: Settings,
    *,
    clock: Clock | None = None,
    manage_gc: bool = False,
    room_documents: RoomDocuments | None = None,
    shard: ShardRole | None = None,
) -> Gateway:
    """A gateway talking to the broker of `settings.mqtt`.

    `manage_gc` is for a process that runs nothing else (`officegw run`, the demo):
    see `gateway.runtime.gc_schedule.FullCollections`. `room_documents`: the kept
    room documents the gateway's state publisher renders through (pass the same to
    `create_app`, so the API answers from them). `shard`: the role of a gateway that
    holds its shard's lock (gateway/cli/shard.py).
    """
    return Gateway(
        settings,
        transport=PahoTransport(mqtt_options(settings)),
        clock=clock,
        manage_gc=manage_gc,
        # Room states on MQTT and in the stream are the JSON of GET /v1/rooms/{id},
        # rendered once per change for both.
        room_status=(room_documents or RoomDocuments()).render,
        shard=shard,
    )


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    manage_gc: bool = False,
    shard: ShardRole | None = None,
) -> FastAPI:
    """The HTTP API around a new gateway; the gateway runs for as long as the app's lifespan."""
    documents = RoomDocuments()
    gateway = build_gateway(settings, clock=clock, manage_gc=manage_gc, room_documents=documents, shard=shard)
    return create_app(settings, gateway, room_documents=documents)


def build_replica(settings: Settings, *, source: str = "config") -> Replica:
    """An API replica talking to the broker of `settings.mqtt` and reading the shared
    store; a ConfigError when the store is not there."""
    name = replica_id(settings)
    return Replica(
        settings,
        transport=PahoTransport(replica_mqtt_options(settings, name)),
        stores=open_replica_stores(settings, source),
        name=name,
    )


def build_replica_app(settings: Settings, *, source: str = "config") -> FastAPI:
    """`officegw api`: the HTTP API of a new replica, running for as long as the app's lifespan."""
    return create_replica_app(settings, build_replica(settings, source=source))
