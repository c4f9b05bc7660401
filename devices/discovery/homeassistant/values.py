"""What one value of a Home Assistant entity becomes in the native vocabulary, and
the decoders of a discovered device's topics.

A converter takes the value a template rendered and returns the fields it gives
(None: nothing to apply), raising DecodeError for a value that cannot be what the
entity says it is. One state topic may carry several entities' values (Tasmota's
SENSOR, Zigbee2MQTT's device topic): its decoder reads them in one pass, with the
JSON parsed once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from devices.dialects.base import DecodeError, Dialect, TopicDecoder, TopicKind
from devices.dialects.native import decode_error
from devices.discovery.templates import MISSING, Inputs, Template, TemplateValueError
from devices.fields import MAX_PAYLOAD_BYTES, DevicePayload, RejectReason

SOURCE = "homeassistant"
_HA_MODES = {
    "off": "off",
    "heat": "heat",
    "cool": "cool",
    "auto": "auto",
    "heat_cool": "auto",
    "fan_only": "fan",
}

Converter = Callable[[Any], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Reading:
    """One value an entity reads from a topic, and what it becomes."""

    entity: str
    topic: str
    template: Template
    fields: tuple[str, ...]
    convert: Converter


@dataclass(frozen=True, slots=True)
class Availability:
    topic: str
    template: Template
    online: str
    offline: str


def canonical(value: Any) -> str:
    """A value as Home Assistant compares it with a payload: Python's spelling."""
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    return str(value)


def to_number(label: str, field: str, scale: tuple[float, float]) -> Converter:
    factor, offset = scale

    def convert(value: Any) -> dict[str, Any] | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise DecodeError(RejectReason.INVALID_TYPE, f"{label}: {value!r} is not a number")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise DecodeError(
                    RejectReason.INVALID_TYPE, f"{label}: {value[:40]!r} is not a number"
                ) from None
        if not isinstance(value, int | float):
            raise DecodeError(RejectReason.INVALID_TYPE, f"{label}: {str(value)[:40]} is not a number")
        number = value * factor + offset
        if field in ("temperature", "setpoint"):
            number = round(number, 2)
        elif factor != 1:
            number = round(number, 6)
        return {field: number}

    return convert


def to_binary(label: str, on: Any, off: Any, fields: Callable[[bool], dict[str, Any]]) -> Converter:
    on_text, off_text = canonical(on), canonical(off)

    def convert(value: Any) -> dict[str, Any] | None:
        text = canonical(value)
        if text == on_text:
            return fields(True)
        if text == off_text:
            return fields(False)
        if value is None or text in ("None", ""):
            return None
        raise DecodeError(
            RejectReason.INVALID_TYPE, f"{label}: {text[:40]!r} is neither {on_text!r} nor {off_text!r}"
        )

    return convert


def to_lock_state(locked: Any, unlocked: Any) -> Converter:
    locked_text, unlocked_text = canonical(locked), canonical(unlocked)

    def convert(value: Any) -> dict[str, Any] | None:
        text = canonical(value)
        if text == locked_text:
            return {"state": "LOCK"}
        if text == unlocked_text:
            return {"state": "UNLOCK"}
        return None  # locking, unlocking, jammed, open: not a state of the vocabulary

    return convert


def _brightness_of(label: str, value: Any, scale: float) -> int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DecodeError(RejectReason.INVALID_TYPE, f"{label}: brightness {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(RejectReason.INVALID_TYPE, f"{label}: brightness {value!r} is not a number")
    return max(0, min(254, round(value * 254 / scale)))


def to_brightness(label: str, scale: float) -> Converter:
    def convert(value: Any) -> dict[str, Any] | None:
        if value is None or value == "":
            return None
        return {"brightness": _brightness_of(label, value, scale)}

    return convert


def to_json_light(label: str, scale: float) -> Converter:
    def convert(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            raise DecodeError(RejectReason.NOT_AN_OBJECT, f"{label}: a json light's state is an object")
        fields: dict[str, Any] = {}
        state = value.get("state")
        if isinstance(state, str) and state.upper() in ("ON", "OFF"):
            fields["state"] = state.upper()
        elif state is not None:
            raise DecodeError(RejectReason.INVALID_TYPE, f"{label}: state {str(state)[:40]!r}")
        if value.get("brightness") is not None:
            fields["brightness"] = _brightness_of(label, value["brightness"], scale)
        return fields or None

    return convert


def to_mode(value: Any) -> dict[str, Any] | None:
    mode = _HA_MODES.get(canonical(value).lower())
    return {"mode": mode} if mode is not None else None


def state_decoder(
    readings: tuple[Reading, ...],
) -> TopicDecoder:
    def decode(memory: MutableMapping[str, Any], suffix: str, payload: bytes) -> DevicePayload | None:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
        inputs = _inputs(payload)
        fields: dict[str, Any] = {}
        for reading in readings:
            try:
                value = reading.template.render(inputs)
            except TemplateValueError as exc:
                raise DecodeError(RejectReason.INVALID_TYPE, f"{reading.entity}: {exc}") from None
            if value is MISSING:
                continue
            found = reading.convert(value)
            if found:
                fields.update(found)
        if not fields:
            return None
        try:
            return DevicePayload.model_validate(fields)
        except ValidationError as exc:
            raise decode_error(exc) from None

    return decode


def _inputs(payload: bytes) -> Inputs:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(RejectReason.INVALID_TYPE, "payload is not UTF-8 text") from None

    def parse() -> Any:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(RejectReason.INVALID_JSON, str(exc)) from None

    return Inputs(text, parse)


def availability_decoder(entry: Availability) -> Callable[[bytes], bool | None]:
    def decode(payload: bytes) -> bool | None:
        inputs = _inputs(payload[:MAX_PAYLOAD_BYTES])
        try:
            value = entry.template.render(inputs)
        except TemplateValueError as exc:
            raise DecodeError(RejectReason.INVALID_AVAILABILITY, str(exc)) from None
        if value is MISSING:
            return None
        text = canonical(value)
        if text == entry.online:
            return True
        if text == entry.offline:
            return False
        raise DecodeError(
            RejectReason.INVALID_AVAILABILITY,
            f"expected {entry.online!r} or {entry.offline!r}, got {text[:40]!r}",
        )

    return decode


def _no_state(payload: bytes) -> DevicePayload:
    raise DecodeError(RejectReason.UNKNOWN_TOPIC, "decoded by topic")


def _no_availability(payload: bytes) -> bool | None:
    raise DecodeError(RejectReason.UNKNOWN_TOPIC, "not an availability topic")


def _no_routes(topic: str) -> dict[str, TopicKind]:
    return {}


def _no_command(
    topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
) -> list[tuple[str, bytes]]:
    return []


def route_dialect(
    *,
    state: TopicDecoder | None = None,
    availability: Callable[[bytes], bool | None] | None = None,
) -> Dialect:
    return Dialect(
        SOURCE,
        _no_routes,
        _no_state,
        availability or _no_availability,
        _no_command,
        decode_topic=state,
    )
