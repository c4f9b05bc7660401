"""What the gateway records: one reading of one metric, and one event.

The ingest path turns every accepted message into `Reading`s (one per numeric or
boolean field) and the automation turns room changes, commands and alerts into
`Event`s. The history store (SQLite) and the InfluxDB export both take these, so
neither depends on the other or on the ingest code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Reading:
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


@dataclass(frozen=True, slots=True)
class Event:
    # "occupancy", "command", "override", "alert", ... (gateway.event_log's kinds)
    kind: str
    room_id: str | None
    building: str | None
    floor: str | None
    at: float
    data: dict[str, Any] = field(default_factory=dict)


# The measurement each field is exported under; anything else is "device".
KIND_OF_METRIC: dict[str, str] = {
    **dict.fromkeys(("co2", "temperature", "humidity", "illuminance", "noise", "voc", "pm25"), "environment"),
    **dict.fromkeys(("occupancy", "presence", "people", "entered", "exited", "contact"), "occupancy"),
    **dict.fromkeys(("power", "energy", "voltage", "current"), "energy"),
    **dict.fromkeys(("brightness", "state"), "lighting"),
    **dict.fromkeys(("setpoint",), "hvac"),
}
# String states recorded as numbers: on/locked = 1.
_STATE_VALUES = {"ON": 1.0, "OFF": 0.0, "LOCK": 1.0, "UNLOCK": 0.0}


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
        elif metric == "state" and raw in _STATE_VALUES:
            value = _STATE_VALUES[raw]
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
