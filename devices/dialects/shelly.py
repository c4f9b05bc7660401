"""The Shelly Gen2 dialect (Plus/Pro relays and plugs), switch channel 0.

A device is mapped by its MQTT topic prefix (`dialect: shelly, topic:
shellyplus1pm-a8032ab12345`):

- `<prefix>/status/switch:0`: the switch's whole status (`output`, `apower` W,
  `aenergy.total` Wh);
- `<prefix>/events/rpc`: notifications (`NotifyStatus` with `params["switch:0"]`);
- `<prefix>/online`: `true` / `false` (retained, the device's last will).

Commands are RPC frames on `<prefix>/rpc` (`Switch.Set`, `Light.Set` for dimmers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from devices.dialects.base import DecodeError, Dialect, TopicKind
from devices.dialects.native import decode_translated
from devices.fields import DevicePayload, RejectReason

__all__ = ["DIALECT", "command", "decode_availability", "decode_state", "routes", "translate"]

CHANNEL = "switch:0"


def routes(topic: str) -> dict[str, TopicKind]:
    return {
        f"{topic}/status/{CHANNEL}": TopicKind.STATE,
        f"{topic}/events/rpc": TopicKind.STATE,
        f"{topic}/online": TopicKind.AVAILABILITY,
        f"{topic}/rpc": TopicKind.COMMAND,
    }


def decode_state(payload: bytes) -> DevicePayload:
    return decode_translated(payload, translate)


def translate(raw: Mapping[str, Any]) -> dict[str, Any]:
    if "method" in raw:
        # An RPC notification: only the switch channel's part concerns us.
        params = raw.get("params")
        raw = params.get(CHANNEL, {}) if isinstance(params, dict) else {}
        if not isinstance(raw, dict):
            raise DecodeError(RejectReason.INVALID_TYPE, f"params.{CHANNEL}: not an object")
    fields: dict[str, Any] = {}
    output = raw.get("output")
    if isinstance(output, bool):
        fields["state"] = "ON" if output else "OFF"
    elif output is not None:
        fields["state"] = output  # rejected by validation with the right reason
    if "apower" in raw:
        fields["power"] = raw["apower"]
    energy = raw.get("aenergy")
    if isinstance(energy, Mapping) and isinstance(energy.get("total"), int | float):
        fields["energy"] = energy["total"] / 1000  # Shelly counts Wh; the vocabulary is kWh
    return fields


def decode_availability(payload: bytes) -> bool:
    value = payload.strip().strip(b'"').lower()
    if value in (b"true", b"online"):
        return True
    if value in (b"false", b"offline"):
        return False
    raise DecodeError(RejectReason.INVALID_AVAILABILITY, f"expected true/false, got {payload[:40]!r}")


def command(topic: str, payload: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    frames: list[dict[str, Any]] = []
    if isinstance(payload.get("brightness"), int):
        params: dict[str, Any] = {"id": 0, "brightness": round(payload["brightness"] * 100 / 254)}
        if payload.get("state") in ("ON", "OFF"):
            params["on"] = payload["state"] == "ON"
        frames.append({"method": "Light.Set", "params": params})
    elif payload.get("state") in ("ON", "OFF"):
        frames.append({"method": "Switch.Set", "params": {"id": 0, "on": payload["state"] == "ON"}})
    return [
        (f"{topic}/rpc", orjson.dumps({"id": index, "src": "officegw", **frame}))
        for index, frame in enumerate(frames, 1)
    ]


DIALECT = Dialect("shelly", routes, decode_state, decode_availability, command)
