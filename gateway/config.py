"""The site config (DESIGN.md §3): YAML validated by pydantic, `OFFICEGW_*` env overrides.

`load_settings(path)` is the only way in; it raises `ConfigError` carrying one
line per problem (`site.rooms[2].capacity: must be >= 0`), never a traceback.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from devices.dialects import DIALECTS
from devices.quality import QualityParams

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
# Floors are topic levels ("2", "B1", "mezzanine"); YAML writes `floor: 2` as an int.
FloorName = Annotated[
    str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v), Field(min_length=1)
]

RoomType = Literal[
    "meeting", "office", "open", "restroom", "kitchen", "phone_booth", "lobby", "other", "unknown"
]
Role = Literal["viewer", "booking", "operator", "admin"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Section):
    id: Identifier = "officegw"
    # Shard by building: subscribe only to these buildings' native topics.
    buildings: list[Identifier] = []
    # Key for badge pseudonyms; random per process when unset (pseudonyms then
    # change on restart).
    pseudonym_key: str | None = Field(default=None, min_length=16)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MqttSection(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = Field(default="office", min_length=1, pattern=r"^[^#+]+$")
    protocol: Literal["5", "3.1.1"] = "5"
    username: str | None = None
    password: str | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    # How long the broker keeps the session (and queues QoS 1 messages) while the
    # gateway is away.
    session_expiry: int = Field(default=7 * 86_400, ge=0)
    # MQTT 5: how many QoS 1 messages the broker may send before we acknowledge
    # any. Acknowledgements wait for the history commit (~50 ms), so this bounds
    # throughput: 1,000 allows ~20k msgs/s. The broker's max_inflight_messages
    # must be at least as high.
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    reconnect_min_delay: int = Field(default=1, ge=1)
    reconnect_max_delay: int = Field(default=30, ge=1)
    # gateway/mqtt/fast_path.py's FastPathClient (paho-mqtt 2.2.x only; other
    # versions fall back by themselves); false: plain paho `Client`.
    fast_path: bool = True
    # Follow the broker's $SYS counters (mosquitto: messages it dropped because a
    # session's queue was full) into /metrics and a warning; false for a broker
    # that must not be asked for $SYS topics.
    broker_stats: bool = True

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError("must look like mqtt://host:port")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("port must be a number from 1 to 65535") from None
        return url

    @field_validator("topic_prefix")
    @classmethod
    def _no_edge_slashes(cls, prefix: str) -> str:
        if prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError("must not start or end with '/'")
        return prefix

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 1883


class ApiKey(_Section):
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    role: Role = "viewer"
    buildings: list[Identifier] = []


class ApiSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    keys: list[ApiKey] = []


class RetentionSection(_Section):
    # Days each class of data is kept; older rows are deleted in the background.
    readings: float = Field(default=90.0, gt=0)
    events: float = Field(default=365.0, gt=0)


class StorageSection(_Section):
    path: str = "var/officegw.db"
    # How often the state snapshot (rule timers, overrides) is saved; room states
    # are committed with the readings that change them.
    snapshot_interval: float = Field(default=5.0, gt=0)
    # Readings, events and room states are committed at most this long after they
    # happen (and MQTT messages acknowledged after that).
    commit_interval: float = Field(default=0.05, gt=0, le=5)
    # Record every reading (and acknowledge messages only once they are committed).
    # Off: readings are not kept (events and room states still are) and messages are
    # acknowledged on arrival.
    history: bool = True
    retention: RetentionSection = RetentionSection()


class InfluxSection(_Section):
    # Export every reading and event to InfluxDB 2 (or anything speaking its write
    # API) when `url` is set; see gateway/storage/influx/exporter.py.
    url: str | None = None
    token: str | None = None
    org: str | None = None
    bucket: str | None = None
    # The durable queue of points not yet acknowledged by the server; default
    # `<storage.path>.influx-buffer`. When full, new points are dropped (counted).
    buffer_path: str | None = None
    buffer_max_rows: int = Field(default=1_000_000, ge=1)
    # Points per write request, and how long a partial batch may wait for more.
    batch_size: int = Field(default=5_000, ge=1, le=100_000)
    flush_interval: float = Field(default=1.0, gt=0, le=3600)
    # Back-off after a failed write: doubling from min to max.
    retry_min_delay: float = Field(default=1.0, gt=0)
    retry_max_delay: float = Field(default=60.0, gt=0)
    # Seconds one write request may take.
    timeout: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://host:8086")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("port must be a number from 1 to 65535") from None
        return url

    @model_validator(mode="after")
    def _complete(self) -> InfluxSection:
        if self.url is not None:
            missing = [name for name in ("org", "bucket") if not getattr(self, name)]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required when url is set")
        if self.retry_max_delay < self.retry_min_delay:
            raise ValueError("retry_max_delay must be >= retry_min_delay")
        return self

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def buffer_file(self, storage_path: str) -> Path:
        return Path(self.buffer_path) if self.buffer_path else Path(f"{storage_path}.influx-buffer")


class RoomConfig(_Section):
    id: Identifier
    name: str | None = None
    building: Identifier
    floor: FloorName
    type: RoomType = "unknown"
    capacity: int = Field(default=0, ge=0)
    features: list[str] = []
    bookable: bool = False
    vacancy_timeout: float | None = Field(default=None, gt=0)
    # Daylight dimming aims at this illuminance on the work surface.
    lux_target: float | None = Field(default=None, gt=0, le=5000)
    comfort_setpoint: float = Field(default=21.0, ge=5, le=35)
    setback_setpoint: float = Field(default=17.0, ge=5, le=35)


DeviceKind = Literal["light", "hvac", "lock", "sensor", "switch", "badge_reader"]


class DeviceConfig(_Section):
    id: Identifier
    room: Identifier
    name: str | None = None
    dialect: str = "native"
    topic: str | None = None
    # What the rules may command; inferred from what the device reports when unset.
    kind: DeviceKind | None = None
    # For energy accounting of lights that report no power: watts at full brightness.
    rated_watts: float | None = Field(default=None, gt=0, le=100_000)
    # Decides the last-seen timeout; inferred from reported battery levels when unset.
    power_source: Literal["mains", "battery"] | None = None

    @model_validator(mode="after")
    def _mapped_by_topic(self) -> DeviceConfig:
        if self.dialect != "native" and not self.topic:
            raise ValueError(
                f"topic: required for dialect {self.dialect!r} (e.g. zigbee2mqtt/<friendly name>)"
            )
        if self.topic is not None and ("+" in self.topic or "#" in self.topic):
            raise ValueError("topic: must not contain MQTT wildcards (+ or #)")
        return self

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, dialect: str) -> str:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}")
        return dialect


class SiteSection(_Section):
    # IANA time zone of the site: time-of-day rules and "today" use it.
    timezone: str = "UTC"
    rooms: list[RoomConfig] = []
    devices: list[DeviceConfig] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)") from None
        return name

    @model_validator(mode="after")
    def _consistent(self) -> SiteSection:
        problems: list[str] = []
        room_ids: set[str] = set()
        for index, room in enumerate(self.rooms):
            if room.id in room_ids:
                problems.append(f"rooms[{index}].id: duplicate room id {room.id!r}")
            room_ids.add(room.id)
        device_ids: set[str] = set()
        for index, device in enumerate(self.devices):
            if device.id in device_ids:
                problems.append(f"devices[{index}].id: duplicate device id {device.id!r}")
            device_ids.add(device.id)
            if device.room not in room_ids:
                problems.append(f"devices[{index}].room: unknown room {device.room!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class OccupancySection(_Section):
    # Seconds without motion before an occupied room turns vacant.
    vacancy_timeout: float = Field(default=600.0, gt=0)
    vacancy_timeouts: dict[RoomType, float] = {}


class BookingsSection(_Section):
    checkin_window: int = Field(default=600, ge=0)
    release_when_vacant: int = Field(default=900, ge=0)


class AvailabilitySection(_Section):
    # A device that has said nothing for this long is offline (Zigbee2MQTT's defaults:
    # mains devices report often, battery devices may sleep for a day).
    mains_timeout: float = Field(default=600.0, gt=0)
    battery_timeout: float = Field(default=90_000.0, gt=0)


class QualitySection(_Section):
    # Flood protection: each device may send `max_rate` messages a second on
    # average and `burst` at once; what comes faster is throttled (the newest
    # throttled message is still applied once the device is back within budget).
    max_rate: float = Field(default=10.0, gt=0)
    burst: float = Field(default=20.0, ge=1)
    # After each broker (re)connect the broker delivers its queue as one burst:
    # no throttling for this long.
    reconnect_grace: float = Field(default=30.0, ge=0)
    battery_low: float = Field(default=15.0, ge=0, le=100)
    # An occupancy sensor saying "occupied" this long with no other device of its
    # room seeing anyone is flagged as stuck.
    stuck_after: float = Field(default=4 * 3600.0, gt=0)
    # A device's schema is the fields of its first this-many messages (and first
    # this-many seconds); fields that appear later are flagged as schema drift.
    schema_learn_messages: int = Field(default=50, ge=1)
    schema_learn_seconds: float = Field(default=3600.0, ge=0)

    def params(self) -> QualityParams:
        return QualityParams(
            max_rate=self.max_rate,
            burst=self.burst,
            battery_low=self.battery_low,
            stuck_after=self.stuck_after,
            schema_learn_messages=self.schema_learn_messages,
            schema_learn_seconds=self.schema_learn_seconds,
        )


class ActuationSection(_Section):
    # Seconds to wait for a device to report a commanded state before re-sending
    # (doubling each time), and how many sends before an alert.
    confirm_timeout: float = Field(default=3.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    # Rules switch one device at most once per this many seconds.
    min_switch_interval: float = Field(default=30.0, ge=0)
    # When a manual change stops pausing the rules: when the room is next vacant, or never.
    override_release: Literal["vacant", "never"] = "vacant"
    booking_hold: float = Field(default=3600.0, gt=0)
    safety_hold: float = Field(default=3600.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OFFICEGW_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    gateway: GatewaySection = GatewaySection()
    mqtt: MqttSection = MqttSection()
    api: ApiSection = ApiSection()
    storage: StorageSection = StorageSection()
    influxdb: InfluxSection | None = None
    site: SiteSection = SiteSection()
    occupancy: OccupancySection = OccupancySection()
    rules: str | None = None
    actuation: ActuationSection = ActuationSection()
    availability: AvailabilitySection = AvailabilitySection()
    quality: QualitySection = QualitySection()
    bookings: BookingsSection = BookingsSection()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file comes in as init kwargs; the environment overrides it.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _loopback_unless_keys(self) -> Settings:
        if not self.api.keys and not _is_loopback(self.api.host):
            raise ValueError(
                f"api.host: {self.api.host!r} is not loopback; configure api.keys "
                "to serve other hosts (without keys the API has no authentication)"
            )
        return self

    def vacancy_timeout_for(self, room: RoomConfig | None) -> float:
        if room is not None and room.vacancy_timeout is not None:
            return room.vacancy_timeout
        if room is not None and room.type in self.occupancy.vacancy_timeouts:
            return self.occupancy.vacancy_timeouts[room.type]
        return self.occupancy.vacancy_timeout


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `path: reason` per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems

    def render(self) -> str:
        lines = [f"invalid config {self.source}:"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from a YAML file (optional), the environment, then `overrides` on top."""
    source = str(path) if path is not None else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_yaml(Path(path))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, _describe_all(exc)) from None


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Settings from an in-memory config (tests, demo), environment still applied."""
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError("(config)", _describe_all(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}invalid YAML: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["top level must be a mapping of sections (gateway, mqtt, site, ...)"])
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "literal[")) or part in ("str", "int", "float"):
            continue  # pydantic's names for union branches and validators, not config keys
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


_BOUNDS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "has characters that are not allowed (pattern {pattern})",
}


def _describe_all(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        lines += _describe(error).split("\n")
    return lines


def _describe(error: Any) -> str:
    path = _path(tuple(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{path}: is required"
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind in _BOUNDS:
        return f"{path}: {_BOUNDS[kind].format(**ctx)}"
    if kind == "value_error":
        # Our own validators: cross-field checks name their sub-paths, one per line.
        message = str(ctx.get("error", error["msg"]))
        if message.startswith(("rooms[", "devices[", "api.")):
            prefix = f"{path}." if path != "(top level)" else ""
            return "\n".join(f"{prefix}{part}" for part in message.split("\n"))
        return f"{path}: {message}"
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}"


def environment_keys() -> list[str]:
    """The OFFICEGW_* variables in force, for the start-up log line."""
    return sorted(key for key in os.environ if key.startswith("OFFICEGW_"))
