"""The native dialect (DESIGN.md §2): `<prefix>/<building>/<floor>/<room>/<device>[/set|/availability]`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from devices import identity
from devices.dialects.base import DecodeError, Dialect, TopicKind
from devices.fields import MAX_PAYLOAD_BYTES, DevicePayload, RejectReason

__all__ = ["DIALECT", "NativeTopic", "TopicKind", "decode_availability", "decode_state"]


@dataclass(frozen=True, slots=True)
class NativeTopic:
    building: str
    floor: str
    room: str
    device: str
    kind: TopicKind


def parse_topic(topic: str, prefix: str) -> NativeTopic | None:
    """The parts of a native topic, or None when the topic is not in the scheme.

    Raises `DecodeError` (`invalid_topic`) for a topic in the scheme whose building,
    floor, room or device level is not a valid id (`devices.identity`)."""
    if not topic.startswith(prefix) or topic[len(prefix) : len(prefix) + 1] != "/":
        return None
    levels = topic[len(prefix) + 1 :].split("/")
    if len(levels) == 4:
        kind = TopicKind.STATE
    elif len(levels) == 5 and levels[4] == "set":
        kind = TopicKind.COMMAND
    elif len(levels) == 5 and levels[4] == "availability":
        kind = TopicKind.AVAILABILITY
    else:
        return None
    if not all(levels[:4]):
        return None
    building, floor, room, device = levels[:4]
    problem = identity.invalid_segment({"building": building, "floor": floor, "room": room, "device": device})
    if problem is not None:
        raise DecodeError(RejectReason.INVALID_TOPIC, problem)
    # Every device of a room repeats its building, floor and room: one string each
    # for all of them (the topic cache holds a parsed topic per device).
    return NativeTopic(sys.intern(building), sys.intern(floor), sys.intern(room), device, kind)


def state_topic(prefix: str, building: str, floor: str, room: str, device: str) -> str:
    return f"{prefix}/{building}/{floor}/{room}/{device}"


# Pydantic error types that mean "a value of the right type but outside what the
# field allows"; every other validation error is a type problem.
_RANGE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "literal_error",
        "string_too_long",
    }
)


def decode_state(payload: bytes) -> DevicePayload:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return DevicePayload.model_validate_json(payload)
    except ValidationError as exc:
        raise decode_error(exc) from None


def decode_error(exc: ValidationError) -> DecodeError:
    """The first validation problem of a payload, as a rejection with its reason."""
    first = exc.errors(include_url=False, include_input=False)[0]
    kind = first["type"]
    field = ".".join(str(part) for part in first["loc"]) or "payload"
    if kind == "json_invalid":
        return DecodeError(RejectReason.INVALID_JSON, first["msg"])
    if kind == "model_type":
        return DecodeError(RejectReason.NOT_AN_OBJECT, "payload is not a JSON object")
    reason = RejectReason.OUT_OF_RANGE if kind in _RANGE_ERRORS else RejectReason.INVALID_TYPE
    return DecodeError(reason, f"{field}: {first['msg']}")


def decode_translated(payload: bytes, translate: Callable[[dict[str, Any]], dict[str, Any]]) -> DevicePayload:
    """A JSON-object payload of another dialect, translated to the native vocabulary
    by `translate` and validated like a native one."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(RejectReason.INVALID_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise DecodeError(RejectReason.NOT_AN_OBJECT, "payload is not a JSON object")
    try:
        return DevicePayload.model_validate(translate(raw))
    except ValidationError as exc:
        raise decode_error(exc) from None


def decode_availability(payload: bytes) -> bool:
    """True for online. Accepts the bare string and Zigbee2MQTT's `{"state": ...}` form."""
    text = payload.strip()
    if text.startswith(b"{"):
        try:
            text = str(orjson.loads(text).get("state", "")).encode()
        except (orjson.JSONDecodeError, AttributeError):
            raise DecodeError(RejectReason.INVALID_AVAILABILITY, "unreadable JSON") from None
    value = text.strip(b'"').lower()
    if value == b"online":
        return True
    if value == b"offline":
        return False
    raise DecodeError(RejectReason.INVALID_AVAILABILITY, f"expected online/offline, got {text[:40]!r}")


def routes(topic: str) -> dict[str, TopicKind]:
    """The topics of a device whose state topic is `topic` (also used by Zigbee2MQTT)."""
    return {
        topic: TopicKind.STATE,
        f"{topic}/availability": TopicKind.AVAILABILITY,
        f"{topic}/set": TopicKind.COMMAND,
    }


def command(
    topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
) -> list[tuple[str, bytes]]:
    return [(f"{topic}/set", orjson.dumps(dict(payload)))]


DIALECT = Dialect("native", routes, decode_state, decode_availability, command)
