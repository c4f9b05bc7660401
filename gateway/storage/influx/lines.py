"""Readings and events as InfluxDB line protocol: the schema the export writes.

One point per reading: measurement = `Reading.kind` (`environment`, `occupancy`,
`energy`, ...), tags `building, floor, room, device`, one field named after the
metric (`co2=612`), always a float so a metric never changes type (InfluxDB
refuses a field that does). One point per event: measurement `events`, tags
`kind, building, floor, room` (and `device` when the event names one), fields
from the event's data (numbers as floats, booleans, strings; lists and objects
as JSON text) plus `count=1`, so that `sum(count)` counts events.

Timestamps are written in milliseconds. Seconds would merge two readings of one
metric within a second into one point (same series, same time: the later
overwrites the earlier); devices stamp in ms at best, so ns would only add float
noise; and ms is what VictoriaMetrics stores natively.

Line protocol stops here: nothing else in the gateway builds or parses it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from gateway.storage.records import KIND_OF_METRIC, Reading, StoredEvent

# WritePrecision's constants are typed as plain str by the library.
PRECISION: WritePrecision = WritePrecision.MS  # type: ignore[assignment]
EVENTS_MEASUREMENT = "events"
READING_TAGS = ("building", "floor", "room", "device")
EVENT_TAGS = ("kind", "building", "floor", "room", "device")
COUNT_FIELD = "count"

# The measurement each native metric (DESIGN.md §2) is written to, i.e. the
# `Reading.kind` the ingest path gives it. Dashboards and Flux queries rely on
# these names (tests/unit/deploy checks deploy/grafana against them).
READING_MEASUREMENTS: Mapping[str, str] = KIND_OF_METRIC
# Fields of the events the automation records (gateway/automation/runner.py); the
# occupancy event's `new` is the room's fused state: occupied | vacant | unknown.
EVENT_FIELDS: Mapping[str, frozenset[str]] = {
    "occupancy": frozenset({"old", "new"}),
    "command": frozenset({"payload", "rule", "status", "attempt", "detail"}),
    "override": frozenset({"state", "status"}),
    "alert": frozenset({"rule", "severity", "message"}),
    "rules": frozenset({"source", "rules"}),
}

_MEASUREMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Line protocol escapes of tag keys, tag values and field keys (as influxdb-client's Point).
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})


def reading_line(reading: Reading) -> str | None:
    """The reading as one line, or None when it cannot be written (not a finite
    number, or a kind that is not a measurement name).

    Readings are the volume (tens of thousands a second), so they are encoded
    here directly, a fraction of the cost of going through `Point`; the unit tests
    hold this encoding equal to `Point`'s (`reading_point`).
    """
    series = _series_key(
        reading.kind, reading.building, reading.device_id, reading.floor, reading.room_id, reading.metric
    )
    if series is None:
        return None
    if not math.isfinite(reading.value):
        return None
    value = str(float(reading.value))
    if value.endswith(".0"):
        value = value[:-2]
    return f"{series}{value} {_ms(reading.ts)}"


# A device's tags are the same in every reading: escaped once per device and metric.
@functools.lru_cache(maxsize=100_000)
def _series_key(kind: str, building: str, device: str, floor: str, room: str, metric: str) -> str | None:
    """'environment,building=hq,...,room=orion co2=', or None for a kind that is no measurement name."""
    if not _MEASUREMENT.match(kind):
        return None
    tags = "".join(
        f",{name}={_tag(value)}"
        for name, value in (("building", building), ("device", device), ("floor", floor), ("room", room))
        if value
    )
    return f"{kind}{tags} {metric.translate(_ESCAPE_KEY)}="


def reading_point(reading: Reading) -> str | None:
    """`reading_line` through influxdb-client's `Point`: the reference encoding."""
    if not _MEASUREMENT.match(reading.kind) or not math.isfinite(reading.value):
        return None
    tags = {
        "building": reading.building,
        "floor": reading.floor,
        "room": reading.room_id,
        "device": reading.device_id,
    }
    return _line(reading.kind, tags, {reading.metric: float(reading.value)}, reading.ts)


def event_line(event: StoredEvent) -> str | None:
    tags: dict[str, str | None] = {
        "kind": event.kind,
        "building": event.building,
        "floor": event.floor,
        "room": event.room_id,
    }
    device = event.data.get("device")
    if isinstance(device, str):
        tags["device"] = device
    fields: dict[str, float | bool | str] = {COUNT_FIELD: 1.0}
    for key, value in event.data.items():
        if key == "device" and isinstance(device, str):
            continue
        field_value = _field_value(value)
        if field_value is None:
            continue
        # A field named like a tag (or our count) would shadow it in Flux.
        name = f"{key}_value" if key in EVENT_TAGS or key == COUNT_FIELD else key
        fields[name] = field_value
    return _line(EVENTS_MEASUREMENT, tags, fields, event.at)


def _line(
    measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, float | bool | str], at: float
) -> str | None:
    # Point drops None and empty tags, and non-finite floats; no field left: "".
    point = Point.from_dict(
        {"measurement": measurement, "tags": tags, "fields": fields, "time": _ms(at)}, PRECISION
    )
    line: str = point.to_line_protocol()
    return line or None


def _field_value(value: Any) -> float | bool | str | None:
    if value is None:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    # Payloads and other structures: kept whole, as text.
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()


def _tag(value: str) -> str:
    escaped = value.translate(_ESCAPE_KEY)
    # A trailing backslash would escape the separator after it.
    return escaped + " " if escaped.endswith("\\") else escaped


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
