"""A discovered device from its entities: routes with their decoders, the device's
kind and capabilities, and the commands it takes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from devices.dialects.base import TopicKind
from devices.discovery.homeassistant.entities import Commands, Entity
from devices.discovery.homeassistant.values import (
    SOURCE,
    Reading,
    availability_decoder,
    route_dialect,
    state_decoder,
)
from devices.discovery.model import (
    AnnouncedDevice,
    Commander,
    PlacementHints,
    Problem,
    TopicRoute,
    device_id,
    kind_of,
)

ID_PREFIX = "ha"


def device_id_of(key: str) -> str:
    """The id of the device whose announcements share the device key `key`."""
    return device_id(ID_PREFIX, key)


_NATIVE_TO_HA_MODE = {"off": "off", "heat": "heat", "cool": "cool", "auto": "auto", "fan": "fan_only"}


def assemble(key: str, entities: list[Entity]) -> AnnouncedDevice:
    """The device whose entities these are (sorted by key, so the result does not
    depend on the order announcements came in); without routes when nothing of it
    can be read (its problems still say why)."""
    entities = sorted(entities, key=lambda entity: entity.key)
    taken: dict[str, str] = {}
    problems: list[Problem] = []
    ignored: list[str] = []
    by_topic: dict[str, list[Reading]] = {}
    kinds: set[str] = set()
    owner_of_state: Entity | None = None
    climate: Entity | None = None
    for entity in entities:
        problems.extend(entity.problems)
        ignored.extend(entity.ignored)
        if entity.kind in ("light", "switch", "lock"):
            if owner_of_state is not None:
                problems.append(
                    Problem(
                        entity.label,
                        entity.component,
                        f"{owner_of_state.label} is the device's state already: not mapped",
                    )
                )
                continue
            owner_of_state = entity
            kinds.add(entity.kind)
        elif entity.kind == "hvac":
            if climate is not None:
                problems.append(Problem(entity.label, entity.component, "a second climate: not mapped"))
                continue
            climate = entity
            kinds.add("hvac")
        for reading in entity.readings:
            clash = next((taken[field] for field in reading.fields if field in taken), None)
            if clash is not None and clash != entity.label:
                problems.append(
                    Problem(
                        entity.label,
                        ",".join(reading.fields),
                        f"already read from entity {clash}: not mapped",
                    )
                )
                continue
            for field in reading.fields:
                taken[field] = entity.label
            by_topic.setdefault(reading.topic, []).append(reading)
    routes: list[TopicRoute] = [
        TopicRoute(topic, TopicKind.STATE, route_dialect(state=state_decoder(tuple(readings))))
        for topic, readings in by_topic.items()
    ]
    followed: set[str] = set(by_topic)
    for entity in entities:
        for entry in entity.availability:
            if entry.topic in followed:
                continue
            followed.add(entry.topic)
            dialect = route_dialect(availability=availability_decoder(entry))
            routes.append(TopicRoute(entry.topic, TopicKind.AVAILABILITY, dialect))
    first = entities[0]
    name = (
        next((entity.device_name for entity in entities if entity.device_name), None)
        or next((entity.name for entity in entities if entity.name), None)
        or first.label
    )
    area = next((entity.area for entity in entities if entity.area), None)
    commands = [e.commands for e in (owner_of_state, climate) if e is not None and e.commands is not None]
    capabilities = frozenset(taken) | (
        frozenset({"state"})
        if owner_of_state is not None and owner_of_state.commands is not None
        else frozenset()
    )
    main_topic = next(iter(by_topic), routes[0].topic if routes else "")
    return AnnouncedDevice(
        id=device_id_of(key),
        source=SOURCE,
        dialect=SOURCE,
        name=name,
        topic=main_topic,
        kind=kind_of(kinds),
        capabilities=capabilities,
        routes=tuple(routes),
        hints=PlacementHints(
            name, (key, *(e.label for e in entities), *(e.name for e in entities if e.name)), (), area
        ),
        fingerprint=",".join(f"{entity.key}={entity.digest:08x}" for entity in entities),
        commander=_commander(commands) if commands else None,
        problems=tuple(problems),
        ignored=tuple(ignored),
    )


def _payload(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def _commander(specs: list[Commands]) -> Commander:
    def command(payload: Mapping[str, Any]) -> list[tuple[str, bytes]]:
        messages: list[tuple[str, bytes]] = []
        state = payload.get("state")
        brightness = payload.get("brightness")
        for spec in specs:
            if spec.json_light is not None and (state in ("ON", "OFF") or isinstance(brightness, int)):
                topic, scale = spec.json_light
                body: dict[str, Any] = {}
                if state in ("ON", "OFF"):
                    body["state"] = state
                if isinstance(brightness, int):
                    body["brightness"] = round(brightness * scale / 254)
                messages.append((topic, orjson.dumps(body)))
            elif spec.state is not None and (
                state in ("ON", "OFF", "LOCK", "UNLOCK") or brightness is not None
            ):
                messages += _state_messages(spec, state, brightness)
            if spec.setpoint is not None and isinstance(payload.get("setpoint"), int | float):
                messages.append((spec.setpoint, _payload(payload["setpoint"])))
            if spec.mode is not None and payload.get("mode") in _NATIVE_TO_HA_MODE:
                messages.append((spec.mode, _payload(_NATIVE_TO_HA_MODE[payload["mode"]])))
        return messages

    return command


def _state_messages(spec: Commands, state: Any, brightness: Any) -> list[tuple[str, bytes]]:
    assert spec.state is not None
    topic, on, off = spec.state
    if spec.lock:
        if state == "LOCK":
            return [(topic, _payload(on))]
        if state == "UNLOCK":
            return [(topic, _payload(off))]
        return []
    if state == "OFF":
        return [(topic, _payload(off))]
    messages: list[tuple[str, bytes]] = []
    if isinstance(brightness, int) and spec.brightness is not None:
        bright_topic, scale = spec.brightness
        level = (bright_topic, _payload(round(brightness * scale / 254)))
        if spec.on_command_type == "brightness":
            return [level]
        if spec.on_command_type == "first":
            return [(topic, _payload(on)), level]
        messages.append(level)
    if state == "ON":
        messages.append((topic, _payload(on)))
    return messages
