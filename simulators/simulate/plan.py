"""A scenario made concrete: every room with its devices, each device with the topic
and dialect it speaks, and the site config a gateway needs to map them.

Names, so a test engineer can find a device in the gateway:

- a device is `<room>/<name>` in the scenario (`orion/pir`, `open-2/light-3`);
- native devices publish on `<prefix>/<building>/<floor>/<room>/<name>`; a gateway
  that does not list them registers them as `<room>.<name>` (`orion.pir`);
- devices of other dialects must be mapped by the site config (`--print-config`
  writes it), under the id `<room>-<name>` and their dialect's topic:
  `zigbee2mqtt/<building>/<floor>/<room> <name>`, Tasmota `tasmota_<room>_<name>`,
  Shelly `shellyplus1pm-<room>-<name>`, Homie `homie/5/<room>-<name>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulators.simulate.schema import BATTERY_KINDS, RoomSpec, Scenario, device_names
from simulators.simulate.voices import HOMIE_BASE, Voice

# The gateway's own registry limits (gateway.config RegistrySection defaults): a
# site beyond them needs them raised in its config.
GATEWAY_MAX_AUTO_ROOMS = 1_000
GATEWAY_MAX_AUTO_DEVICES = 10_000
# Gateway device kinds of the simulated kinds (what the site config's `kind` says).
_GATEWAY_KIND = {"light": "light", "hvac": "hvac", "lock": "lock", "badge": "badge_reader"}
_COMMAND_FILTERS = {
    "native": ("{prefix}/+/+/+/+/set",),
    "zigbee2mqtt": ("zigbee2mqtt/+/+/+/set",),
    "tasmota": ("cmnd/+/POWER", "cmnd/+/Dimmer"),
    "shelly": ("+/rpc",),
    "homie": (f"{HOMIE_BASE}/+/+/+/set",),
}


@dataclass(frozen=True, slots=True)
class SimDevice:
    key: str  # <room>/<name>
    room: str
    name: str
    kind: str
    dialect: str
    speaker: Voice
    watts: float  # lights at full brightness; 0 for the rest
    battery: bool

    @property
    def config_id(self) -> str:
        """Its id in a site config that lists it (dialect devices must be listed)."""
        return f"{self.room}-{self.name}"

    @property
    def auto_id(self) -> str:
        """The id a gateway gives it when it registers it from its native topic."""
        return f"{self.room}.{self.name}"


@dataclass(frozen=True, slots=True)
class SimRoom:
    id: str
    name: str
    building: str
    floor: str
    type: str
    capacity: int
    bookable: bool
    windows: float
    volume_m3: float
    devices: tuple[SimDevice, ...]

    def of_kind(self, kind: str) -> tuple[SimDevice, ...]:
        return tuple(d for d in self.devices if d.kind == kind)


class SitePlan:
    """Every room and device of a scenario, with lookups by key and command topic."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.prefix = scenario.topic_prefix
        rooms: dict[str, SimRoom] = {}
        for building, floor, spec in scenario.rooms():
            rooms[spec.id] = self._room(building, floor, spec)
        self.rooms = rooms
        self.devices = {d.key: d for room in rooms.values() for d in room.devices}
        self.by_command_topic = {
            topic: device for device in self.devices.values() for topic in device.speaker.command_topics()
        }
        self.buildings = tuple(dict.fromkeys(room.building for room in rooms.values()))

    def _room(self, building: str, floor: str, spec: RoomSpec) -> SimRoom:
        physics = self.scenario.physics
        devices = []
        for name, fit in device_names(self.scenario.fits[spec.fit_name]):
            native = f"{self.prefix}/{building}/{floor}/{spec.id}/{name}"
            topic = _dialect_topic(fit.dialect, building, floor, spec.id, name) or native
            speaker = Voice(f"{spec.id}-{name}", fit.kind, fit.dialect, topic, native)
            watts = (fit.watts or physics.light.watts) if fit.kind == "light" else 0.0
            key = f"{spec.id}/{name}"
            devices.append(
                SimDevice(
                    key, spec.id, name, fit.kind, fit.dialect, speaker, watts, fit.kind in BATTERY_KINDS
                )
            )
        return SimRoom(
            id=spec.id,
            name=spec.name or spec.id,
            building=building,
            floor=floor,
            type=spec.type,
            capacity=spec.capacity,
            bookable=spec.is_bookable,
            windows=spec.windows,
            volume_m3=20.0 + spec.capacity * physics.co2.volume_per_seat,
            devices=tuple(devices),
        )

    def command_topics(self) -> list[str]:
        """Topic filters the simulated devices take commands on: one per dialect in use
        (a campus has too many devices for a filter each); other topics matching them
        are no device's and are dropped by `World.command`."""
        dialects = {d.dialect for d in self.devices.values()}
        return [
            pattern.format(prefix=self.prefix) for d in sorted(dialects) for pattern in _COMMAND_FILTERS[d]
        ]

    def gateway_ids(self, device: SimDevice) -> tuple[str, ...]:
        """Ids the gateway may know the device by: configured first, then auto-registered."""
        return (device.config_id,) if device.dialect != "native" else (device.auto_id, device.config_id)

    def needs_site_config(self) -> list[str]:
        """Why a gateway with an empty room list cannot run this scenario (empty: it can)."""
        reasons = []
        dialects = sorted({d.dialect for d in self.devices.values()} - {"native"})
        if dialects:
            reasons.append(f"devices speak {', '.join(dialects)}: the site config maps them to rooms")
        if len(self.rooms) > GATEWAY_MAX_AUTO_ROOMS:
            reasons.append(
                f"{len(self.rooms)} rooms: over registry.max_auto_rooms ({GATEWAY_MAX_AUTO_ROOMS})"
            )
        natives = sum(1 for d in self.devices.values() if d.dialect == "native")
        if natives > GATEWAY_MAX_AUTO_DEVICES:
            reasons.append(
                f"{natives} native devices: over registry.max_auto_devices ({GATEWAY_MAX_AUTO_DEVICES})"
            )
        return reasons

    def site_config(self, *, rooms: bool = True) -> dict[str, Any]:
        """A gateway config for this scenario: device time, the rooms (bookable, typed)
        and the devices of other dialects, mapped; native devices register themselves.
        `rooms=False`: only what is needed (clock, limits, dialect devices and their rooms)."""
        dialect_rooms = {d.room for d in self.devices.values() if d.dialect != "native"}
        listed = [r for r in self.rooms.values() if rooms or r.id in dialect_rooms]
        config: dict[str, Any] = {
            "clock": {"mode": "device"},
            "mqtt": {"topic_prefix": self.prefix},
        }
        natives = sum(1 for d in self.devices.values() if d.dialect == "native")
        unlisted_rooms = len(self.rooms) - len(listed)
        if natives > GATEWAY_MAX_AUTO_DEVICES or unlisted_rooms > GATEWAY_MAX_AUTO_ROOMS:
            config["registry"] = {
                "max_auto_rooms": max(GATEWAY_MAX_AUTO_ROOMS, unlisted_rooms + 100),
                "max_auto_devices": max(GATEWAY_MAX_AUTO_DEVICES, natives + 1000),
            }
        config["site"] = {
            "timezone": self.scenario.timezone,
            "rooms": [_room_config(room) for room in listed],
            "devices": [
                _device_config(device)
                for room in listed
                for device in room.devices
                if device.dialect != "native"
            ],
        }
        return config


def _room_config(room: SimRoom) -> dict[str, Any]:
    config: dict[str, Any] = {"id": room.id}
    if room.name != room.id:
        config["name"] = room.name
    config |= {
        "building": room.building,
        "floor": room.floor,
        "type": room.type,
        "capacity": room.capacity,
        "bookable": room.bookable,
    }
    return config


def _device_config(device: SimDevice) -> dict[str, Any]:
    config: dict[str, Any] = {
        "id": device.config_id,
        "room": device.room,
        "dialect": device.dialect,
        "topic": device.speaker.topic,
        "kind": _GATEWAY_KIND.get(device.kind, "sensor"),
        "power_source": "battery" if device.battery else "mains",
    }
    if device.kind == "light":
        config["rated_watts"] = device.watts
    return config


def _dialect_topic(dialect: str, building: str, floor: str, room: str, name: str) -> str | None:
    if dialect == "zigbee2mqtt":
        return f"zigbee2mqtt/{building}/{floor}/{room} {name}"
    if dialect == "tasmota":
        return f"tasmota_{room}_{name}"
    if dialect == "shelly":
        return f"shellyplus1pm-{room}-{name}"
    if dialect == "homie":
        # Homie device ids are lower-case letters, digits and hyphens.
        return f"{HOMIE_BASE}/" + re.sub(r"[^a-z0-9-]+", "-", f"{room}-{name}".lower()).strip("-")
    return None
