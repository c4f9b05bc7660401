"""How the virtual floor's devices speak other dialects than native.

The floor thinks in native messages (DESIGN.md §2); this module says them the way a
Zigbee2MQTT bridge or a Tasmota relay would, and reads commands sent in those
dialects back into native ones. It is the simulator's mirror of
`devices/dialects/`, written from the device side: what a device publishes, not
what the gateway makes of it.

- Zigbee2MQTT (sensors, locks, bulbs): `zigbee2mqtt/<friendly name>` with the
  native fields plus `linkquality` and `last_seen` (epoch ms) instead of `ts`;
  locks add `lock_state`; availability `{"state": "online"}` on `/availability`;
  commands are JSON on `/set`. One message per change, as with Zigbee2MQTT's
  `cache_state: false` (with the cache every report would repeat a stale
  `occupancy: true`).
- Tasmota (lights on a dimmer relay): `stat/<t>/RESULT` `{"POWER": "ON", "Dimmer": 71}`
  when on, the bare `stat/<t>/POWER` `OFF` when off, and `tele/<t>/SENSOR` with
  `ENERGY` (`Power` W, `Total` kWh); `tele/<t>/LWT` `Online`/`Offline`; commands
  on `cmnd/<t>/POWER` and `cmnd/<t>/Dimmer` (0-100 %).

Which device speaks what is fixed by the room's position on the floor, so a mixed
floor has the same rooms, people and readings as a native one of the same seed.
Nothing here draws from the floor's random generator: that would change the story.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Message = tuple[str, bytes]
DialectName = Literal["native", "zigbee2mqtt", "tasmota"]
MIXES = ("native", "mixed")

_Z2M_BASE = "zigbee2mqtt"
_Z2M_NAMES = {
    "pir": "motion sensor",
    "env": "air sensor",
    "door": "door contact",
    "lock": "door lock",
    "light": "ceiling light",
}
# A mixed floor, room by room in turn: every third room stays native; the others get
# Zigbee sensors and a light on a Tasmota dimmer or a Zigbee bulb. People counters and
# badge readers have no Zigbee2MQTT or Tasmota family here: they stay native.
_ZIGBEE_SENSORS: Mapping[str, DialectName] = {
    "pir": "zigbee2mqtt",
    "env": "zigbee2mqtt",
    "door": "zigbee2mqtt",
    "lock": "zigbee2mqtt",
}
_MIXED: tuple[Mapping[str, DialectName], ...] = (
    {},
    {**_ZIGBEE_SENSORS, "light": "tasmota"},
    {**_ZIGBEE_SENSORS, "light": "zigbee2mqtt"},
)


@dataclass(frozen=True, slots=True)
class Speaker:
    """One simulated device: its native identity and the dialect it speaks."""

    device: str
    kind: str
    dialect: DialectName
    topic: str  # the device's topic in its dialect: what the site config maps
    native_topic: str

    def site_fields(self) -> dict[str, str]:
        return {} if self.dialect == "native" else {"dialect": self.dialect, "topic": self.topic}

    def command_topics(self) -> tuple[str, ...]:
        if self.dialect == "tasmota":
            return f"cmnd/{self.topic}/POWER", f"cmnd/{self.topic}/Dimmer"
        return (f"{self.topic}/set",)


def speakers(
    mix: str,
    building: str,
    floor: str,
    rooms: Sequence[tuple[str, Sequence[str]]],
    native_topic: Callable[[str, str], str],
) -> dict[str, Speaker]:
    """Device id -> speaker for `rooms` ((room id, device kinds), in floor order).

    `native_topic(room, device)` gives a device's native state topic.
    """
    if mix not in MIXES:
        raise ValueError(f"unknown dialect mix {mix!r}; known: {', '.join(MIXES)}")
    out: dict[str, Speaker] = {}
    for index, (room, kinds) in enumerate(rooms):
        plan = _MIXED[index % len(_MIXED)] if mix == "mixed" else {}
        for kind in kinds:
            device = f"{room}-{kind}"
            dialect = plan.get(kind, "native")
            native = native_topic(room, device)
            if dialect == "zigbee2mqtt":
                # Friendly names group by building and floor, like Zigbee2MQTT's `a/b/c` names.
                topic = f"{_Z2M_BASE}/{building}/{floor}/{room} {_Z2M_NAMES[kind]}"
            elif dialect == "tasmota":
                topic = f"tasmota_{building}_{floor}_{room}_{kind}"
            else:
                topic = native
            out[device] = Speaker(device, kind, dialect, topic, native)
    return out


def retained(topic: str) -> bool:
    """Availability is retained (the broker answers for a device that is gone)."""
    return topic.endswith("/availability") or (topic.startswith("tele/") and topic.endswith("/LWT"))


def availability(speaker: Speaker, online: bool) -> Message:
    if speaker.dialect == "tasmota":
        return f"tele/{speaker.topic}/LWT", b"Online" if online else b"Offline"
    word = "online" if online else "offline"
    if speaker.dialect == "zigbee2mqtt":
        return f"{speaker.topic}/availability", orjson.dumps({"state": word})
    return f"{speaker.topic}/availability", word.encode()


def report(speaker: Speaker, payload: bytes) -> list[Message]:
    """A native report of the device (JSON with `ts`), as the device's dialect says it."""
    if speaker.dialect == "native":
        return [(speaker.topic, payload)]
    fields: dict[str, Any] = orjson.loads(payload)
    ts = fields.pop("ts")
    if speaker.dialect == "zigbee2mqtt":
        return [(speaker.topic, orjson.dumps(_zigbee2mqtt(speaker, fields, ts)))]
    return _tasmota(speaker, fields, ts)


def _zigbee2mqtt(speaker: Speaker, fields: dict[str, Any], ts: float) -> dict[str, Any]:
    if fields.get("state") in ("LOCK", "UNLOCK"):
        fields["lock_state"] = "locked" if fields["state"] == "LOCK" else "unlocked"
    if "battery" in fields:
        fields["voltage"] = 2700 + 5 * round(fields["battery"])  # mV of a CR2032 cell
    # A fixed link quality per device: random draws belong to the floor's story.
    fields["linkquality"] = 60 + zlib.crc32(speaker.device.encode()) % 150
    fields["last_seen"] = round(ts * 1000)
    return fields


def _tasmota(speaker: Speaker, fields: dict[str, Any], ts: float) -> list[Message]:
    out: list[Message] = []
    if fields.get("state") == "ON":
        result: dict[str, Any] = {"POWER": "ON"}
        if "brightness" in fields:
            result["Dimmer"] = round(fields["brightness"] * 100 / 254)
        out.append((f"stat/{speaker.topic}/RESULT", orjson.dumps(result)))
    elif fields.get("state") == "OFF":
        out.append((f"stat/{speaker.topic}/POWER", b"OFF"))
    if "power" in fields or "energy" in fields:
        energy = {"Total": fields.get("energy", 0.0), "Power": fields.get("power", 0.0), "Voltage": 230}
        # Tasmota's `Time` is the device's local time without a zone; this one runs on UTC.
        clock = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        out.append((f"tele/{speaker.topic}/SENSOR", orjson.dumps({"Time": clock, "ENERGY": energy})))
    return out


def command(speaker: Speaker, topic: str, payload: bytes) -> dict[str, Any] | None:
    """A command on one of the device's command topics, as a native command; None if unreadable."""
    if speaker.dialect == "tasmota":
        word = payload.strip().upper()
        if topic.endswith("/POWER"):
            state = {b"ON": "ON", b"1": "ON", b"OFF": "OFF", b"0": "OFF"}.get(word)
            return {"state": state} if state else None
        if word.isdigit() and int(word) <= 100:  # cmnd/<t>/Dimmer
            return {"brightness": round(int(word) * 254 / 100)}
        return None
    try:
        cmd = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return cmd if isinstance(cmd, dict) else None
