"""How each simulated device says things in its dialect, and hears commands in it.

Native, Zigbee2MQTT and Tasmota are said as the demo floor's devices say them
(`simulators/dialect_devices.py`); this module adds the two the scenarios need on
top, written from the device side like that one:

- Shelly Gen2 relays (lights on `switch:0`): the whole switch status on
  `<prefix>/status/switch:0` (`output`, `apower` W, `aenergy.total` Wh),
  availability `<prefix>/online` `true`/`false`; commands are `Switch.Set` /
  `Light.Set` RPC frames on `<prefix>/rpc` (a relay switches; it has no level).
- Homie 5 (sensors, lights, locks, counters): one retained plain value per
  property topic `<base>/<node>/<property>` (`sensor/motion` `true`,
  `light/brightness` `71` in %), availability `<base>/$state` `ready`/`lost`;
  commands on `<base>/light/on/set`, `<base>/light/brightness/set` and
  `<base>/lock/locked/set`. Homie values carry no device time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from simulators import dialect_devices
from simulators.dialect_devices import Message

HOMIE_BASE = "homie/5"
_HOMIE_COMMANDS = (("light", "on"), ("light", "brightness"), ("lock", "locked"))
# Native field -> (node, property) of the Homie convention the gateway reads.
_HOMIE_PROPERTIES = {
    "occupancy": ("sensor", "motion"),
    "presence": ("sensor", "presence"),
    "people": ("counter", "people"),
    "contact": ("door", "contact"),
    "illuminance": ("sensor", "illuminance"),
    "temperature": ("sensor", "temperature"),
    "humidity": ("sensor", "humidity"),
    "co2": ("sensor", "co2"),
    "battery": ("sensor", "battery"),
    "brightness": ("light", "brightness"),
    "power": ("light", "power"),
    "energy": ("light", "energy"),
}
# The dialects said by this module; the rest by dialect_devices.
_OWN = frozenset({"shelly", "homie"})


@dataclass(frozen=True, slots=True)
class Voice:
    """One simulated device: its id, its kind, the dialect it speaks and its topic in
    that dialect (what a site config maps), and its native topic."""

    device: str
    kind: str
    dialect: str
    topic: str
    native_topic: str

    def command_topics(self) -> tuple[str, ...]:
        if self.dialect == "shelly":
            return (f"{self.topic}/rpc",)
        if self.dialect == "homie":
            return tuple(f"{self.topic}/{node}/{prop}/set" for node, prop in _HOMIE_COMMANDS)
        return _base(self).command_topics()


def _base(voice: Voice) -> dialect_devices.Speaker:
    return dialect_devices.Speaker(
        voice.device,
        voice.kind,
        voice.dialect,  # type: ignore[arg-type]
        voice.topic,
        voice.native_topic,
    )


def retained(topic: str) -> bool:
    """Availability is retained, and so is every Homie message (property values and `$state`)."""
    return dialect_devices.retained(topic) or topic.endswith("/online") or topic.startswith(HOMIE_BASE + "/")


def availability(voice: Voice, online: bool) -> Message:
    if voice.dialect == "shelly":
        return f"{voice.topic}/online", b"true" if online else b"false"
    if voice.dialect == "homie":
        return f"{voice.topic}/$state", b"ready" if online else b"lost"
    return dialect_devices.availability(_base(voice), online)


def report(voice: Voice, payload: bytes) -> list[Message]:
    """A native report of the device (JSON with `ts`), as its dialect says it."""
    if voice.dialect not in _OWN:
        return dialect_devices.report(_base(voice), payload)
    fields: dict[str, Any] = orjson.loads(payload)
    fields.pop("ts")
    return _shelly(voice, fields) if voice.dialect == "shelly" else _homie(voice, fields)


def _shelly(voice: Voice, fields: dict[str, Any]) -> list[Message]:
    """A relay says its whole switch status at once (it has no brightness)."""
    if not {"state", "power", "energy"} & fields.keys():
        return []
    status: dict[str, Any] = {"id": 0, "source": "switch"}
    if fields.get("state") in ("ON", "OFF"):
        status["output"] = fields["state"] == "ON"
    if "power" in fields:
        status["apower"] = fields["power"]
    if "energy" in fields:
        status["aenergy"] = {"total": round(fields["energy"] * 1000, 3)}  # Shelly counts Wh
    return [(f"{voice.topic}/status/switch:0", orjson.dumps(status))]


def _homie(voice: Voice, fields: dict[str, Any]) -> list[Message]:
    """One plain-text value per property topic."""
    out: list[Message] = []
    for name, value in fields.items():
        if name == "state":
            locks = value in ("LOCK", "UNLOCK")
            node, prop = ("lock", "locked") if locks else ("light", "on")
            text = "true" if value in ("LOCK", "ON") else "false"
        elif name in _HOMIE_PROPERTIES:
            node, prop = _HOMIE_PROPERTIES[name]
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif name == "brightness":
                text = str(round(value * 100 / 254))  # Homie brightness is a percentage
            else:
                text = f"{value:g}" if isinstance(value, float) else str(value)
        else:
            continue  # no Homie property for it (door counter deltas, badge reads)
        out.append((f"{voice.topic}/{node}/{prop}", text.encode()))
    return out


def command(voice: Voice, topic: str, payload: bytes) -> dict[str, Any] | None:
    """A command on one of the device's command topics, as a native command; None if unreadable."""
    if voice.dialect == "homie":
        return _homie_command(topic, payload)
    if voice.dialect == "shelly":
        return _shelly_command(payload)
    return dialect_devices.command(_base(voice), topic, payload)


def _homie_command(topic: str, payload: bytes) -> dict[str, Any] | None:
    word = payload.strip().lower()
    if topic.endswith("/light/on/set"):
        state = {b"true": "ON", b"false": "OFF"}.get(word)
        return {"state": state} if state else None
    if topic.endswith("/lock/locked/set"):
        lock = {b"true": "LOCK", b"false": "UNLOCK"}.get(word)
        return {"state": lock} if lock else None
    if word.isdigit() and int(word) <= 100:  # <base>/light/brightness/set, in %
        return {"brightness": round(int(word) * 254 / 100)}
    return None


def _shelly_command(payload: bytes) -> dict[str, Any] | None:
    try:
        frame = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    params = frame.get("params") if isinstance(frame, dict) else None
    if not isinstance(params, dict) or frame.get("method") not in ("Switch.Set", "Light.Set"):
        return None
    native: dict[str, Any] = {}
    if isinstance(params.get("on"), bool):
        native["state"] = "ON" if params["on"] else "OFF"
    if isinstance(params.get("brightness"), int) and 0 <= params["brightness"] <= 100:
        native["brightness"] = round(params["brightness"] * 254 / 100)
    return native or None
