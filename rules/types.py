"""The vocabulary the rules engine shares with the gateway: what rules see, what
happens, and what rules ask for. Pure data; no I/O.

- `RoomFacts`: a read-only view of one room at one moment, built by the gateway
  from its live state and its bookings. Rules read only this.
- `RuleEvent`: something that happened (a state change, a reading, an access event,
  a device going offline, or just time passing: `Tick`).
- `Action`: what a rule wants done: a device command, an alert, an MQTT publish.
  The gateway's actuator decides whether and when a command goes out
  (priorities, manual override, debounce, confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Priority(IntEnum):
    """Who may undo whom: a lower priority never overrides a higher one."""

    ENERGY = 10
    BOOKING = 20
    MANUAL = 30
    SAFETY = 40


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class RoomFacts:
    room_id: str
    type: str
    building: str
    floor: str
    bookable: bool
    capacity: int
    occupancy: str  # "occupied" | "vacant" | "unknown"
    occupancy_since: float | None
    people: int | None
    co2_ppm: float | None
    temperature_c: float | None
    humidity_pct: float | None
    illuminance_lux: float | None
    lights_on: bool | None
    brightness_pct: float | None
    power_w: float | None
    door_open: bool | None
    door_open_since: float | None
    locked: bool | None
    # Per-room settings the built-in rules use.
    lux_target: float | None = None
    comfort_setpoint_c: float = 21.0
    setback_setpoint_c: float = 17.0
    # Seconds until the room's next booking starts (0 while one is in progress);
    # None when nothing is booked. Only bookings that hold the room count (booked,
    # checked in), not released or cancelled ones.
    next_booking_in: float | None = None
    # Device ids in the room by kind ("light", "hvac", "lock", ...).
    devices: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """A fact by name, for compiled conditions (names checked at load time)."""
        return getattr(self, name)


# Facts a rule may name in a condition or threshold trigger; checked when rules load.
FACT_NAMES = frozenset(
    {
        "occupancy",
        "people",
        "co2_ppm",
        "temperature_c",
        "humidity_pct",
        "illuminance_lux",
        "lights_on",
        "brightness_pct",
        "power_w",
        "door_open",
        "locked",
        "type",
        "building",
        "floor",
        "bookable",
        "capacity",
        "lux_target",
        "next_booking_in",
    }
)


# Events


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; `for:` durations and time-of-day triggers are checked on ticks."""

    at: float


@dataclass(frozen=True, slots=True)
class OccupancyChanged:
    room_id: str
    old: str
    new: str
    at: float


@dataclass(frozen=True, slots=True)
class ReadingChanged:
    """A fact of a room changed value (co2_ppm, illuminance_lux, door_open, ...)."""

    room_id: str
    fact: str
    old: Any
    new: Any
    at: float


@dataclass(frozen=True, slots=True)
class AccessEvent:
    room_id: str
    device_id: str
    result: str  # "granted" | "denied"
    credential: str | None  # pseudonym, never the badge id
    at: float


@dataclass(frozen=True, slots=True)
class DeviceAvailabilityChanged:
    room_id: str
    device_id: str
    online: bool
    at: float


RuleEvent = Tick | OccupancyChanged | ReadingChanged | AccessEvent | DeviceAvailabilityChanged


# Actions


@dataclass(frozen=True, slots=True)
class Command:
    """Set fields of one device (native vocabulary: {"state": "OFF"}, {"brightness": 120})."""

    device_id: str
    payload: dict[str, Any]
    priority: Priority
    rule: str
    room_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    room_id: str | None
    severity: Severity
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class Publish:
    rule: str
    topic: str
    payload: dict[str, Any]


Action = Command | Alert | Publish
