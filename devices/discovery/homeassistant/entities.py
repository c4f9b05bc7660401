"""One Home Assistant discovery config read into an `Entity`: what it reads, from
which topics, where it says it is up, what commands it takes, and what could not be
mapped. See the package's docstring for what is read and what is not.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from devices.dialects.base import DecodeError
from devices.discovery.homeassistant.abbreviations import ABBREVIATIONS, DEVICE_ABBREVIATIONS
from devices.discovery.homeassistant.values import (
    Availability,
    Converter,
    Reading,
    canonical,
    to_binary,
    to_brightness,
    to_json_light,
    to_lock_state,
    to_mode,
    to_number,
)
from devices.discovery.model import Problem
from devices.discovery.templates import VALUE, Template, UnsupportedTemplate, compile_template
from devices.fields import RejectReason

COMPONENTS = frozenset({"sensor", "binary_sensor", "light", "switch", "lock", "climate"})
MAX_CONFIG_BYTES = 64 * 1024

# Sensor device class -> field, and the units it accepts (unit -> multiplier, offset).
_SENSOR_UNITS: Mapping[str, tuple[str, Mapping[str | None, tuple[float, float]]]] = {
    "temperature": (
        "temperature",
        {None: (1, 0), "°C": (1, 0), "C": (1, 0), "ºC": (1, 0), "K": (1, -273.15)},
    ),
    "humidity": ("humidity", {None: (1, 0), "%": (1, 0)}),
    "carbon_dioxide": ("co2", {None: (1, 0), "ppm": (1, 0)}),
    "illuminance": ("illuminance", {None: (1, 0), "lx": (1, 0), "lux": (1, 0)}),
    "power": ("power", {None: (1, 0), "W": (1, 0), "kW": (1000, 0)}),
    "energy": ("energy", {"kWh": (1, 0), "Wh": (0.001, 0), "MWh": (1000, 0)}),
    "battery": ("battery", {None: (1, 0), "%": (1, 0)}),
}
_FAHRENHEIT = frozenset({"°F", "F", "ºF"})
_OCCUPANCY_CLASSES = frozenset({"occupancy", "motion", "presence"})
_OPENING_CLASSES = frozenset({"door", "window", "opening", "garage_door"})


@dataclass(frozen=True, slots=True)
class Commands:
    """Where an entity takes commands, in the native vocabulary's terms."""

    entity: str
    state: tuple[str, Any, Any] | None = None  # topic, payload for ON (or LOCK), for OFF (UNLOCK)
    brightness: tuple[str, float] | None = None  # topic, scale
    on_command_type: str = "last"
    json_light: tuple[str, float] | None = None  # topic, brightness scale
    lock: bool = False
    setpoint: str | None = None
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """One discovery config: what it reads, where it says it is up, what it takes."""

    key: str
    component: str
    label: str
    # The entity's own `name` (Tasmota and Zigbee2MQTT name devices through it).
    name: str | None
    device_key: str
    device_name: str | None
    area: str | None
    kind: str | None
    readings: tuple[Reading, ...]
    availability: tuple[Availability, ...]
    commands: Commands | None
    problems: tuple[Problem, ...]
    ignored: tuple[str, ...]
    digest: int


def config_topic_parts(topic: str, prefix: str) -> tuple[str, str | None, str] | None:
    """(component, node id, object id) of a discovery config topic under `prefix`."""
    if not topic.startswith(prefix + "/") or not topic.endswith("/config"):
        return None
    levels = topic[len(prefix) + 1 : -len("/config")].split("/")
    if len(levels) == 2:
        return levels[0], None, levels[1]
    if len(levels) == 3:
        return levels[0], levels[1], levels[2]
    return None


def _expand(raw: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    return {table.get(key, key): value for key, value in raw.items()}


def _substitute_base(config: dict[str, Any]) -> None:
    """HA's `~`: a topic starting or ending with it gets the base topic there."""
    base = config.get("~")
    if not isinstance(base, str):
        return

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("~"):
                return base + value[1:]
            if value.endswith("~"):
                return value[:-1] + base
        return value

    for key, value in list(config.items()):
        if key.endswith("_topic") or key == "topic":
            config[key] = fill(value)
    availability = config.get("availability")
    if isinstance(availability, list):
        config["availability"] = [
            {**entry, "topic": fill(entry.get("topic"))} if isinstance(entry, dict) else entry
            for entry in availability
        ]


def parse_config(topic: str, prefix: str, payload: bytes) -> list[Entity]:
    """The entities a config announces: one, or those of a device-based config; none
    for an empty payload (the entity is removed) or a component not read here.
    Raises DecodeError for a payload that is not a JSON object."""
    parts = config_topic_parts(topic, prefix)
    if parts is None:
        raise DecodeError(RejectReason.UNKNOWN_TOPIC, "not a discovery config topic")
    component, node_id, object_id = parts
    if not payload.strip():
        return []
    if len(payload) > MAX_CONFIG_BYTES:
        raise DecodeError(RejectReason.OVERSIZED, f"{len(payload)} bytes > {MAX_CONFIG_BYTES}")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(RejectReason.INVALID_JSON, str(exc)) from None
    if not isinstance(raw, dict):
        raise DecodeError(RejectReason.NOT_AN_OBJECT, "discovery config is not a JSON object")
    digest = zlib.crc32(payload)
    if component == "device":
        return _device_config(topic, node_id, object_id, raw, digest)
    if component not in COMPONENTS:
        return []
    return [_entity(topic, component, node_id, object_id, raw, digest)]


def _device_config(
    topic: str, node_id: str | None, object_id: str, raw: dict[str, Any], digest: int
) -> list[Entity]:
    """A device-based config: shared options at the top, one entity per `cmps` entry."""
    components = raw.get("cmps", raw.get("components"))
    if not isinstance(components, dict):
        raise DecodeError(RejectReason.INVALID_TYPE, "device config without cmps")
    shared = {key: value for key, value in raw.items() if key not in ("cmps", "components")}
    entities: list[Entity] = []
    for cmp_id, cmp in components.items():
        if not isinstance(cmp, dict):
            continue
        merged = {**shared, **cmp}
        platform = merged.get("p", merged.get("platform"))
        if platform in COMPONENTS:
            entities.append(
                _entity(f"{topic}#{cmp_id}", str(platform), node_id or object_id, str(cmp_id), merged, digest)
            )
    return entities


def _entity(
    key: str, component: str, node_id: str | None, object_id: str, raw: dict[str, Any], digest: int
) -> Entity:
    config = _expand(raw, ABBREVIATIONS)
    if isinstance(config.get("availability"), list):
        config["availability"] = [
            _expand(entry, ABBREVIATIONS) if isinstance(entry, dict) else entry
            for entry in config["availability"]
        ]
    _substitute_base(config)
    device = config.get("device")
    device = _expand(device, DEVICE_ABBREVIATIONS) if isinstance(device, dict) else {}
    unique_id = config.get("unique_id")
    label = str(unique_id or (f"{node_id}/{object_id}" if node_id else object_id))
    builder = _Builder(label, config)
    if component == "sensor":
        builder.sensor()
    elif component == "binary_sensor":
        builder.binary_sensor()
    elif component == "light":
        builder.light()
    elif component == "switch":
        builder.switch()
    elif component == "lock":
        builder.lock()
    else:
        builder.climate()
    builder.availability_of()
    name = device.get("name") if isinstance(device.get("name"), str) else None
    area = device.get("suggested_area") if isinstance(device.get("suggested_area"), str) else None
    return Entity(
        key=key,
        component=component,
        label=label,
        name=config.get("name") if isinstance(config.get("name"), str) else None,
        device_key=_device_key(device, unique_id, node_id, object_id),
        device_name=name,
        area=area,
        kind=builder.kind,
        readings=tuple(builder.readings),
        availability=tuple(builder.availability),
        commands=builder.commands,
        problems=tuple(builder.problems),
        ignored=tuple(builder.ignored),
        digest=digest,
    )


def _device_key(device: Mapping[str, Any], unique_id: Any, node_id: str | None, object_id: str) -> str:
    """What ties an announcement's entities into one device: the device's first
    identifier, else its first connection, else the node id, else the entity's own."""
    identifiers = device.get("identifiers")
    if isinstance(identifiers, str) and identifiers:
        return identifiers
    if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], str | int):
        return str(identifiers[0])
    connections = device.get("connections")
    if isinstance(connections, list) and connections and isinstance(connections[0], list):
        return ":".join(str(part) for part in connections[0])
    if node_id:
        return node_id
    return str(unique_id or object_id)


class _Builder:
    """Collects what one entity config reads, takes and could not map."""

    def __init__(self, label: str, config: Mapping[str, Any]) -> None:
        self.label = label
        self.config = config
        self.kind: str | None = None
        self.readings: list[Reading] = []
        self.availability: list[Availability] = []
        self.commands: Commands | None = None
        self.problems: list[Problem] = []
        self.ignored: list[str] = []

    # Helpers

    def _topic(self, key: str) -> str | None:
        topic = self.config.get(key)
        if topic is None:
            return None
        problem = topic_problem(topic)
        if problem is not None:
            self.problems.append(Problem(self.label, key, problem))
            return None
        assert isinstance(topic, str)
        return topic

    def _template(self, key: str, fallback: str | None = None) -> Template | None:
        """The template at `key` (or `fallback`), `VALUE` when neither is set, None (and
        a problem) when it is outside the supported forms."""
        source = self.config.get(key)
        used = key
        if source is None and fallback is not None:
            source, used = self.config.get(fallback), fallback
        if source is None:
            return VALUE
        if not isinstance(source, str):
            self.problems.append(Problem(self.label, used, "not a string"))
            return None
        try:
            return compile_template(source)
        except UnsupportedTemplate as exc:
            self.problems.append(Problem(self.label, used, f"unsupported template: {exc}", source))
            return None

    def _read(
        self, topic_key: str, template: Template | None, fields: tuple[str, ...], convert: Converter
    ) -> None:
        topic = self._topic(topic_key)
        if topic is None:
            if topic_key not in self.config:
                self.problems.append(Problem(self.label, topic_key, "missing: nothing to read"))
            return
        if template is not None:
            self.readings.append(Reading(self.label, topic, template, fields, convert))

    def _no_command_template(self, *keys: str) -> bool:
        found = [key for key in keys if self.config.get(key) is not None]
        for key in found:
            self.problems.append(
                Problem(self.label, key, "command templates are not supported: no commands", self.config[key])
            )
        return not found

    # Components

    def sensor(self) -> None:
        device_class = self.config.get("device_class")
        if device_class not in _SENSOR_UNITS:
            self.ignored.append(
                f"{self.label}: device_class {device_class!r} not in the vocabulary"
                if device_class is not None
                else f"{self.label}: no device_class"
            )
            return
        field, units = _SENSOR_UNITS[str(device_class)]
        unit = self.config.get("unit_of_measurement")
        unit = unit.strip() or None if isinstance(unit, str) else None
        if field == "temperature" and unit in _FAHRENHEIT:
            scale: tuple[float, float] | None = (5 / 9, -32 * 5 / 9)
        else:
            scale = units.get(unit)
        if scale is None:
            self.problems.append(
                Problem(
                    self.label, "unit_of_measurement", f"{unit!r} does not fit device_class {device_class}"
                )
            )
            return
        self._read(
            "state_topic", self._template("value_template"), (field,), to_number(self.label, field, scale)
        )

    def binary_sensor(self) -> None:
        device_class = self.config.get("device_class")
        on, off = self.config.get("payload_on", "ON"), self.config.get("payload_off", "OFF")
        if device_class in _OCCUPANCY_CLASSES:
            fields: tuple[str, ...] = (
                ("occupancy", "presence") if device_class == "presence" else ("occupancy",)
            )
            convert = to_binary(self.label, on, off, lambda value: dict.fromkeys(fields, value))
        elif device_class in _OPENING_CLASSES:
            fields = ("contact",)
            # HA's on is open; the vocabulary's contact is true when closed.
            convert = to_binary(self.label, on, off, lambda value: {"contact": not value})
        else:
            self.ignored.append(
                f"{self.label}: binary_sensor class {device_class!r} not in the vocabulary"
                if device_class is not None
                else f"{self.label}: binary_sensor without device_class"
            )
            return
        self._read("state_topic", self._template("value_template"), fields, convert)

    def switch(self) -> None:
        self.kind = "switch"
        on, off = self.config.get("payload_on", "ON"), self.config.get("payload_off", "OFF")
        state_on, state_off = self.config.get("state_on", on), self.config.get("state_off", off)
        if "state_topic" in self.config:
            convert = to_binary(
                self.label, state_on, state_off, lambda value: {"state": "ON" if value else "OFF"}
            )
            self._read("state_topic", self._template("value_template"), ("state",), convert)
        topic = self._topic("command_topic")
        if topic is not None and self._no_command_template("command_template"):
            self.commands = Commands(self.label, state=(topic, on, off))

    def lock(self) -> None:
        self.kind = "lock"
        locked = self.config.get("state_locked", "LOCKED")
        unlocked = self.config.get("state_unlocked", "UNLOCKED")
        if "state_topic" in self.config:
            self._read(
                "state_topic", self._template("value_template"), ("state",), to_lock_state(locked, unlocked)
            )
        topic = self._topic("command_topic")
        if topic is not None and self._no_command_template("command_template"):
            lock, unlock = (
                self.config.get("payload_lock", "LOCK"),
                self.config.get("payload_unlock", "UNLOCK"),
            )
            self.commands = Commands(self.label, state=(topic, lock, unlock), lock=True)

    def light(self) -> None:
        self.kind = "light"
        schema = self.config.get("schema", "default")
        scale = self.config.get("brightness_scale", 255)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
            self.problems.append(
                Problem(self.label, "brightness_scale", f"{scale!r} is not a positive number")
            )
            return
        if schema == "json":
            if "state_topic" in self.config:
                root = Template("{{ value_json }}", True, lambda inputs: inputs.json)
                self._read(
                    "state_topic", root, ("state", "brightness"), to_json_light(self.label, float(scale))
                )
            topic = self._topic("command_topic")
            if topic is not None:
                self.commands = Commands(self.label, json_light=(topic, float(scale)))
            return
        if schema not in ("default", "basic"):
            self.problems.append(Problem(self.label, "schema", f"light schema {schema!r} is not supported"))
            return
        on, off = self.config.get("payload_on", "ON"), self.config.get("payload_off", "OFF")
        if "state_topic" in self.config:
            convert = to_binary(self.label, on, off, lambda value: {"state": "ON" if value else "OFF"})
            # Older announcements (Tasmota 2018) give the light's template as value_template.
            template = self._template("state_value_template", "value_template")
            self._read("state_topic", template, ("state",), convert)
        if "brightness_state_topic" in self.config:
            template = self._template("brightness_value_template")
            self._read(
                "brightness_state_topic", template, ("brightness",), to_brightness(self.label, float(scale))
            )
        topic = self._topic("command_topic")
        if topic is None or not self._no_command_template("command_on_template", "command_off_template"):
            return
        brightness = None
        bright_topic = self._topic("brightness_command_topic")
        if bright_topic is not None and self._no_command_template("brightness_command_template"):
            brightness = (bright_topic, float(scale))
        on_type = self.config.get("on_command_type", "last")
        self.commands = Commands(
            self.label,
            state=(topic, on, off),
            brightness=brightness,
            on_command_type=on_type if on_type in ("first", "last", "brightness") else "last",
        )

    def climate(self) -> None:
        self.kind = "hvac"
        unit = self.config.get("temperature_unit")
        scale = (5 / 9, -32 * 5 / 9) if unit in _FAHRENHEIT else (1.0, 0.0)
        if "current_temperature_topic" in self.config:
            template = self._template("current_temperature_template")
            self._read(
                "current_temperature_topic",
                template,
                ("temperature",),
                to_number(self.label, "temperature", scale),
            )
        if "temperature_state_topic" in self.config:
            template = self._template("temperature_state_template")
            self._read(
                "temperature_state_topic", template, ("setpoint",), to_number(self.label, "setpoint", scale)
            )
        if "mode_state_topic" in self.config:
            self._read("mode_state_topic", self._template("mode_state_template"), ("mode",), to_mode)
        setpoint = self._topic("temperature_command_topic")
        if setpoint is not None and unit in _FAHRENHEIT:
            self.problems.append(
                Problem(self.label, "temperature_command_topic", "°F setpoints are not sent")
            )
            setpoint = None
        if setpoint is not None and not self._no_command_template("temperature_command_template"):
            setpoint = None
        mode = self._topic("mode_command_topic")
        if mode is not None and not self._no_command_template("mode_command_template"):
            mode = None
        if setpoint is not None or mode is not None:
            self.commands = Commands(self.label, setpoint=setpoint, mode=mode)

    def availability_of(self) -> None:
        """`availability_topic` or the `availability` list; entries whose topic or template
        cannot be read are reported and left out."""
        entries: list[Mapping[str, Any]] = []
        listed = self.config.get("availability")
        if isinstance(listed, list):
            entries = [_expand(entry, ABBREVIATIONS) for entry in listed if isinstance(entry, dict)]
        elif self.config.get("availability_topic") is not None:
            entries = [
                {
                    "topic": self.config["availability_topic"],
                    "payload_available": self.config.get("payload_available", "online"),
                    "payload_not_available": self.config.get("payload_not_available", "offline"),
                    "value_template": self.config.get("availability_template"),
                }
            ]
        for index, entry in enumerate(entries):
            what = f"availability[{index}]" if isinstance(listed, list) else "availability_topic"
            topic = entry.get("topic")
            problem = topic_problem(topic)
            if problem is not None:
                self.problems.append(Problem(self.label, what, problem))
                continue
            assert isinstance(topic, str)
            source = entry.get("value_template")
            template = VALUE
            if source is not None:
                try:
                    template = compile_template(str(source))
                except UnsupportedTemplate as exc:
                    self.problems.append(
                        Problem(
                            self.label, f"{what}.value_template", f"unsupported template: {exc}", str(source)
                        )
                    )
                    continue
            online = canonical(entry.get("payload_available", "online"))
            offline = canonical(entry.get("payload_not_available", "offline"))
            self.availability.append(Availability(topic, template, online, offline))


def topic_problem(topic: Any) -> str | None:
    """Why a topic from an announcement cannot be followed; None when it can."""
    if not isinstance(topic, str) or not topic:
        return "not a topic"
    if "+" in topic or "#" in topic or "\x00" in topic:
        return "holds an MQTT wildcard"
    if topic.startswith("$") or len(topic) > 512:
        return "not a device topic"
    return None
