"""The Shelly Gen2+ dialect (Plus, Pro, Gen3/Gen4, Mini): every component a room cares about.

A device entry is mapped by the device's MQTT topic prefix (`dialect: shelly, topic:
shellyplus1pm-a8032ab12345`), which is whatever the device was given: its id by
default, or a custom name such as `shellies/plus1pm` or `SH-ShellyPHT-002`.

**Channels.** A Shelly device has numbered components (`switch:0`, `switch:1`,
`light:1`, `temperature:0`, ...). A device entry stands for one channel number,
`channel: N` in the site config (0 when unset), and takes every component with that
id: a Pro 2PM is two entries on the same prefix, `channel: 0` and `channel: 1`, each
its own light or switch (possibly in different rooms); an H&T is one entry (its
`temperature:0`, `humidity:0` and `devicepower:0` are all channel 0). The entry
gets the device's `online` and `events/rpc` messages too, and picks out its own
components; a message with nothing for its channel is ignored, not rejected.

**Topics** (under the prefix `<p>`):

- `<p>/status/<component>:<N>`: a component's whole status (the device's "generic
  status update over MQTT" setting); `switch`, `light`, `cover`, `temperature`,
  `humidity`, `illuminance`, `devicepower` and `input` are subscribed;
- `<p>/events/rpc`: RPC notifications (the "RPC status notifications" setting):
  `NotifyStatus` (what changed), `NotifyFullStatus` (every component's status, as a
  battery device such as the H&T sends at each wake-up) and `NotifyEvent` (button
  presses). Frames are taken by their topic: their `src` is the device id, which
  need not match a custom prefix, and is not checked;
- `<p>/online`: `true` / `false` (retained; the device's last will);
- `<p>/rpc`: where commands go (RPC request frames).

**Components** in the native vocabulary (DESIGN.md §2):

- `switch:N`: `output` -> `state` ON/OFF, `apower` -> `power` W, `aenergy.total`
  Wh -> `energy` kWh;
- `light:N`: as a switch, and `brightness` 0-100 % -> `brightness` 0-254;
- `cover:N`: `state` (open, closed, opening, closing, stopped, calibrating) ->
  `cover`, `current_pos` % -> `position` (100 = open), `apower`, `aenergy`;
- `temperature:N`: `tC` -> `temperature`; `humidity:N`: `rh` -> `humidity`;
  `illuminance:N`: `lux` -> `illuminance`;
- `devicepower:N`: `battery.percent` -> `battery`, unless `external.present`: on
  USB or mains power the level means nothing (an H&T on USB says 0 %);
- `input:N`: `state` -> `input` (an input in switch mode); `NotifyEvent` button
  events -> `action`, in Zigbee2MQTT's words (`single`, `double`, `triple`,
  `hold`, `press`, `release`).

`cover`, `position`, `input` and `action` are outside the vocabulary: kept in the
device's state, checked here (a wrong type is rejected), acted on by no rule.

Left out on purpose: a switch's or light's own `temperature` (the relay's heat, not
the room's), `ret_aenergy` (energy returned to the grid), `voltage`, `current`,
`pf`, and the frames' `ts`: a device stamps its frames with its uptime until its
clock is set (`"ts":1.61`), so gateway time is used. A value reported as `null` (a
sensor that could not be read) says nothing and is skipped; a value of the wrong
type is rejected like any bad input.

**Commands** are RPC frames on `<p>/rpc`: `Light.Set` for a light (`on`, and
`brightness` in % from the native 0-254; a brightness without a state switches the
light on, or off at 0), `Switch.Set` for a switch, both with `id` = the entry's
channel. A command without brightness goes to a light only once the device has
reported a brightness (a light:N status); until then it is taken for a relay.
Covers take no commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, MutableMapping
from functools import cache
from typing import Any, TypeGuard

import orjson
from pydantic import ValidationError

from devices.dialects.base import DecodeError, Dialect, TopicKind
from devices.dialects.native import decode_error, decode_translated
from devices.fields import MAX_PAYLOAD_BYTES, DevicePayload, RejectReason

__all__ = [
    "COMPONENTS",
    "DIALECT",
    "channel_dialect",
    "command",
    "decode_availability",
    "decode_state",
    "routes",
    "translate",
]

# Component types an entry takes, by the field names their status carries.
COMPONENTS = ("switch", "light", "cover", "temperature", "humidity", "illuminance", "devicepower", "input")
NOTIFICATIONS = frozenset({"NotifyStatus", "NotifyFullStatus"})
# Shelly's button events, in Zigbee2MQTT's words for them.
BUTTON_ACTIONS = {
    "single_push": "single",
    "double_push": "double",
    "triple_push": "triple",
    "long_push": "hold",
    "btn_down": "press",
    "btn_up": "release",
}
_STATUS = re.compile(r"status/([a-z]+):(\d+)")


def routes(topic: str, channel: int = 0) -> dict[str, TopicKind]:
    return {
        **{f"{topic}/status/{kind}:{channel}": TopicKind.STATE for kind in COMPONENTS},
        f"{topic}/events/rpc": TopicKind.STATE,
        f"{topic}/online": TopicKind.AVAILABILITY,
        f"{topic}/rpc": TopicKind.COMMAND,
    }


def decode_topic(
    memory: MutableMapping[str, Any], suffix: str, payload: bytes, channel: int = 0
) -> DevicePayload | None:
    """One message below the prefix (`suffix`: `status/light:1` or `events/rpc`) for the
    entry of `channel`; None when it says nothing about that channel."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    raw = _json_object(payload)
    status = _STATUS.fullmatch(suffix)
    if status is not None:
        if int(status.group(2)) != channel:
            return None
        fields = component_fields(status.group(1), raw, suffix)
    else:
        fields = frame_fields(raw, channel)
    if not fields:
        return None
    try:
        return DevicePayload.model_validate(fields)
    except ValidationError as exc:
        raise decode_error(exc) from None


def decode_state(payload: bytes) -> DevicePayload:
    """A payload without its topic: an RPC frame, else a `switch:0` status (channel 0)."""
    return decode_translated(payload, translate)


def translate(raw: Mapping[str, Any], channel: int = 0) -> dict[str, Any]:
    if "method" in raw:
        return frame_fields(raw, channel)
    return component_fields("switch", raw, "status")


def frame_fields(frame: Mapping[str, Any], channel: int) -> dict[str, Any]:
    """What an RPC notification frame says about the components of `channel`."""
    method = frame.get("method")
    params = frame.get("params")
    if not isinstance(params, Mapping):
        if method in NOTIFICATIONS or method == "NotifyEvent":
            raise DecodeError(RejectReason.INVALID_TYPE, f"{method}: params is not an object")
        return {}
    if method == "NotifyEvent":
        return _event_fields(params, channel)
    if method not in NOTIFICATIONS:
        return {}  # a response or another method: nothing about a state
    fields: dict[str, Any] = {}
    for kind in COMPONENTS:
        key = f"{kind}:{channel}"
        if key in params:
            status = params[key]
            if not isinstance(status, Mapping):
                raise DecodeError(RejectReason.INVALID_TYPE, f"params.{key}: not an object")
            fields.update(component_fields(kind, status, f"params.{key}"))
    return fields


def component_fields(kind: str, status: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One component's status (whole or in part) in the native vocabulary. Values of the
    wrong type are passed on as they are, so that validation rejects them with the
    right reason; `null` (a sensor that could not be read) is left out."""
    if not isinstance(status, Mapping):
        raise DecodeError(RejectReason.NOT_AN_OBJECT, f"{where}: not an object")
    fields: dict[str, Any] = {}
    if kind in ("switch", "light", "cover"):
        _metering(status, fields)
    if kind in ("switch", "light"):
        output = status.get("output")
        if output is not None:
            fields["state"] = ("ON" if output else "OFF") if isinstance(output, bool) else output
    if kind == "light":
        level = status.get("brightness")
        if level is not None:
            fields["brightness"] = round(level * 254 / 100) if _is_number(level) else level
    elif kind == "cover":
        _extra(status, "state", fields, "cover", str)
        _extra(status, "current_pos", fields, "position", _is_number)
        if not 0 <= fields.get("position", 0) <= 100:
            raise DecodeError(RejectReason.OUT_OF_RANGE, f"current_pos: {fields['position']} is not 0-100 %")
    elif kind == "temperature":
        _copy_number(status, "tC", fields, "temperature")
    elif kind == "humidity":
        _copy_number(status, "rh", fields, "humidity")
    elif kind == "illuminance":
        _copy_number(status, "lux", fields, "illuminance")
    elif kind == "devicepower":
        external = status.get("external")
        battery = status.get("battery")
        on_power = isinstance(external, Mapping) and external.get("present") is True
        if isinstance(battery, Mapping) and not on_power:
            _copy_number(battery, "percent", fields, "battery")
    elif kind == "input":
        _extra(status, "state", fields, "input", bool)
    return fields


def _metering(status: Mapping[str, Any], fields: dict[str, Any]) -> None:
    _copy_number(status, "apower", fields, "power")
    energy = status.get("aenergy")
    if isinstance(energy, Mapping):
        total = energy.get("total")
        if _is_number(total):
            # Shelly counts Wh to the mWh; the vocabulary is kWh (6 decimals keep every mWh).
            fields["energy"] = round(total / 1000, 6)
        elif total is not None:
            fields["energy"] = total


def _event_fields(params: Mapping[str, Any], channel: int) -> dict[str, Any]:
    """The last button event of the channel's input in a `NotifyEvent` frame."""
    events = params.get("events")
    action = None
    for event in events if isinstance(events, list) else ():
        if (
            isinstance(event, Mapping)
            and event.get("component") == f"input:{channel}"
            and event.get("event") in BUTTON_ACTIONS
        ):
            action = BUTTON_ACTIONS[event["event"]]
    return {"action": action} if action is not None else {}


def _extra(
    source: Mapping[str, Any],
    key: str,
    fields: dict[str, Any],
    name: str,
    valid: type | Callable[[Any], bool],
) -> None:
    """A field outside the vocabulary (no model checks it): checked here, or rejected."""
    value = source.get(key)
    if value is None:
        return
    ok = isinstance(value, valid) if isinstance(valid, type) else valid(value)
    if not ok:
        raise DecodeError(RejectReason.INVALID_TYPE, f"{key}: unexpected value {str(value)[:40]!r}")
    fields[name] = value


def _copy_number(source: Mapping[str, Any], key: str, fields: dict[str, Any], name: str) -> None:
    value = source.get(key)
    if value is not None:
        fields[name] = value  # a string or a boolean is rejected by validation


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_object(payload: bytes) -> Mapping[str, Any]:
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(RejectReason.INVALID_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise DecodeError(RejectReason.NOT_AN_OBJECT, "payload is not a JSON object")
    return raw


def decode_availability(payload: bytes) -> bool:
    value = payload.strip().strip(b'"').lower()
    if value in (b"true", b"online"):
        return True
    if value in (b"false", b"offline"):
        return False
    raise DecodeError(RejectReason.INVALID_AVAILABILITY, f"expected true/false, got {payload[:40]!r}")


def command(
    topic: str, payload: Mapping[str, Any], reported: Collection[str] = (), channel: int = 0
) -> list[tuple[str, bytes]]:
    """The RPC frame that carries a native command to the entry's channel: `Light.Set`
    when it sets a brightness or the device has reported one, else `Switch.Set`."""
    state, level = payload.get("state"), payload.get("brightness")
    on = state == "ON" if state in ("ON", "OFF") else None
    params: dict[str, Any] = {"id": channel}
    if isinstance(level, int) and not isinstance(level, bool):
        if on is None:
            on = level > 0  # as a Zigbee bulb: a level alone switches on (off at 0)
        params["on"] = on
        if level > 0:
            # The dimmest native level is still on: never 0 % for a light asked to glow.
            params["brightness"] = max(1, round(level * 100 / 254))
        method = "Light.Set"
    elif on is not None:
        params["on"] = on
        method = "Light.Set" if "brightness" in reported else "Switch.Set"
    else:
        return []
    frame = {"id": 1, "src": "officegw", "method": method, "params": params}
    return [(f"{topic}/rpc", orjson.dumps(frame))]


@cache
def channel_dialect(channel: int) -> Dialect:
    """The dialect of the entries standing for channel `channel` (one per channel, shared)."""

    def channel_routes(topic: str) -> dict[str, TopicKind]:
        return routes(topic, channel)

    def channel_decode_topic(
        memory: MutableMapping[str, Any], suffix: str, payload: bytes
    ) -> DevicePayload | None:
        return decode_topic(memory, suffix, payload, channel)

    def channel_command(
        topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
    ) -> list[tuple[str, bytes]]:
        return command(topic, payload, reported, channel)

    return Dialect(
        "shelly",
        channel_routes,
        decode_state,
        decode_availability,
        channel_command,
        channel_decode_topic,
        channel_dialect,
    )


DIALECT = channel_dialect(0)
