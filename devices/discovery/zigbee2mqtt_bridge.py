"""Zigbee2MQTT's own device list: `<base>/bridge/devices` and `<base>/bridge/groups`.

Zigbee2MQTT publishes, retained, the whole list of its devices whenever one joins,
leaves, is renamed or finishes its interview: each with its IEEE address (which
never changes), its friendly name (the topic `<base>/<friendly name>`, which does)
and, when supported, a definition whose `exposes` say what the device reports and
takes. `bridge/groups` lists the groups and their members. This module reads both
into `AnnouncedDevice`s:

- the id is `z2m:<ieee address>`, so a rename keeps the device, its history and
  overrides; only its topics change;
- the kind comes from the composite exposes: `lock`, `climate` (hvac), `light`,
  `switch`; a device with none of them is a sensor. Capabilities are the exposed
  properties the vocabulary knows (`occupancy`, `presence`, `contact`,
  `illuminance`/`illuminance_lux`, `temperature`, `humidity`, `co2`, `battery`,
  `power`, `energy`, and `state`/`brightness` of a light, switch or lock);
- thermostats expose their own names (`local_temperature`,
  `occupied_heating_setpoint` or `current_heating_setpoint`, `system_mode`): they
  are read as `temperature`, `setpoint` and `mode`, and commands are written back
  under the device's own names;
- the coordinator and disabled devices are skipped; a device Zigbee2MQTT does not
  support (no definition) is mapped as a sensor, its payloads read like any other;
  features of a second endpoint (`state_l2`) are reported as not mapped, since a
  device has one state in the vocabulary.

Payloads, availability and commands are the `zigbee2mqtt` dialect's
(devices/dialects/zigbee2mqtt.py). Placement in rooms is `placement.py`'s.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from devices.dialects import zigbee2mqtt
from devices.dialects.base import DecodeError, Dialect
from devices.dialects.native import decode_translated
from devices.discovery.model import (
    AnnouncedDevice,
    Commander,
    PlacementHints,
    Problem,
    TopicRoute,
    device_id,
    kind_of,
)
from devices.fields import DevicePayload, RejectReason

__all__ = ["BridgeDevice", "announce", "device_id_of", "parse_devices", "parse_groups"]

SOURCE = "zigbee2mqtt"
ID_PREFIX = "z2m"

# Exposed property -> the vocabulary fields it gives.
_FIELDS_OF_PROPERTY: Mapping[str, tuple[str, ...]] = {
    "occupancy": ("occupancy",),
    "presence": ("occupancy", "presence"),
    "contact": ("contact",),
    "illuminance": ("illuminance",),
    "illuminance_lux": ("illuminance",),
    "temperature": ("temperature",),
    "humidity": ("humidity",),
    "co2": ("co2",),
    "battery": ("battery",),
    "power": ("power",),
    "energy": ("energy",),
}
_KIND_OF_TYPE = {"light": "light", "switch": "switch", "lock": "lock", "climate": "hvac"}
# A thermostat's own property names -> the vocabulary's.
_CLIMATE_RENAMES = {
    "local_temperature": "temperature",
    "occupied_heating_setpoint": "setpoint",
    "current_heating_setpoint": "setpoint",
    "system_mode": "mode",
}
_MODES = {"off": "off", "heat": "heat", "cool": "cool", "auto": "auto", "fan_only": "fan", "eco": "eco"}


@dataclass(frozen=True, slots=True)
class BridgeDevice:
    """One entry of `bridge/devices` (the raw entry kept for its fingerprint)."""

    ieee: str
    friendly_name: str
    entry: Mapping[str, Any]


def _load(payload: bytes, what: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(RejectReason.INVALID_JSON, f"{what}: {exc}") from None


def parse_devices(payload: bytes) -> tuple[list[BridgeDevice], list[str]]:
    """The devices of a `bridge/devices` message that can be mapped, and a note on
    each entry that was skipped (the coordinator, disabled devices, unusable entries).
    Raises DecodeError when the message is not a JSON array."""
    raw = _load(payload, "bridge/devices")
    if not isinstance(raw, list):
        raise DecodeError(RejectReason.INVALID_TYPE, "bridge/devices is not a JSON array")
    devices: list[BridgeDevice] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            skipped.append(f"entry {index}: not an object")
            continue
        ieee, name = entry.get("ieee_address"), entry.get("friendly_name")
        if not isinstance(ieee, str) or not ieee or not isinstance(name, str):
            skipped.append(f"entry {index}: no ieee_address or friendly_name")
            continue
        if entry.get("type") == "Coordinator":
            continue
        if entry.get("disabled") is True:
            skipped.append(f"{name}: disabled in Zigbee2MQTT")
            continue
        problem = _name_problem(name)
        if problem is not None:
            skipped.append(f"{name[:80]!r}: {problem}")
            continue
        if ieee in seen:
            skipped.append(f"{name}: {ieee} listed twice")
            continue
        seen.add(ieee)
        devices.append(BridgeDevice(ieee, name, entry))
    return devices, skipped


def _name_problem(name: str) -> str | None:
    if not name or len(name) > 200:
        return "friendly name empty or longer than 200 characters"
    if "+" in name or "#" in name or "\x00" in name:
        return "friendly name holds an MQTT wildcard"
    if name.startswith("/") or name.endswith("/") or "//" in name or name.split("/")[0] == "bridge":
        return "friendly name is not a usable topic"
    return None


def parse_groups(payload: bytes) -> dict[str, tuple[str, ...]]:
    """IEEE address -> the friendly names of the groups the device is a member of."""
    raw = _load(payload, "bridge/groups")
    if not isinstance(raw, list):
        raise DecodeError(RejectReason.INVALID_TYPE, "bridge/groups is not a JSON array")
    groups: dict[str, list[str]] = {}
    for group in raw:
        if not isinstance(group, dict) or not isinstance(group.get("friendly_name"), str):
            continue
        members = group.get("members")
        for member in members if isinstance(members, list) else ():
            ieee = member.get("ieee_address") if isinstance(member, dict) else None
            if isinstance(ieee, str):
                names = groups.setdefault(ieee, [])
                if group["friendly_name"] not in names:
                    names.append(group["friendly_name"])
    return {ieee: tuple(names) for ieee, names in groups.items()}


@dataclass(slots=True)
class _Exposed:
    kinds: set[str]
    capabilities: set[str]
    renames: dict[str, str]
    problems: list[Problem]
    ignored: list[str]


def _features(expose: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A composite's features; the first Zigbee2MQTT API listed them as bare names."""
    features = expose.get("features")
    found: list[Mapping[str, Any]] = []
    for feature in features if isinstance(features, list) else ():
        if isinstance(feature, str):
            found.append({"name": feature, "property": feature})
        elif isinstance(feature, dict):
            found.append(feature)
    return found


def describe_exposes(name: str, exposes: Any) -> _Exposed:
    """Kind, capabilities and thermostat renames from a definition's `exposes`."""
    exposed = _Exposed(set(), set(), {}, [], [])
    for expose in exposes if isinstance(exposes, list) else ():
        if not isinstance(expose, dict):
            continue
        kind_type = expose.get("type")
        if kind_type in _KIND_OF_TYPE:
            _composite(name, str(kind_type), expose, exposed)
        elif kind_type in ("cover", "fan"):
            exposed.ignored.append(f"{kind_type}: not in the vocabulary")
        else:
            prop = expose.get("property") or expose.get("name")
            if isinstance(prop, str) and prop in _FIELDS_OF_PROPERTY:
                if expose.get("endpoint") is not None:
                    exposed.ignored.append(f"{prop} of endpoint {expose['endpoint']}: not mapped")
                else:
                    exposed.capabilities.update(_FIELDS_OF_PROPERTY[prop])
    return exposed


def _composite(name: str, kind_type: str, expose: Mapping[str, Any], exposed: _Exposed) -> None:
    kind = _KIND_OF_TYPE[kind_type]
    features = _features(expose)
    if kind in exposed.kinds:
        # A second light, switch or lock (another endpoint): a device has one state.
        where = f" of endpoint {expose['endpoint']}" if expose.get("endpoint") is not None else ""
        exposed.problems.append(Problem(name, f"{kind_type}{where}", "a second one: a device has one state"))
        return
    exposed.kinds.add(kind)
    if kind == "hvac":
        for feature in features:
            prop = feature.get("property") or feature.get("name")
            if isinstance(prop, str) and prop in _CLIMATE_RENAMES:
                target = _CLIMATE_RENAMES[prop]
                if target not in exposed.renames.values():
                    exposed.renames[prop] = target
                    exposed.capabilities.add(target)
        return
    for feature in features:
        feature_name = feature.get("name")
        prop = feature.get("property") or feature_name
        if feature_name == "state" or (kind == "lock" and feature_name == "lock_state"):
            if prop not in ("state", "lock_state"):
                # An endpoint's own property (state_l1) is not the vocabulary's `state`.
                exposed.problems.append(
                    Problem(name, f"{kind_type} {prop}", "an endpoint's own property: not mapped")
                )
                continue
            exposed.capabilities.add("state")
        elif feature_name == "brightness" and kind == "light" and prop == "brightness":
            exposed.capabilities.add("brightness")


def device_id_of(ieee: str) -> str:
    """The id of the device with this IEEE address."""
    return device_id(ID_PREFIX, ieee)


def announce(base: str, device: BridgeDevice, groups: tuple[str, ...] = ()) -> AnnouncedDevice:
    """The device that a `bridge/devices` entry describes, on the base topic `base`."""
    entry = device.entry
    topic = f"{base}/{device.friendly_name}"
    definition = entry.get("definition")
    exposed = describe_exposes(
        device.friendly_name, definition.get("exposes") if isinstance(definition, dict) else None
    )
    if not isinstance(definition, dict):
        exposed.ignored.append("no definition (not supported by Zigbee2MQTT): payloads read as they come")
    elif entry.get("supported") is False:
        exposed.ignored.append("marked unsupported by Zigbee2MQTT")
    renames = dict(exposed.renames)
    dialect, commander = _dialect_for(topic, renames)
    fingerprint = f"{zlib.crc32(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)):08x}:{'|'.join(groups)}"
    return AnnouncedDevice(
        id=device_id_of(device.ieee),
        source=SOURCE,
        dialect=zigbee2mqtt.DIALECT.name,
        name=device.friendly_name,
        topic=topic,
        kind=kind_of(exposed.kinds),
        capabilities=frozenset(exposed.capabilities),
        routes=tuple(TopicRoute(t, kind, dialect) for t, kind in dialect.routes(topic).items()),
        hints=PlacementHints(device.friendly_name, (device.ieee,), groups),
        fingerprint=fingerprint,
        commander=commander,
        power_source=_power_source(entry.get("power_source")),
        problems=tuple(exposed.problems),
        ignored=tuple(exposed.ignored),
    )


def _power_source(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    if text.lower() == "battery":
        return "battery"
    if text.lower().startswith(("mains", "dc")):
        return "mains"
    return None


def _dialect_for(topic: str, renames: dict[str, str]) -> tuple[Dialect, Commander | None]:
    """The zigbee2mqtt dialect, or for a thermostat one that also reads and writes its
    own property names."""
    if not renames:
        return zigbee2mqtt.DIALECT, None
    back = {target: prop for prop, target in renames.items()}

    def translate(raw: dict[str, Any]) -> dict[str, Any]:
        fields = dict(raw)
        for prop, target in renames.items():
            if prop in fields:
                value = fields.pop(prop)
                if target == "mode":
                    value = _MODES.get(value) if isinstance(value, str) else None
                if value is not None:
                    fields[target] = value
        return zigbee2mqtt.translate(fields)

    def decode_state(payload: bytes) -> DevicePayload:
        return decode_translated(payload, translate)

    def command(
        device_topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
    ) -> list[tuple[str, bytes]]:
        body: dict[str, Any] = {}
        for key, value in payload.items():
            if key == "mode":
                value = {"fan": "fan_only"}.get(value, value)
            body[back.get(key, key)] = value
        return [(f"{device_topic}/set", orjson.dumps(body))]

    dialect = Dialect(
        zigbee2mqtt.DIALECT.name,
        zigbee2mqtt.DIALECT.routes,
        decode_state,
        zigbee2mqtt.DIALECT.decode_availability,
        command,
    )
    return dialect, lambda payload: command(topic, payload)
