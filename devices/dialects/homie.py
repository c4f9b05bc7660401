"""The Homie 5 dialect: `homie/5/<device-id>/...`, one plain-text value per topic.

A device is mapped by its base topic (`dialect: homie, topic: homie/5/desk-lamp`):

- `<base>/$state` (retained; the device's last will is `lost`): availability.
  `ready` and `sleeping` are online (a sleeping battery device is not gone; the
  last-seen timeout still catches one that never wakes), `disconnected` and `lost`
  offline, and an empty payload (the device was removed) offline too. `init` changes
  nothing: the device is on its way to `ready`, or is reconfiguring while up.
- `<base>/$description` (retained JSON: `nodes` -> `properties` with `datatype`,
  `unit`, `format`): remembered per device to read units (°F, K, Wh, kW), the
  scale of a brightness and what `true` means for a door. Optional: without it
  the conventions below apply. Empty (device removed): forgotten.
- `<base>/<node>/<property>`: the value as text (`true`, `21.5`, `on`). An empty
  payload clears a retained value and says nothing about the device: ignored.

**Routing.** Each topic carries one field, named by the topic, and node ids are
the device's own choice, so the topics cannot be listed from the config. The
dialect routes the filter `<base>/+/+` (subscribed as it is; the gateway matches
it only after exact topics and the native cache miss, so their hot path is
unchanged) and decodes through `Dialect.decode_topic(memory, suffix, payload)`,
where `suffix` is `<node>/<property>` or `$description` and `memory` is where the
device's description is kept. `/set`, `$target` and `$log` have other depths and
are not subscribed; `$alert/<id>` matches the filter and is ignored.

**Properties** are known by their id; a profile-style `value` property by its
node id (`<base>/temperature/value`). Unknown ones are ignored, malformed values
of known ones rejected:

| property ids | field |
|---|---|
| `motion`, `occupancy`, `occupied` | `occupancy` |
| `presence` | `occupancy` and `presence` (a radar's hold, as for Zigbee2MQTT) |
| `people`, `people-count`, `occupants` | `people` |
| `temperature` | `temperature` (°C; °F and K converted) |
| `humidity`, `relative-humidity` | `humidity` |
| `co2`, `carbon-dioxide` | `co2` |
| `illuminance`, `light-level`, `lux`, `ambient-light` | `illuminance` |
| `contact` | `contact`: `true` = closed (contact made), as in the vocabulary |
| `door`, `window`, `open` | `contact`: `true` = open, so inverted |
| `battery`, `battery-level` | `battery` |
| `on`, `state`, `switch` | `state` ON/OFF (`true`/`false`, or an `on`/`off` enum) |
| `power` | `state` when boolean (Homie's own example lamp), else `power` W (kW converted) |
| `active-power` | `power` |
| `energy`, `total-energy` | `energy` kWh (Wh converted) |
| `brightness`, `dimmer`, `level`, `intensity` | `brightness` 0-254, from % (or the `format` range) |
| `locked` | `state` LOCK/UNLOCK |

A brightness is a percentage unless the description gives a `format` range
(`0:255`) and no `%` unit. A boolean's `format` (`false-label,true-label`, e.g.
`closed,open`) overrides the door polarity when its labels say which is open.

**Commands** follow a convention, since `command()` sees only the base topic: a
light is node `light` with properties `on` (boolean) and `brightness` (integer %),
a lock is node `lock` with property `locked`. `{"state": "ON", "brightness": 127}`
becomes `true` on `<base>/light/on/set` and `50` on `<base>/light/brightness/set`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from devices.dialects.base import DecodeError, Dialect, TopicKind
from devices.dialects.native import decode_error
from devices.fields import MAX_PAYLOAD_BYTES, DevicePayload, RejectReason

__all__ = ["DIALECT", "command", "decode_availability", "decode_state", "decode_topic", "routes"]

LIGHT_NODE = "light"
LOCK_NODE = "lock"

_STATES: dict[bytes, bool | None] = {
    b"ready": True,
    b"sleeping": True,
    b"disconnected": False,
    b"lost": False,
    b"": False,  # the device was removed
    b"init": None,
}

# Property id -> how it is read (a field of the vocabulary, or a rule named here).
_KINDS = {
    "motion": "occupancy",
    "occupancy": "occupancy",
    "occupied": "occupancy",
    "presence": "presence",
    "people": "people",
    "people-count": "people",
    "occupants": "people",
    "temperature": "temperature",
    "humidity": "humidity",
    "relative-humidity": "humidity",
    "co2": "co2",
    "carbon-dioxide": "co2",
    "illuminance": "illuminance",
    "light-level": "illuminance",
    "lux": "illuminance",
    "ambient-light": "illuminance",
    "contact": "contact",
    "door": "opening",
    "window": "opening",
    "open": "opening",
    "battery": "battery",
    "battery-level": "battery",
    "on": "state",
    "state": "state",
    "switch": "state",
    "power": "power",
    "active-power": "power",
    "energy": "energy",
    "total-energy": "energy",
    "brightness": "brightness",
    "dimmer": "brightness",
    "level": "brightness",
    "intensity": "brightness",
    "locked": "locked",
}
_OPEN_LABELS = frozenset({"open", "opened"})
_CLOSED_LABELS = frozenset({"closed", "close", "shut"})
# Homie's float syntax: no spaces, no NaN or Infinity, one decimal dot, an optional exponent.
_FLOAT = re.compile(rb"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(rb"-?\d+")


@dataclass(frozen=True, slots=True)
class PropertyInfo:
    """What a device's `$description` says about one of its properties."""

    datatype: str | None = None
    unit: str | None = None
    format: str | None = None


_UNDESCRIBED = PropertyInfo()


def routes(topic: str) -> dict[str, TopicKind]:
    # `$description` before the filter: the broker sends retained messages in
    # subscription order, so the description is known before the first value.
    return {
        f"{topic}/$state": TopicKind.AVAILABILITY,
        f"{topic}/$description": TopicKind.STATE,
        f"{topic}/+/+": TopicKind.STATE,
    }


def decode_availability(payload: bytes) -> bool | None:
    value = payload.strip()
    if value not in _STATES:
        raise DecodeError(
            RejectReason.INVALID_AVAILABILITY,
            f"expected init/ready/disconnected/sleeping/lost, got {payload[:40]!r}",
        )
    return _STATES[value]


def decode_state(payload: bytes) -> DevicePayload:
    """Never used: a Homie payload means nothing without its topic (see `decode_topic`)."""
    raise DecodeError(RejectReason.UNKNOWN_TOPIC, "Homie values are decoded by topic")


def decode_topic(memory: MutableMapping[str, Any], suffix: str, payload: bytes) -> DevicePayload | None:
    """`suffix` is `$description` or `<node>/<property>`; None when there is nothing to apply."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    if suffix == "$description":
        memory["properties"] = parse_description(payload)
        return None
    node, _, prop = suffix.partition("/")
    if not payload or node.startswith("$") or prop.startswith("$"):
        return None  # a cleared retained value, or an attribute ($alert/<id>)
    kind = _KINDS.get(prop) or (_KINDS.get(node) if prop == "value" else None)
    if kind is None:
        return None
    described: Mapping[tuple[str, str], PropertyInfo] = memory.get("properties", {})
    fields = translate(kind, prop, payload.strip(), described.get((node, prop), _UNDESCRIBED))
    try:
        return DevicePayload.model_validate(fields)
    except ValidationError as exc:
        raise decode_error(exc) from None


def parse_description(payload: bytes) -> dict[tuple[str, str], PropertyInfo]:
    """(node, property) -> what the description says; parts that are not objects are skipped."""
    if not payload:
        return {}
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(RejectReason.INVALID_JSON, f"$description: {exc}") from None
    if not isinstance(raw, dict):
        raise DecodeError(RejectReason.NOT_AN_OBJECT, "$description is not a JSON object")
    described: dict[tuple[str, str], PropertyInfo] = {}
    nodes = raw.get("nodes")
    for node_id, node in (nodes or {}).items() if isinstance(nodes, dict) else ():
        properties = node.get("properties") if isinstance(node, dict) else None
        for prop_id, prop in (properties or {}).items() if isinstance(properties, dict) else ():
            if isinstance(prop, dict):
                described[node_id, prop_id] = PropertyInfo(
                    *(_text(prop.get(key)) for key in ("datatype", "unit", "format"))
                )
    return described


def translate(kind: str, prop: str, text: bytes, info: PropertyInfo) -> dict[str, Any]:
    """One property value in the native vocabulary; the ranges are checked by `DevicePayload`."""
    if kind == "occupancy":
        return {"occupancy": _boolean(prop, text)}
    if kind == "presence":
        present = _boolean(prop, text)
        return {"occupancy": present, "presence": present}
    if kind in ("contact", "opening"):
        true_means_open = door_polarity(info)
        if true_means_open is None:
            true_means_open = kind == "opening"
        return {"contact": _boolean(prop, text) != true_means_open}
    if kind == "state" or (kind == "power" and (info.datatype == "boolean" or text in (b"true", b"false"))):
        return {"state": "ON" if _switch(prop, text) else "OFF"}
    if kind == "locked":
        return {"state": "LOCK" if _boolean(prop, text) else "UNLOCK"}
    if kind == "people":
        if not _INTEGER.fullmatch(text):
            raise DecodeError(RejectReason.INVALID_TYPE, f"{prop}: expected an integer, got {text[:40]!r}")
        return {"people": int(text)}
    value = _number(prop, text)
    if kind == "brightness":
        return {"brightness": round(value * 254 / _brightness_scale(info))}
    if kind == "power":
        return {"power": value * 1000 if info.unit == "kW" else value}
    if kind == "temperature":
        if info.unit in ("°F", "F"):
            value = (value - 32) * 5 / 9
        elif info.unit == "K":
            value -= 273.15
        return {"temperature": round(value, 2)}
    if kind == "energy" and info.unit == "Wh":
        value /= 1000
    return {kind: value}  # humidity, co2, illuminance, battery, energy: the field's own name


def _boolean(prop: str, text: bytes) -> bool:
    if text == b"true":
        return True
    if text == b"false":
        return False
    raise DecodeError(RejectReason.INVALID_TYPE, f"{prop}: expected true/false, got {text[:40]!r}")


def _switch(prop: str, text: bytes) -> bool:
    """A switch state: a Homie boolean, or an enum such as `on,off`."""
    word = text.lower()
    if word in (b"true", b"on"):
        return True
    if word in (b"false", b"off"):
        return False
    raise DecodeError(RejectReason.INVALID_TYPE, f"{prop}: expected true/false or on/off, got {text[:40]!r}")


def _number(prop: str, text: bytes) -> float:
    if not _FLOAT.fullmatch(text):
        raise DecodeError(RejectReason.INVALID_TYPE, f"{prop}: expected a number, got {text[:40]!r}")
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise DecodeError(RejectReason.OUT_OF_RANGE, f"{prop}: {text[:40]!r} is not finite")
    return value


def _brightness_scale(info: PropertyInfo) -> float:
    """The value meaning full brightness: 100 for %, else the top of a `min:max[:step]` format."""
    if info.unit != "%" and info.format:
        parts = info.format.split(":")
        try:
            top = float(parts[1]) if len(parts) >= 2 else 0.0
        except ValueError:
            top = 0.0
        if top > 0:
            return top
    return 100.0


def door_polarity(info: PropertyInfo) -> bool | None:
    """True when the description's labels say `true` means open, False closed, None unknown."""
    labels = (info.format or "").split(",")
    if info.datatype != "boolean" or len(labels) != 2:
        return None
    if labels[1].strip().lower() in _OPEN_LABELS or labels[0].strip().lower() in _CLOSED_LABELS:
        return True
    if labels[1].strip().lower() in _CLOSED_LABELS or labels[0].strip().lower() in _OPEN_LABELS:
        return False
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def command(
    topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
) -> list[tuple[str, bytes]]:
    messages: list[tuple[str, bytes]] = []
    state = payload.get("state")
    if state in ("ON", "OFF"):
        messages.append((f"{topic}/{LIGHT_NODE}/on/set", b"true" if state == "ON" else b"false"))
    elif state in ("LOCK", "UNLOCK"):
        messages.append((f"{topic}/{LOCK_NODE}/locked/set", b"true" if state == "LOCK" else b"false"))
    brightness = payload.get("brightness")
    if isinstance(brightness, int) and not isinstance(brightness, bool):
        percent = round(brightness * 100 / 254)
        messages.append((f"{topic}/{LIGHT_NODE}/brightness/set", str(percent).encode()))
    return messages


DIALECT = Dialect("homie", routes, decode_state, decode_availability, command, decode_topic)
