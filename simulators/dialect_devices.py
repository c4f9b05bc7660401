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
- Shelly (a Dimmer Gen3 for the light, and an H&T Gen3 on the wall), on a topic
  prefix that is not the device id (`shellies/<building>/<floor>/<room>-dimmer`),
  in frames whose `src` is the device id: the dimmer publishes its whole
  `light:0` status on `<p>/status/light:0` (`output`, `brightness` in %, always
  there, on or off, `apower` W, `aenergy.total` Wh) and takes `Light.Set` RPC
  frames on `<p>/rpc` (a `Switch.Set` it has no switch for is dropped, as the
  device answers it with an error); the H&T sends a `NotifyFullStatus` frame on
  `<p>/events/rpc` at each reading (`temperature:0`, `humidity:0`, and
  `devicepower:0` with a battery level), as it does at each wake-up. Availability
  is `<p>/online` `true`/`false`. An H&T measures no CO2 or light: in a room that
  has one, the Zigbee air sensor keeps CO2 and illuminance and the H&T, a device
  of its own (`<room>-ht`), takes temperature and humidity.
- Home Assistant discovery (`homeassistant`): the first room's air sensor is a
  Tasmota with SetOption19 that announces itself (`announcements`: retained
  `<prefix>/sensor/<id>_<reading>/config`, its room as `suggested_area`) instead of
  being in the site config; it reports `tele/<t>/SENSOR` with an `SCD30` (CO2,
  temperature, humidity) and a `BH1750` (illuminance), and has no battery.

Which device speaks what is fixed by the room's position on the floor, so a mixed
floor has the same rooms, people and readings as a native one of the same seed.
Nothing here draws from the floor's random generator: that would change the story.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

Message = tuple[str, bytes]
DialectName = Literal["native", "zigbee2mqtt", "tasmota", "shelly", "homeassistant"]
MIXES = ("native", "mixed")

_Z2M_BASE = "zigbee2mqtt"
_Z2M_NAMES = {
    "pir": "motion sensor",
    "env": "air sensor",
    "door": "door contact",
    "lock": "door lock",
    "light": "ceiling light",
}
_SHELLY_BASE = "shellies"
_SHELLY_DIMMER = 100  # % a simulated Shelly dimmer is at before anyone set a level
_HT_FIELDS = ("temperature", "humidity")
# A mixed floor, room by room in turn: every fourth room stays native; the others get
# Zigbee sensors and a light on a Tasmota dimmer, a Zigbee bulb or a Shelly dimmer
# (with a Shelly H&T next to the Zigbee air sensor). People counters and badge readers
# have no Zigbee2MQTT, Tasmota or Shelly family here: they stay native.
_ZIGBEE_SENSORS: Mapping[str, DialectName] = {
    "pir": "zigbee2mqtt",
    "env": "zigbee2mqtt",
    "door": "zigbee2mqtt",
    "lock": "zigbee2mqtt",
}
# One device of a mixed floor announces itself (the first room's air sensor).
_ANNOUNCED: Mapping[str, DialectName] = {"env": "homeassistant"}
_MIXED: tuple[Mapping[str, DialectName], ...] = (
    {},
    {**_ZIGBEE_SENSORS, "light": "tasmota"},
    {**_ZIGBEE_SENSORS, "light": "zigbee2mqtt"},
    {**_ZIGBEE_SENSORS, "light": "shelly"},
)


@dataclass(frozen=True, slots=True)
class Speaker:
    """One simulated device: its native identity and the dialect it speaks."""

    device: str
    kind: str
    dialect: DialectName
    topic: str  # the device's topic in its dialect: what the site config maps
    native_topic: str  # "" for a device the floor does not know (a companion)
    # A second device taking some of this one's readings (the H&T next to an air sensor).
    companion: Speaker | None = None
    # What the device keeps between reports (a Shelly dimmer's last level).
    memory: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def site_fields(self) -> dict[str, str]:
        return {} if self.dialect == "native" else {"dialect": self.dialect, "topic": self.topic}

    @property
    def announced(self) -> bool:
        """Maps itself by discovery: not in the site config."""
        return self.dialect == "homeassistant"

    def command_topics(self) -> tuple[str, ...]:
        if self.announced:
            return ()
        if self.dialect == "tasmota":
            return f"cmnd/{self.topic}/POWER", f"cmnd/{self.topic}/Dimmer"
        if self.dialect == "shelly":
            return () if self.kind == "ht" else (f"{self.topic}/rpc",)
        return (f"{self.topic}/set",)

    def src(self) -> str:
        """A Shelly's device id (the frames' `src`): model and a MAC-like number."""
        model = "shellyhtg3" if self.kind == "ht" else "shellydimmerg3"
        return f"{model}-{zlib.crc32(self.device.encode()):012x}"


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
        if mix == "mixed" and index == 0:
            plan = {**plan, **_ANNOUNCED}
        for kind in kinds:
            device = f"{room}-{kind}"
            dialect = plan.get(kind, "native")
            native = native_topic(room, device)
            if dialect == "zigbee2mqtt":
                # Friendly names group by building and floor, like Zigbee2MQTT's `a/b/c` names.
                topic = f"{_Z2M_BASE}/{building}/{floor}/{room} {_Z2M_NAMES[kind]}"
            elif dialect in ("tasmota", "homeassistant"):
                topic = f"tasmota_{building}_{floor}_{room}_{kind}"
            elif dialect == "shelly":
                topic = f"{_SHELLY_BASE}/{building}/{floor}/{room}-dimmer"
            else:
                topic = native
            companion = None
            if kind == "env" and plan.get("light") == "shelly":
                ht = f"{room}-ht"
                companion = Speaker(ht, "ht", "shelly", f"{_SHELLY_BASE}/{building}/{floor}/{ht}", "")
            out[device] = Speaker(device, kind, dialect, topic, native, companion)
    return out


def companions(speakers: Mapping[str, Speaker]) -> dict[str, Speaker]:
    """Host device id -> its companion, for the devices that have one."""
    return {device: s.companion for device, s in speakers.items() if s.companion is not None}


def retained(topic: str) -> bool:
    """Availability and announcements are retained (the broker answers for a device
    that is gone, and tells a gateway that connects later what is there)."""
    return (
        topic.endswith("/availability")
        or (topic.startswith("tele/") and topic.endswith("/LWT"))
        or (topic.startswith(f"{_SHELLY_BASE}/") and topic.endswith("/online"))
        or ("/sensor/" in topic and topic.endswith("/config"))
    )


def availability(speaker: Speaker, online: bool) -> Message:
    if speaker.dialect in ("tasmota", "homeassistant"):
        return f"tele/{speaker.topic}/LWT", b"Online" if online else b"Offline"
    if speaker.dialect == "shelly":
        return f"{speaker.topic}/online", b"true" if online else b"false"
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
    out: list[Message] = []
    if speaker.companion is not None:
        # The companion's readings, and a battery level for each.
        shared = {k: fields.pop(k) for k in _HT_FIELDS if k in fields}
        shared |= {"battery": fields["battery"]} if "battery" in fields else {}
        out += _shelly_ht(speaker.companion, shared, ts) if shared else []
        if not fields:
            return out
    if speaker.dialect == "zigbee2mqtt":
        return [(speaker.topic, orjson.dumps(_zigbee2mqtt(speaker, fields, ts))), *out]
    if speaker.announced:
        return [*_announced_sensor(speaker, fields, ts), *out]
    if speaker.dialect == "shelly":
        return _shelly_dimmer(speaker, fields, ts)
    return _tasmota(speaker, fields, ts)


# What the announced air sensor reads, as (field, device_class, unit, template).
_ANNOUNCED_READINGS = (
    ("co2", "carbon_dioxide", "ppm", "{{value_json['SCD30'].CarbonDioxide}}"),
    ("temperature", "temperature", "°C", "{{value_json['SCD30'].Temperature}}"),
    ("humidity", "humidity", "%", "{{value_json['SCD30'].Humidity}}"),
    ("illuminance", "illuminance", "lx", "{{value_json['BH1750'].Illuminance}}"),
)


def announcements(speaker: Speaker, prefix: str, room: str) -> list[Message]:
    """A Tasmota's Home Assistant discovery configs (SetOption19), one per reading, in
    its abbreviated form, with its room as suggested_area."""
    out: list[Message] = []
    for reading, device_class, unit, template in _ANNOUNCED_READINGS:
        config = {
            "name": f"{speaker.device} {reading}",
            "stat_t": f"tele/{speaker.topic}/SENSOR",
            "avty_t": f"tele/{speaker.topic}/LWT",
            "pl_avail": "Online",
            "pl_not_avail": "Offline",
            "uniq_id": f"{speaker.topic}_{reading}",
            "dev": {"ids": [speaker.topic], "name": speaker.device, "sa": room},
            "unit_of_meas": unit,
            "dev_cla": device_class,
            "val_tpl": template,
        }
        out.append((f"{prefix}/sensor/{speaker.topic}_{reading}/config", orjson.dumps(config)))
    return out


def _announced_sensor(speaker: Speaker, fields: dict[str, Any], ts: float) -> list[Message]:
    scd30 = {
        name: fields[field]
        for field, name in (
            ("co2", "CarbonDioxide"),
            ("temperature", "Temperature"),
            ("humidity", "Humidity"),
        )
        if field in fields
    }
    body: dict[str, Any] = {"Time": datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")}
    if scd30:
        body["SCD30"] = scd30
    if "illuminance" in fields:
        body["BH1750"] = {"Illuminance": fields["illuminance"]}
    if len(body) == 1:
        return []  # a battery level: this one is mains powered
    return [(f"tele/{speaker.topic}/SENSOR", orjson.dumps(body))]


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


def _shelly_dimmer(speaker: Speaker, fields: dict[str, Any], ts: float) -> list[Message]:
    if "brightness" in fields:
        speaker.memory["brightness"] = round(fields["brightness"] * 100 / 254)
    status = {
        "id": 0,
        "source": "init",
        "output": fields.get("state") == "ON",
        "brightness": speaker.memory.get("brightness", _SHELLY_DIMMER),
        "temperature": {"tC": 41.5, "tF": 106.7},  # the dimmer's own heat
        "aenergy": {
            "total": round(fields.get("energy", 0.0) * 1000, 3),  # Wh
            "by_minute": [0.0, 0.0, 0.0],
            "minute_ts": int(ts) // 60 * 60,
        },
        "apower": fields.get("power", 0.0),
        "current": round(fields.get("power", 0.0) / 230, 3),
        "voltage": 230.0,
    }
    return [(f"{speaker.topic}/status/light:0", orjson.dumps(status))]


def _shelly_ht(speaker: Speaker, fields: dict[str, Any], ts: float) -> list[Message]:
    params: dict[str, Any] = {"ts": round(ts, 2)}
    if "battery" in fields:
        volts = round(4.8 + 1.2 * fields["battery"] / 100, 2)  # four AA cells
        power = {
            "id": 0,
            "battery": {"V": volts, "percent": fields["battery"]},
            "external": {"present": False},
        }
        params["devicepower:0"] = power
    if "humidity" in fields:
        params["humidity:0"] = {"id": 0, "rh": fields["humidity"]}
    if "temperature" in fields:
        celsius = fields["temperature"]
        params["temperature:0"] = {"id": 0, "tC": celsius, "tF": round(celsius * 9 / 5 + 32, 1)}
    # A wake-up for a reading sends the whole status; a battery report alone is a change.
    method = "NotifyFullStatus" if "temperature" in fields else "NotifyStatus"
    frame = {"src": speaker.src(), "dst": f"{speaker.topic}/events", "method": method, "params": params}
    return [(f"{speaker.topic}/events/rpc", orjson.dumps(frame))]


def command(speaker: Speaker, topic: str, payload: bytes) -> dict[str, Any] | None:
    """A command on one of the device's command topics, as a native command; None if unreadable."""
    if speaker.dialect == "shelly":
        return _shelly_command(payload)
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


def _shelly_command(payload: bytes) -> dict[str, Any] | None:
    """A `Light.Set` RPC frame for light 0; anything else is refused by the dimmer."""
    try:
        frame = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    params = frame.get("params") if isinstance(frame, dict) else None
    if not isinstance(params, dict) or frame.get("method") != "Light.Set" or params.get("id") != 0:
        return None
    cmd: dict[str, Any] = {}
    if isinstance(params.get("on"), bool):
        cmd["state"] = "ON" if params["on"] else "OFF"
    level = params.get("brightness")
    if type(level) is int and 0 <= level <= 100:
        cmd["brightness"] = round(level * 254 / 100)
    return cmd or None
