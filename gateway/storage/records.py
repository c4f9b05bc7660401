"""What the gateway records: one reading of one metric, and one event.

The ingest path turns every accepted message into `Reading`s (one per numeric or
boolean field) and the automation turns room changes, commands and alerts into
`StoredEvent`s. The history store (SQLite) and the InfluxDB export both take these, so
neither depends on the other or on the ingest code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Reading(NamedTuple):
    """(A NamedTuple, not a dataclass: thousands are made a second on the ingest
    thread, and a frozen dataclass costs several times as much to build.)"""

    device_id: str
    room_id: str
    building: str
    floor: str
    # The field name in the native vocabulary (DESIGN.md §2): "co2", "temperature",
    # "occupancy", "power", ...; booleans are recorded as 0/1.
    metric: str
    value: float
    # The device's own timestamp when it sent one (`ts`), else when the gateway got
    # the message. (device, metric, ts) identifies a reading: a redelivered message
    # yields the same key, and history keeps each reading once.
    ts: float
    received_at: float
    # The measurement kind for time-series export: "environment", "occupancy",
    # "energy", "lighting", "access", "device".
    kind: str


class DeviceState(NamedTuple):
    """What a restart needs of one device: the device time (`ts`) of the last reading
    applied from it and a digest of that message's bytes (so that a retained or
    redelivered message older than it, or an exact repeat, changes nothing), and
    its last state (pseudonymised fields, as `GET /v1/devices/{id}` shows them)."""

    device_id: str
    room_id: str
    ts: float | None
    digest: int | None
    last_state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    # "occupancy", "command", "override", "alert", ... (gateway.automation.event_log's kinds)
    kind: str
    room_id: str | None
    building: str | None
    floor: str | None
    at: float
    data: dict[str, Any] = field(default_factory=dict)


# The measurement each metric is recorded and exported under (`Reading.kind`);
# anything else is "device". The one list: the InfluxDB export and the Grafana
# dashboard's test use it too.
KIND_OF_METRIC: Mapping[str, str] = {
    **dict.fromkeys(("co2", "temperature", "humidity", "illuminance", "noise", "voc", "pm25"), "environment"),
    **dict.fromkeys(("occupancy", "presence", "people", "entered", "exited"), "occupancy"),
    **dict.fromkeys(("power", "energy", "voltage", "current"), "energy"),
    **dict.fromkeys(("brightness", "on"), "lighting"),
    **dict.fromkeys(("contact", "locked"), "access"),
    **dict.fromkeys(("setpoint",), "hvac"),
    **dict.fromkeys(("battery",), "device"),
}
# The room-status names (`GET /v1/rooms/{id}`, api/schemas.py) whose values are
# readings of a device field in the same unit, and that field: the history
# answers to either name. The one table (a test holds it to the schema and to
# KIND_OF_METRIC). `door_open` (the inverse of `contact`), `brightness_pct`
# (`brightness` is 0-254) and `kwh_today` (not a reading) are not mapped.
FIELD_OF_STATUS_NAME: Mapping[str, str] = {
    "co2_ppm": "co2",
    "temperature_c": "temperature",
    "humidity_pct": "humidity",
    "illuminance_lux": "illuminance",
    "power_w": "power",
    "people": "people",
    "on": "on",
    "locked": "locked",
}
STATUS_NAME_OF_FIELD: Mapping[str, str] = {field: name for name, field in FIELD_OF_STATUS_NAME.items()}


def recorded_metric(name: str) -> str:
    """The field name readings of `name` (a status or a field name) are recorded under."""
    return FIELD_OF_STATUS_NAME.get(name, name)


# `state` is recorded as a number under a name that says what 1 means.
_STATES = {"ON": ("on", 1.0), "OFF": ("on", 0.0), "LOCK": ("locked", 1.0), "UNLOCK": ("locked", 0.0)}


def readings_from(
    fields: dict[str, Any],
    *,
    device_id: str,
    room_id: str,
    building: str,
    floor: str,
    ts: float,
    received_at: float,
) -> list[Reading]:
    """One reading per numeric, boolean or on/off field of a validated message."""
    readings = []
    for metric, raw in fields.items():
        if isinstance(raw, bool):
            value = 1.0 if raw else 0.0
        elif isinstance(raw, int | float):
            value = float(raw)
        elif metric == "state" and raw in _STATES:
            metric, value = _STATES[raw]
        else:
            continue  # text (credentials, modes, actions) is not a time series
        readings.append(
            Reading(
                device_id,
                room_id,
                building,
                floor,
                metric,
                value,
                ts,
                received_at,
                KIND_OF_METRIC.get(metric, "device"),
            )
        )
    return readings
