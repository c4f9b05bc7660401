"""The site config (DESIGN.md §3): YAML validated by pydantic, `OFFICEGW_*` env overrides.

`load_settings(path)` is the only way in; it raises `ConfigError` carrying one
line per problem (`site.rooms[2].capacity: must be >= 0`), never a traceback: every
problem in one pass, the checks across fields (unknown rooms, duplicate ids) included
even when other parts of the file are wrong, each naming the environment variable
its value came from when that was not the file. The lines are worded by the
formatter shared with rules files (rules.problems).
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from collections.abc import Collection, Mapping, Sequence
from datetime import time
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
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from devices.dialects import DIALECTS
from devices.quality import QualityParams
from rules.bookings import BookingPolicy
from rules.problems import Loc, LocatedProblems, ProblemsError, Vocabulary, describe, line
from rules.reporting.calendar import DailyWindow, Tariff, TariffBand
from rules.reporting.comfort import Band
from rules.spec import WEEKDAYS, ClockTime, Weekday

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
TOPIC_PREFIX_PATTERN = r"^[^#+]+$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
# Floors are topic levels ("2", "B1", "mezzanine"); YAML writes `floor: 2` as an int.
FloorName = Annotated[
    str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v), Field(min_length=1)
]
# A room's calendar names and addresses (`orion@example.com`, "Orion (HQ 2)"): one or a list.
CalendarNames = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=254)]],
    BeforeValidator(lambda v: [v] if isinstance(v, str) else v),
]

# Floor plans are at most this many grid cells wide and high.
PLAN_CELLS = 100

RoomType = Literal[
    "meeting", "office", "open", "restroom", "kitchen", "phone_booth", "lobby", "other", "unknown"
]
Role = Literal["viewer", "booking", "operator", "admin"]


# Checks across fields. Each is a function of plain values, so that it runs both
# as the model's validator and, when pydantic has stopped short of the validator
# (it skips a model's own checks once one of its fields fails), on whatever of the
# raw config can still be read: every problem shows in one pass.


def _topic_problem(dialect: str, topic: str | None, channel: object = None) -> str | None:
    if dialect != "native" and not topic:
        return f"topic: required for dialect {dialect!r} (e.g. zigbee2mqtt/<friendly name>)"
    if topic is not None and ("+" in topic or "#" in topic):
        return "topic: must not contain MQTT wildcards (+ or #)"
    if channel is not None and DIALECTS[dialect].channel is None:
        with_channels = ", ".join(sorted(name for name, d in DIALECTS.items() if d.channel is not None))
        return f"channel: dialect {dialect!r} has no channels (only {with_channels})"
    return None


def _shared_topics(devices: Sequence[Mapping[str, Any]]) -> list[tuple[Loc, str]]:
    """Two entries may map the same topic only as different channels of one device
    (a Shelly Pro 2PM's `channel: 0` and `channel: 1`): anything else would have one
    device's messages applied to two."""
    problems: list[tuple[Loc, str]] = []
    owner: dict[tuple[str, object], object] = {}
    for index, device in enumerate(devices):
        dialect, topic, channel = device.get("dialect", "native"), device.get("topic"), device.get("channel")
        if dialect == "native" or not isinstance(topic, str) or dialect not in DIALECTS:
            continue
        if not isinstance(channel, int | None):
            continue  # reported by the field's own check
        key = (topic, channel if channel is not None or DIALECTS[dialect].channel is None else 0)
        if key in owner:
            which = "topic" if key[1] is None else f"topic and channel {key[1]}"
            problems.append((("devices", index, "topic"), f"{which} already mapped by device {owner[key]!r}"))
        else:
            owner[key] = device.get("id")
    return problems


def _site_references(
    room_ids: Sequence[object] | None, devices: Sequence[tuple[object, object]]
) -> list[tuple[Loc, str]]:
    """Duplicate ids and devices in rooms the site does not have; `room_ids` None when
    the rooms cannot be read at all (then no room is known to be missing)."""
    problems: list[tuple[Loc, str]] = []
    known: set[str] = set()
    for index, room_id in enumerate(room_ids or ()):
        if isinstance(room_id, str):
            if room_id in known:
                problems.append((("rooms", index, "id"), f"duplicate room id {room_id!r}"))
            known.add(room_id)
    device_ids: set[str] = set()
    for index, (device_id, room) in enumerate(devices):
        if isinstance(device_id, str):
            if device_id in device_ids:
                problems.append((("devices", index, "id"), f"duplicate device id {device_id!r}"))
            device_ids.add(device_id)
        if room_ids is not None and isinstance(room, str) and room not in known:
            problems.append((("devices", index, "room"), f"unknown room {room!r}"))
    return problems


def _calendar_problems(calendars: Sequence[tuple[object, object]]) -> list[tuple[Loc, str]]:
    """A calendar name or address may stand for one room only (compared case-insensitively):
    `calendars` holds each room's (id, calendar) as written."""
    problems: list[tuple[Loc, str]] = []
    owner: dict[str, object] = {}
    for index, (room_id, calendar) in enumerate(calendars):
        names = [calendar] if isinstance(calendar, str) else calendar if isinstance(calendar, list) else []
        for name in names:
            if not isinstance(name, str):
                continue
            key = name.strip().casefold()
            if key in owner and owner[key] != room_id:
                problems.append(
                    (("rooms", index, "calendar"), f"calendar {name!r} is room {owner[key]!r}'s already")
                )
            owner.setdefault(key, room_id)
    return problems


def _placement_problem(x: object, y: object, w: object, h: object) -> str | None:
    """A room's place on its floor plan: x and y together, w and h only with them."""
    if (x is None) != (y is None):
        return "x and y: give both (the room's column and row on its floor plan) or neither"
    if x is None and (w is not None or h is not None):
        return "w and h: need x and y (where the room starts on its floor plan)"
    return None


def _plan_cells(room: Mapping[str, Any]) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of a room as written, None when it has no place (or no valid one)."""
    written = (room.get("x"), room.get("y"), *(1 if room.get(k) is None else room.get(k) for k in ("w", "h")))
    cells = [v for v in written if isinstance(v, int) and not isinstance(v, bool)]
    if len(cells) != len(written):
        return None
    x, y, w, h = cells
    if 0 <= x <= PLAN_CELLS and 0 <= y <= PLAN_CELLS and 1 <= w <= PLAN_CELLS and 1 <= h <= PLAN_CELLS:
        return x, y, w, h
    return None


def _layout_overlaps(rooms: Sequence[Mapping[str, Any]]) -> list[tuple[Loc, str]]:
    """Rooms of one floor whose cells on the floor plan overlap (the dashboard would
    draw one over the other): the later room is named, with the one it overlaps."""
    found: dict[int, str] = {}
    floors: dict[tuple[str, str], list[tuple[tuple[int, int, int, int], int]]] = {}
    for index, room in enumerate(rooms):
        cells = _plan_cells(room)
        if cells is not None:
            floors.setdefault((str(room.get("building")), str(room.get("floor"))), []).append((cells, index))
    for (building, floor), placed in floors.items():
        placed.sort()  # by x: a room starting right of another's end overlaps none after it
        for at, ((x, y, w, h), index) in enumerate(placed):
            for (x2, y2, _, h2), other in placed[at + 1 :]:
                if x2 >= x + w:
                    break
                if y2 < y + h and y < y2 + h2:
                    first, later = sorted((index, other))
                    where = f"on the plan of floor {floor} of {building}"
                    found.setdefault(later, f"overlaps room {rooms[first].get('id')!r} {where}")
    return [(("rooms", index), found[index]) for index in sorted(found)]


def _exposure_problem(host: str, keys: bool) -> str | None:
    if keys or _is_loopback(host):
        return None
    return (
        f"{host!r} is not loopback; configure api.keys "
        "to serve other hosts (without keys the API has no authentication)"
    )


def _influx_problems(section: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if isinstance(section.get("url"), str):
        missing = [name for name in ("org", "bucket") if not section.get(name)]
        if missing:
            problems.append(f"{' and '.join(missing)} required when url is set")
    defaults = InfluxSection.model_fields
    low = _number(section.get("retry_min_delay", defaults["retry_min_delay"].default))
    high = _number(section.get("retry_max_delay", defaults["retry_max_delay"].default))
    if low is not None and high is not None and high < low:
        problems.append("retry_max_delay must be >= retry_min_delay")
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
    # Carry out API replicas' commands for this gateway's buildings (booking writes,
    # lights, device commands on officegw/command/<building>); see README "API replicas".
    commands: bool = True
    # Seconds a thread holding the GIL runs before one that waits for it gets it
    # (sys.setswitchinterval), set by `officegw run` and the demo: see
    # gateway/runtime/gc_schedule.py. CPython's own 5 ms: 1 ms did not shorten
    # event -> actuation's tail in benchmarks/actuation.py (README, Benchmarks).
    gil_switch_interval: float = Field(default=0.005, ge=0.0001, le=0.1)


class MqttSection(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = Field(default="office", min_length=1, pattern=TOPIC_PREFIX_PATTERN)
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
    # Request bodies larger than this are refused (413) before they are read.
    max_body_bytes: int = Field(default=65_536, ge=1, le=16 * 1024 * 1024)
    # A client address with this many failed authentications (401) within
    # auth_failure_window seconds gets 429 for auth_lockout seconds, before its key
    # is even looked at; 0 turns the lockout off.
    auth_failure_limit: int = Field(default=20, ge=0)
    auth_failure_window: float = Field(default=60.0, gt=0, le=86_400)
    auth_lockout: float = Field(default=60.0, gt=0, le=86_400)


class ReplicaSection(_Section):
    """`officegw api`: an API replica (README "API replicas")."""

    # Its name on the broker: client id officegw-api-<id>, replies on
    # officegw/reply/<id>/...; unique per replica. Default: <host name>-<api.port>.
    id: Identifier | None = None
    # How long a command (a booking write, lights) waits for the owning gateway's answer;
    # the gateway refuses it after that (a door is never unlocked late).
    command_timeout: float = Field(default=5.0, gt=0, le=60)
    # Bookings are read again from the store after every notice of a change and at
    # least this often (a notice lost with a broker restart).
    bookings_reload: float = Field(default=10.0, gt=0, le=3600)
    # How often new events are looked for in the store, for GET /v1/stream.
    events_poll: float = Field(default=0.5, gt=0, le=60)


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
    # Back-pressure: at this many messages (or payload bytes) read from the broker and
    # not yet committed, the gateway stops reading until the history has committed
    # half of them; the broker holds the rest. Memory stays flat under any overload.
    max_uncommitted_messages: int = Field(default=10_000, ge=100, le=1_000_000)
    max_uncommitted_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    # Shared stores of a campus of gateways (postgresql://user:password@host:5432/db):
    # bookings, events, alert states, webhooks, room and device states and the
    # snapshot go to PostgreSQL, each gateway's rows keyed by its `gateway.id`;
    # readings stay in the SQLite file at `path` (see gateway/storage/open_stores.py).
    # With it set, `officegw run` also holds the shard's advisory lock there before it
    # connects to the broker or opens `path` (README: Standby takeover).
    url: str | None = None
    # Connections the gateway keeps to PostgreSQL (readers and the history writer).
    pool_size: int = Field(default=4, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must look like postgresql://user:password@host:5432/database")
        if not parts.path.strip("/") and "dbname=" not in parts.query:
            raise ValueError("must name a database: postgresql://host:5432/<database>")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("port must be a number from 1 to 65535") from None
        return url

    @property
    def shared(self) -> bool:
        """Whether the shared stores are in PostgreSQL (else all in the SQLite file)."""
        return self.url is not None


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
        problems = _influx_problems(self.model_dump())
        if problems:
            raise LocatedProblems([((), problem) for problem in problems])
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
    # Booking timers of this room (seconds); by room type, then `bookings.*`, when unset.
    checkin_window: float | None = Field(default=None, ge=0)
    release_when_vacant: float | None = Field(default=None, gt=0)
    # Calendar names and addresses that stand for this room in imported calendars
    # (an attendee `mailto:`, the calendar's X-WR-CALNAME, a LOCATION).
    calendar: CalendarNames = []
    # Where the dashboard draws the room on its floor's plan, in grid cells from the
    # top left: column x, row y, w columns wide and h rows high (1 when unset).
    # Rooms without x and y fill the free cells.
    x: int | None = Field(default=None, ge=0, le=PLAN_CELLS)
    y: int | None = Field(default=None, ge=0, le=PLAN_CELLS)
    w: int | None = Field(default=None, ge=1, le=PLAN_CELLS)
    h: int | None = Field(default=None, ge=1, le=PLAN_CELLS)

    @model_validator(mode="after")
    def _placed(self) -> RoomConfig:
        problem = _placement_problem(self.x, self.y, self.w, self.h)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def plan_cell(self) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) on the floor plan, None for a room placed by the dashboard."""
        if self.x is None or self.y is None:
            return None
        return self.x, self.y, self.w or 1, self.h or 1


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
    # The channel this entry stands for, for dialects whose devices have several
    # (Shelly: the id of its `switch:N`, `light:N`, `temperature:N`, ... components; 0 when unset).
    channel: int | None = Field(default=None, ge=0, le=65_535)

    @model_validator(mode="after")
    def _mapped_by_topic(self) -> DeviceConfig:
        problem = _topic_problem(self.dialect, self.topic, self.channel)
        if problem is not None:
            raise ValueError(problem)
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
        problems = _site_references(
            [room.id for room in self.rooms], [(device.id, device.room) for device in self.devices]
        )
        problems += _shared_topics([device.model_dump() for device in self.devices])
        problems += _calendar_problems([(room.id, room.calendar) for room in self.rooms])
        problems += _layout_overlaps([room.model_dump() for room in self.rooms])
        if problems:
            raise LocatedProblems(problems)
        return self


class OccupancySection(_Section):
    # Seconds without motion before an occupied room turns vacant.
    vacancy_timeout: float = Field(default=600.0, gt=0)
    vacancy_timeouts: dict[RoomType, float] = {}


class BookingTimes(_Section):
    checkin_window: float | None = Field(default=None, ge=0)
    release_when_vacant: float | None = Field(default=None, gt=0)


class BookingsSection(_Section):
    # Seconds after a booking's start within which presence must be seen; without
    # it the booking is released (a no-show) and the room offered again.
    checkin_window: float = Field(default=600.0, ge=0)
    # A checked-in room vacant this long ends its booking early.
    release_when_vacant: float = Field(default=900.0, gt=0)
    # Presence is the room occupied this long with someone still seen at the end of
    # it (a single motion blip keeps a room "occupied" for its vacancy timeout).
    presence_min: float = Field(default=60.0, ge=0)
    # The longest booking accepted.
    max_duration: float = Field(default=86_400.0, gt=0, le=7 * 86_400)
    # Per room type: {phone_booth: {checkin_window: 120, release_when_vacant: 300}}.
    room_types: dict[RoomType, BookingTimes] = {}
    # Calendar import (POST /v1/bookings/import): recurring series are expanded this
    # many days ahead; at most this many occurrences a request; bodies up to this size
    # (instead of api.max_body_bytes).
    import_horizon: float = Field(default=90.0, gt=0, le=3660)
    import_max_occurrences: int = Field(default=5_000, ge=1, le=100_000)
    import_max_bytes: int = Field(default=1_048_576, ge=1, le=16 * 1024 * 1024)


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


class RegistrySection(_Section):
    # Register devices (and rooms) first seen on a native topic. Off: only devices
    # the site config lists are accepted; others are rejected as unknown_device.
    auto_register: bool = True
    # Past these, a message that would register a room or device is rejected
    # (registry_full). Devices and rooms from the site config do not count.
    max_auto_rooms: int = Field(default=1_000, ge=0)
    max_auto_devices: int = Field(default=10_000, ge=0)
    # Per device (any device): distinct fields kept in its last state, and the
    # size of one field's value as JSON (registry_full, field_too_large).
    max_fields: int = Field(default=64, ge=1, le=10_000)
    max_field_bytes: int = Field(default=1_024, ge=16, le=64 * 1024)
    # Seconds: auto-registered devices silent for this long are forgotten, and so
    # are auto-registered rooms left without devices (and they are not restored).
    forget_after: float = Field(default=3 * 86_400.0, gt=0)


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


class StateTopicSection(_Section):
    # Each room's status, retained, on officegw/state/<building>/<floor>/<room>
    # (the JSON of GET /v1/rooms/{id}), for systems that follow the site over MQTT.
    enabled: bool = True
    # At most one publication per room this often; the newest state always follows.
    min_interval: float = Field(default=1.0, ge=0.05, le=3600)


class StreamSection(_Section):
    # GET /v1/stream: a comment line this often keeps proxies from closing the connection.
    ping_interval: float = Field(default=15.0, gt=0, le=300)
    # Events a client may fall behind by; past that it gets `overflow` and is dropped
    # (it resumes with Last-Event-ID).
    queue_size: int = Field(default=1000, ge=10, le=1_000_000)


class WebhooksSection(_Section):
    # Seconds one delivery may take (connect, send, read the start of the answer).
    timeout: float = Field(default=5.0, gt=0, le=60)
    # Back-off after a failed delivery: doubling from min to max.
    retry_min_delay: float = Field(default=1.0, gt=0)
    retry_max_delay: float = Field(default=300.0, gt=0)
    # A subscription is paused (and an alert raised) once this many deliveries in a
    # row failed over at least `pause_after` seconds.
    pause_after_failures: int = Field(default=10, ge=1)
    pause_after: float = Field(default=86_400.0, ge=0)
    # Delivery attempts kept per subscription (GET /v1/webhooks/{id}/deliveries).
    deliveries_kept: int = Field(default=1000, ge=10, le=100_000)
    # The receivers' hosts the gateway may send to: names or addresses, and
    # ".example.com" for every host under example.com. Empty: any host.
    allowed_hosts: list[str] = []

    @model_validator(mode="after")
    def _delays(self) -> WebhooksSection:
        if self.retry_max_delay < self.retry_min_delay:
            raise ValueError("retry_max_delay must be >= retry_min_delay")
        return self


def _enabled_flag(value: Any) -> Any:
    """`zigbee2mqtt: true` is short for `zigbee2mqtt: {enabled: true}` (and false for off)."""
    return {"enabled": value} if isinstance(value, bool) else value


class Zigbee2mqttDiscovery(_Section):
    # Read `<base_topic>/bridge/devices` (and `/bridge/groups`) and map the devices.
    enabled: bool = True
    base_topic: str = Field(default="zigbee2mqtt", min_length=1, pattern=TOPIC_PREFIX_PATTERN)


class HomeAssistantDiscovery(_Section):
    # Read Home Assistant discovery configs under `<prefix>/` and map the devices.
    enabled: bool = True
    prefix: str = Field(default="homeassistant", min_length=1, pattern=TOPIC_PREFIX_PATTERN)


class RoomRuleConfig(_Section):
    """A room for discovered devices: exactly one of `pattern` (a device's name or id),
    `group` (a Zigbee2MQTT group) or `area` (a Home Assistant suggested_area); globs."""

    pattern: str | None = Field(default=None, min_length=1, max_length=200)
    group: str | None = Field(default=None, min_length=1, max_length=200)
    area: str | None = Field(default=None, min_length=1, max_length=200)
    room: Identifier

    @model_validator(mode="after")
    def _one_match(self) -> RoomRuleConfig:
        given = [name for name in ("pattern", "group", "area") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of pattern, group or area")
        return self

    @property
    def field(self) -> Literal["pattern", "group", "area"]:
        return "pattern" if self.pattern is not None else "group" if self.group is not None else "area"

    @property
    def text(self) -> str:
        return self.pattern or self.group or self.area or ""


class DiscoverySection(_Section):
    """Devices that announce themselves (devices/discovery/), mapped without a config entry."""

    zigbee2mqtt: Annotated[Zigbee2mqttDiscovery, BeforeValidator(_enabled_flag)] = Zigbee2mqttDiscovery(
        enabled=False
    )
    homeassistant: Annotated[HomeAssistantDiscovery, BeforeValidator(_enabled_flag)] = HomeAssistantDiscovery(
        enabled=False
    )
    rooms: list[RoomRuleConfig] = []
    # Home Assistant entities kept at most (past it, configs are refused: registry_full);
    # discovered devices also count against registry.max_auto_devices.
    max_entities: int = Field(default=20_000, ge=0, le=1_000_000)
    # Largest bridge/devices message read (a big Zigbee network's list runs to MBs).
    max_payload_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    @property
    def enabled(self) -> bool:
        return self.zigbee2mqtt.enabled or self.homeassistant.enabled


def _discovery_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Rules naming rooms the site does not have, and discovery topics that overlap
    the native topic prefix (a discovered device could then take a native topic)."""
    problems: list[tuple[Loc, str]] = []
    discovery = _mapping(data.get("discovery"))
    rooms = _mapping(data.get("site")).get("rooms", [])
    known = {_mapping(room).get("id") for room in rooms} if isinstance(rooms, list) else None
    for index, rule in enumerate(_list(discovery.get("rooms"))):
        room = _mapping(rule).get("room")
        if known is not None and isinstance(room, str) and room not in known:
            problems.append((("discovery", "rooms", index, "room"), f"unknown room {room!r}"))
    prefix = _mapping(data.get("mqtt")).get("topic_prefix", MqttSection().topic_prefix)
    for section, key in (("zigbee2mqtt", "base_topic"), ("homeassistant", "prefix")):
        value = _mapping(discovery.get(section)).get(key)
        if isinstance(value, str) and isinstance(prefix, str) and _overlap(value, prefix):
            problems.append(
                (
                    ("discovery", section, key),
                    f"must not be mqtt.topic_prefix {prefix!r} or under or above it",
                )
            )
    return problems


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


class PushSection(_Section):
    """What the gateway pushes out: retained room state, the event stream, webhooks."""

    state: StateTopicSection = StateTopicSection()
    stream: StreamSection = StreamSection()
    webhooks: WebhooksSection = WebhooksSection()


def _time_of_day(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 7:00 as the number 420 (minutes in base 60).
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('write the time of day in quotes, as "HH:MM" (YAML reads 7:00 as a number)')
    return value


# "HH:MM", 24-hour clock.
TimeOfDay = Annotated[str, BeforeValidator(_time_of_day), Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class ReportScheduleSection(_Section):
    """Reports written as files every week and/or month (gateway/reports/schedule.py)."""

    # Which periods get their reports archived; none (the default) turns the schedule off.
    periods: list[Literal["weekly", "monthly"]] = []
    # Local time (site.timezone) on the day after a period ends when its reports are written.
    at: TimeOfDay = "06:00"
    # One CSV file per report and grouping; the HTML summary is always per building and day.
    group_by: list[Literal["room", "floor", "building", "room_type"]] = Field(
        default=["building", "room"], min_length=1
    )
    bucket: Literal["hour", "day", "week", "none"] = "day"


WORKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
WEEK_SECONDS = 7 * 86_400


class WeeklyHours(_Section):
    """From `start` to `end` local time (site.timezone) on `weekdays`; an end at or
    before the start runs over midnight (00:00 as the end: until midnight)."""

    start: ClockTime
    end: ClockTime
    weekdays: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> WeeklyHours:
        if self.start == self.end:
            raise ValueError("start and end are the same (an empty window)")
        return self

    def window(self) -> DailyWindow:
        return DailyWindow(self.start, self.end, frozenset(WEEKDAYS.index(day) for day in self.weekdays))

    def week_spans(self) -> list[tuple[int, int]]:
        """Seconds since Monday 00:00 of a plain week (no clock changes), for overlap checks."""
        opens = self.start.hour * 3600 + self.start.minute * 60 + self.start.second
        closes = self.end.hour * 3600 + self.end.minute * 60 + self.end.second
        length = (closes - opens) % 86_400
        spans = []
        for day in self.weekdays:
            s = WEEKDAYS.index(day) * 86_400 + opens
            e = s + length
            spans.append((s, min(e, WEEK_SECONDS)))
            if e > WEEK_SECONDS:  # Sunday night into Monday
                spans.append((0, e - WEEK_SECONDS))
        return spans


class BusinessHours(WeeklyHours):
    start: ClockTime = time(8)
    end: ClockTime = time(18)
    weekdays: tuple[Weekday, ...] = Field(default=WORKDAYS, min_length=1)


class TariffBandSection(WeeklyHours):
    price_per_kwh: float = Field(ge=0, allow_inf_nan=False)


def _band_overlaps(bands: Sequence[TariffBandSection]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for i, band in enumerate(bands):
        for j in range(i):
            if any(s < e2 and s2 < e for s, e in band.week_spans() for s2, e2 in bands[j].week_spans()):
                problems.append((("bands", i), f"overlaps bands[{j}] (a moment has one price)"))
                break
    return problems


class TariffSection(_Section):
    """A flat price per kWh, or prices by time of day: `bands` (local time, not
    overlapping) and `price_per_kwh` for every time outside them."""

    currency: str = Field(default="EUR", pattern=CURRENCY_PATTERN)
    price_per_kwh: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    bands: list[TariffBandSection] = []

    @model_validator(mode="after")
    def _one_price_a_moment(self) -> TariffSection:
        problems = _band_overlaps(self.bands)
        if problems:
            raise LocatedProblems(problems)
        return self

    def tariff(self) -> Tariff:
        return Tariff(
            self.currency,
            self.price_per_kwh,
            tuple(TariffBand(band.window(), band.price_per_kwh) for band in self.bands),
        )


Watts = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]


class BaselineSection(_Section):
    """The always-on-in-business-hours baseline's draw: per room, else per room type,
    else the sum of the room's lights' `rated_watts` (no baseline without any)."""

    rooms: dict[str, Watts] = {}
    room_types: dict[RoomType, Watts] = {}


class TemperatureBand(_Section):
    min: float = Field(default=20.0, ge=-50, le=80, allow_inf_nan=False)
    max: float = Field(default=26.0, ge=-50, le=80, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> TemperatureBand:
        if self.max <= self.min:
            raise ValueError("max must be above min")
        return self


class Co2Band(_Section):
    max: float = Field(default=1000.0, gt=0, le=100_000, allow_inf_nan=False)


class ComfortSection(_Section):
    temperature_c: TemperatureBand = TemperatureBand()
    co2_ppm: Co2Band = Co2Band()

    def bands(self) -> tuple[Band, Band]:
        return Band(self.temperature_c.min, self.temperature_c.max), Band(None, self.co2_ppm.max)


class ReportsSection(_Section):
    """GET /v1/reports/...: how the figures are computed (README "Reports")."""

    business_hours: BusinessHours = BusinessHours()
    tariff: TariffSection = TariffSection()
    baseline_w: BaselineSection = BaselineSection()
    comfort: ComfortSection = ComfortSection()
    # Seconds a reading counts for after it was taken, unless the next one comes first:
    # a sensor silent for longer measures nothing (and a meter's count across a longer
    # gap is reported as unattributed).
    reading_hold: float = Field(default=7_200.0, gt=0, le=7 * 86_400)
    # A room whose peak people count stayed at or below this share of its capacity
    # is hinted as oversized.
    oversized_below: float = Field(default=0.5, gt=0, le=1)
    # Bounds of one answer: rows (groups x buckets), and days from start to end.
    max_rows: int = Field(default=100_000, ge=1, le=10_000_000)
    max_days: float = Field(default=366.0, gt=0, le=3_660)
    schedule: ReportScheduleSection = ReportScheduleSection()
    # Where scheduled reports are written; default: `reports` beside storage.path.
    archive_dir: str | None = Field(default=None, min_length=1)

    def archive_path(self, storage_path: str) -> Path:
        if self.archive_dir is not None:
            return Path(self.archive_dir)
        return Path(storage_path).parent / "reports"


def _baseline_rooms(room_ids: Sequence[object] | None, baseline: Any) -> list[tuple[Loc, str]]:
    rooms = _mapping(_mapping(baseline).get("rooms"))
    if room_ids is None:
        return []
    known = {room for room in room_ids if isinstance(room, str)}
    return [
        (("reports", "baseline_w", "rooms", room), f"unknown room {room!r}")
        for room in rooms
        if room not in known
    ]


class ClockSection(_Section):
    # system: the machine's clock. device: the newest device time (`ts`) accepted, so
    # a simulator running faster than real time (`officegw simulate --speed`) runs the
    # gateway's timers, rules and bookings in its simulated time. Simulations only.
    mode: Literal["system", "device"] = "system"


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
    registry: RegistrySection = RegistrySection()
    bookings: BookingsSection = BookingsSection()
    reports: ReportsSection = ReportsSection()
    push: PushSection = PushSection()
    discovery: DiscoverySection = DiscoverySection()
    clock: ClockSection = ClockSection()
    replica: ReplicaSection = ReplicaSection()

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
        problem = _exposure_problem(self.api.host, bool(self.api.keys))
        if problem is not None:
            raise LocatedProblems([(("api", "host"), problem)])
        return self

    @model_validator(mode="after")
    def _discovery_consistent(self) -> Settings:
        problems = _discovery_problems(
            {
                "discovery": self.discovery.model_dump(),
                "site": {"rooms": [{"id": room.id} for room in self.site.rooms]},
                "mqtt": {"topic_prefix": self.mqtt.topic_prefix},
            }
        )
        if problems:
            raise LocatedProblems(problems)
        return self

    @model_validator(mode="after")
    def _baseline_of_known_rooms(self) -> Settings:
        problems = _baseline_rooms(
            [room.id for room in self.site.rooms], self.reports.baseline_w.model_dump()
        )
        if problems:
            raise LocatedProblems(problems)
        return self

    def booking_policy_for(self, room: RoomConfig | None) -> BookingPolicy:
        """The room's booking timers: its own, else its type's, else `bookings.*`."""
        b = self.bookings
        if room is None:
            return BookingPolicy(b.checkin_window, b.release_when_vacant, b.presence_min)
        kind = b.room_types.get(room.type, BookingTimes())
        return BookingPolicy(
            checkin_window=_first(room.checkin_window, kind.checkin_window, b.checkin_window),
            release_when_vacant=_first(
                room.release_when_vacant, kind.release_when_vacant, b.release_when_vacant
            ),
            presence_min=b.presence_min,
        )

    def vacancy_timeout_for(self, room: RoomConfig | None) -> float:
        if room is not None and room.vacancy_timeout is not None:
            return room.vacancy_timeout
        if room is not None and room.type in self.occupancy.vacancy_timeouts:
            return self.occupancy.vacancy_timeouts[room.type]
        return self.occupancy.vacancy_timeout


def _cross_checks(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """The checks across fields on the raw config, skipping what cannot be read."""
    problems: list[tuple[Loc, str]] = []
    site = _mapping(data.get("site"))
    rooms = site.get("rooms", [])
    devices = [_mapping(device) for device in _list(site.get("devices"))]
    room_ids = [_mapping(room).get("id") for room in rooms] if isinstance(rooms, list) else None
    references = _site_references(room_ids, [(device.get("id"), device.get("room")) for device in devices])
    problems += [(("site", *loc), reason) for loc, reason in references]
    if isinstance(rooms, list):
        calendars = [(_mapping(room).get("id"), _mapping(room).get("calendar")) for room in rooms]
        problems += [(("site", *loc), reason) for loc, reason in _calendar_problems(calendars)]
        plans = [_mapping(room) for room in rooms]
        problems += [(("site", *loc), reason) for loc, reason in _layout_overlaps(plans)]
    for index, device in enumerate(devices):
        dialect, topic = device.get("dialect", "native"), device.get("topic")
        if dialect in DIALECTS and (topic is None or isinstance(topic, str)):
            problem = _topic_problem(dialect, topic, device.get("channel"))
            if problem is not None:
                problems.append((("site", "devices", index), problem))
    problems += [(("site", *loc), reason) for loc, reason in _shared_topics(devices)]
    api = _mapping(data.get("api"))
    host, keys = api.get("host", ApiSection().host), api.get("keys", [])
    if isinstance(host, str) and isinstance(keys, list):
        problem = _exposure_problem(host, bool(keys))
        if problem is not None:
            problems.append((("api", "host"), problem))
    if isinstance(data.get("influxdb"), dict):
        problems += [(("influxdb",), problem) for problem in _influx_problems(data["influxdb"])]
    problems += _discovery_problems(data)
    problems += _baseline_rooms(room_ids, _mapping(data.get("reports")).get("baseline_w"))
    return problems


def _first(*values: float | None) -> float:
    return next(float(v) for v in values if v is not None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# Loading


class ConfigError(ProblemsError):
    """A config that cannot be used; `problems` holds one `path: reason` per error.

    `data` is what the config said as far as it could be read (file, environment and
    overrides merged), for callers that check more of it (the rules file it names)."""

    what = "config"

    def __init__(self, source: str, problems: list[str], data: Mapping[str, Any] | None = None) -> None:
        super().__init__(source, problems)
        self.data: Mapping[str, Any] = data or {}


def _keys_at(loc: Loc) -> Collection[str] | None:
    """The keys of the section at `loc` (list indexes and mapping keys stepped over);
    None where no section is."""
    model: type[BaseModel] = Settings
    mapping = False
    for part in loc:
        if isinstance(part, int) or mapping:
            mapping = False
            continue
        field = model.model_fields.get(part)
        found = _section_in(field.annotation) if field is not None else None
        if found is None:
            return None
        model, mapping = found
    return tuple(model.model_fields)


def _section_in(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model a field holds (itself, or in a list, an optional or a mapping's values),
    and whether it sits in a mapping (whose keys the path steps over)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    for arg in typing.get_args(annotation):
        found = _section_in(arg)
        if found is not None:
            return found[0], found[1] or origin in (dict, Mapping)
    return None


# Error messages in the config's words: `site.rooms[1].type: input should be 'meeting', ...`.
WORDS = Vocabulary(
    keys=frozenset(
        name
        for model in (
            Settings,
            GatewaySection,
            MqttSection,
            ApiSection,
            ApiKey,
            StorageSection,
            RetentionSection,
            InfluxSection,
            SiteSection,
            RoomConfig,
            DeviceConfig,
            OccupancySection,
            BookingsSection,
            BookingTimes,
            ReportsSection,
            ReportScheduleSection,
            AvailabilitySection,
            QualitySection,
            ActuationSection,
            PushSection,
            StateTopicSection,
            StreamSection,
            WebhooksSection,
            DiscoverySection,
            Zigbee2mqttDiscovery,
            HomeAssistantDiscovery,
            RoomRuleConfig,
            ReportsSection,
            WeeklyHours,
            TariffSection,
            TariffBandSection,
            BaselineSection,
            ComfortSection,
            TemperatureBand,
            Co2Band,
        )
        for name in model.model_fields
    ),
    keys_at=_keys_at,
    patterns={
        IDENTIFIER_PATTERN: "only letters, digits, '-', '_', '.' and ':' (starting with a letter or digit)",
        TOPIC_PREFIX_PATTERN: "must not contain the MQTT wildcards + or #",
        r"^([01][0-9]|2[0-3]):[0-5][0-9]$": 'a time of day as "HH:MM" (00:00 to 23:59)',
        CURRENCY_PATTERN: "must be an ISO 4217 code: three capital letters (EUR, USD, CHF)",
    },
)


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from a YAML file (optional) with `overrides` (command-line flags) on top,
    and the environment over both (pydantic-settings ranks it above init values).

    Raises ConfigError with every problem at once, each naming the environment
    variable or command-line override its value came from when not the file."""
    source = str(path) if path is not None else "(defaults)"
    data: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    return _validate(source, data, overrides or {})


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Settings from an in-memory config (tests, demo), environment still applied."""
    return _validate("(config)", data, {})


def _validate(source: str, given: dict[str, Any], overrides: dict[str, Any]) -> Settings:
    environment = _environment(source)
    # What Settings will see (it reads the environment again, to the same effect).
    data = _merge(_merge(given, overrides), environment)
    try:
        return Settings(**data)
    except ValidationError as exc:
        origin = _Origins(environment, overrides, given).origin
        problems = describe(exc, vocabulary=WORDS, origin=origin)
        problems += [line(loc, reason, WORDS, origin) for loc, reason in _cross_checks(data)]
        # A check that pydantic ran already comes twice.
        unique = list(dict.fromkeys(problems))
        raise ConfigError(source, sorted(unique, key=_file_order), data) from None


def _environment(source: str) -> dict[str, Any]:
    """The OFFICEGW_* variables as config data (`OFFICEGW_MQTT__URL` -> {"mqtt": {"url": ...}})."""
    try:
        return EnvSettingsSource(Settings)()
    except SettingsError as exc:
        # A JSON value that is not JSON (OFFICEGW_SITE__ROOMS='[{id: a}]').
        match = re.search(r'field "(\w+)"', str(exc))
        section = match.group(1) if match else None
        names = [name for name in _variables() if section and _under(name, (section,))]
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        problem = f"{section or '(environment)'}: not valid JSON{cause}"
        if names:
            problem += f" (from environment variable {' or '.join(names)})"
        raise ConfigError(source, [problem]) from None


class _Origins:
    """Where a value came from when not the file: the command line or an environment variable."""

    def __init__(self, environment: dict[str, Any], overrides: dict[str, Any], given: dict[str, Any]) -> None:
        # Highest priority first, as _validate merges them.
        self._sources: list[tuple[str | None, dict[str, Any]]] = [
            ("environment", environment),
            ("command line", overrides),
            (None, given),
        ]

    def origin(self, loc: Loc, kind: str) -> str | None:
        # A missing key has no value; its mapping does.
        target = loc[:-1] if kind == "missing" else loc
        for rank, (label, data) in enumerate(self._sources):
            value = _at(data, target)
            if value is _ABSENT:
                continue
            if isinstance(value, dict) and any(
                _at(lower, target) is not _ABSENT for _, lower in self._sources[rank + 1 :]
            ):
                return None  # a mapping put together from several places
            if label == "environment":
                return _from_environment(target)
            return f"from the {label}" if label else None
        return None


_ABSENT = object()


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        found = (isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data)) or (
            isinstance(part, str) and isinstance(data, dict) and part in data
        )
        if not found:
            return _ABSENT
        data = data[part]
    return data


def _from_environment(loc: Loc) -> str:
    """Names the variable that set `loc`: the one for the longest path to it (OFFICEGW_SITE__ROOMS
    for `site.rooms[2].capacity`, set as JSON)."""
    keys: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break
        keys.append(part)
    for length in range(len(keys), 0, -1):
        for name in _variables():
            if name.upper() == _ENV_PREFIX + "__".join(keys[:length]).upper():
                return f"from environment variable {name}"
    return "from the environment"


def _variables() -> list[str]:
    return sorted(name for name in os.environ if name.upper().startswith(_ENV_PREFIX))


def _under(name: str, keys: tuple[str, ...]) -> bool:
    stem = (_ENV_PREFIX + "__".join(keys)).upper()
    return name.upper() == stem or name.upper().startswith(stem + "__")


_ENV_PREFIX = "OFFICEGW_"
_SECTIONS = list(Settings.model_fields)
_SITE_LISTS = ["timezone", "rooms", "devices"]


def _file_order(problem: str) -> tuple[int, int, int]:
    """Problems by section in the order Settings lists them, then the site's rooms before
    its devices, each by index; a stable sort keeps pydantic's order within."""
    match = re.match(r"(\w+)(?:\.(\w+))?(?:\[(\d+)\])?", problem)
    if match is None or match.group(1) not in _SECTIONS:
        return (-1, 0, 0)
    section, key, index = match.groups()
    sub = _SITE_LISTS.index(key) if section == "site" and key in _SITE_LISTS else 0
    return (_SECTIONS.index(section), sub, int(index) if index is not None else -1)


SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc.strerror or exc}"]) from None
    try:
        # libyaml's parser (the same safe loading, same errors) when PyYAML has it: the
        # pure-Python one took 1.7 s of a restart for a 2,000-room campus.
        data = yaml.load(text, Loader=SAFE_LOADER)
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


def environment_keys() -> list[str]:
    """The OFFICEGW_* variables in force, for the start-up log line."""
    return sorted(key for key in os.environ if key.startswith("OFFICEGW_"))
