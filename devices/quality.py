"""How trustworthy one device's data is: message rate and flood throttling, schema
drift, battery, and whether its occupancy reports are corroborated.

Pure and clock-injected: the ingest thread feeds it what it sees and the time; the
device registry keeps one `DeviceQuality` per device and shows `view()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class QualityParams:
    # Token bucket per device: `max_rate` messages a second on average, `burst` at once.
    max_rate: float = 10.0
    burst: float = 20.0
    # Flagged as flooding until this long after the last throttled message.
    flood_flag_hold: float = 60.0
    battery_low: float = 15.0
    # An occupancy sensor that has said "occupied" this long, while no other device
    # in its room saw anyone, is stuck.
    stuck_after: float = 4 * 3600.0
    # Fields seen during the first `schema_learn_messages` messages (and at least
    # `schema_learn_seconds`) are the device's schema; new ones later are drift.
    schema_learn_messages: int = 50
    schema_learn_seconds: float = 3600.0


DEFAULT_QUALITY = QualityParams()

# Rate is a moving average over about this many seconds.
_RATE_WINDOW = 10.0
_OCCUPANCY_FIELDS = ("occupancy", "presence")
# Message shapes and schemas shared by every device that has them: most devices of a
# site send one of a few shapes, and a tuple of (name, type) pairs per device was the
# largest thing a device cost (issue 17: memory per device). Bounded, so made-up
# shapes cannot grow it: past the bound a device keeps its own copy.
MAX_SHARED_SHAPES = 10_000
Shape = tuple[tuple[str, type], ...]
_shapes: dict[Shape, Shape] = {}
_schemas: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}


def _shared_shape(shape: Shape) -> Shape:
    """One tuple per distinct shape, within the bound."""
    shared = _shapes.get(shape)
    if shared is not None:
        return shared
    if len(_shapes) < MAX_SHARED_SHAPES:
        _shapes[shape] = shape
    return shape


class DeviceQuality:
    """One device's data-quality record; owned by the ingest thread."""

    __slots__ = (
        "_first_seen",
        "_last_at",
        "_last_shape",
        "_messages",
        "_occupied_since",
        "_rate",
        "_tokens",
        "drift_at",
        "drift_fields",
        "last_throttled",
        "schema",
        "throttled",
    )

    def __init__(self) -> None:
        self._tokens: float | None = None
        self._last_at: float | None = None
        self._rate = 0.0
        self._messages = 0
        self._first_seen: float | None = None
        self._last_shape: Shape = ()
        self._occupied_since: float | None = None
        self.throttled = 0
        self.last_throttled: float | None = None
        # Field -> kind of value; a shared immutable mapping, replaced when it changes.
        self.schema: Mapping[str, str] = _EMPTY_SCHEMA
        self.drift_fields: tuple[str, ...] = ()
        self.drift_at: float | None = None

    # Rate and throttling

    def admit(self, now: float, p: QualityParams) -> bool:
        """Whether a message arriving at `now` is within the device's rate budget."""
        last = self._last_at
        if last is None:
            self._tokens, self._last_at = p.burst, now
            last = now
        elapsed = max(0.0, now - last)
        self._last_at = now
        # Exponential moving average of the arrival rate, per second.
        decay = min(1.0, elapsed / _RATE_WINDOW)
        self._rate = self._rate * (1 - decay) + (1 / _RATE_WINDOW)
        tokens = min(p.burst, (self._tokens or 0.0) + elapsed * p.max_rate)
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        self.throttled += 1
        self.last_throttled = now
        return False

    def rate(self, now: float) -> float:
        """Messages a second over the last ~10 s."""
        if self._last_at is None:
            return 0.0
        idle = max(0.0, now - self._last_at)
        return self._rate * max(0.0, 1 - idle / _RATE_WINDOW)

    def flooding(self, now: float, p: QualityParams) -> bool:
        return self.last_throttled is not None and now - self.last_throttled < p.flood_flag_hold

    # What the device says

    def observe(self, fields: dict[str, Any], now: float, p: QualityParams) -> None:
        """A validated message's fields (after translation to the native vocabulary)."""
        self._messages += 1
        if self._first_seen is None:
            self._first_seen = now
        learning = (
            self._messages <= p.schema_learn_messages or now - self._first_seen < p.schema_learn_seconds
        )
        # Most devices send the same fields every time: compare the whole shape once
        # (a tuple of (name, type) pairs) before looking field by field.
        shape = tuple(zip(fields, map(type, fields.values()), strict=True))
        if shape != self._last_shape:
            self._last_shape = _shared_shape(shape)
            self._check_schema(fields, now, learning)
        for name in _OCCUPANCY_FIELDS:
            value = fields.get(name)
            if value is True and self._occupied_since is None:
                self._occupied_since = now
            elif value is False:
                self._occupied_since = None

    def _check_schema(self, fields: dict[str, Any], now: float, learning: bool) -> None:
        new: list[str] = []
        schema: dict[str, str] | None = None
        for name, value in fields.items():
            kind = _kind(value)
            known = self.schema.get(name)
            if known == kind:
                continue
            if not learning:
                new.append(name if known is None else f"{name}:{known}->{kind}")
            if schema is None:
                schema = dict(self.schema)
            schema[name] = kind
        if schema is not None:
            self.schema = _shared_schema(schema)
        if new:
            self.drift_fields = tuple(sorted({*self.drift_fields, *new}))
            self.drift_at = now

    def may_be_stuck(self, now: float, p: QualityParams) -> bool:
        """Cheap first check: occupied for long enough to be stuck if uncorroborated."""
        return self._occupied_since is not None and now - self._occupied_since >= p.stuck_after

    def stuck(self, now: float, corroborated_at: float | None, p: QualityParams) -> bool:
        """Occupied for `stuck_after` with nothing from any other device of the room
        (`corroborated_at`: when another one last saw someone) since."""
        since = self._occupied_since
        if since is None or now - since < p.stuck_after:
            return False
        return corroborated_at is None or corroborated_at < now - p.stuck_after

    def view(
        self, now: float, battery: float | None, corroborated_at: float | None, p: QualityParams
    ) -> dict[str, Any]:
        return {
            "message_rate": round(self.rate(now), 2),
            "flooding": self.flooding(now, p),
            "throttled": self.throttled,
            "stuck": self.stuck(now, corroborated_at, p),
            "schema_drift": list(self.drift_fields) if self.drift_fields else None,
            "schema_drift_at": self.drift_at,
            "battery_low": battery_low(battery, p),
        }


def battery_low(battery: float | None, p: QualityParams) -> bool:
    return battery is not None and battery <= p.battery_low


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__


def _shared_schema(schema: dict[str, str]) -> Mapping[str, str]:
    """One read-only mapping per distinct schema, within the bound."""
    key = tuple(sorted(schema.items()))
    shared = _schemas.get(key)
    if shared is None:
        shared = MappingProxyType(schema)
        if len(_schemas) < MAX_SHARED_SHAPES:
            _schemas[key] = shared
    return shared


_EMPTY_SCHEMA: Mapping[str, str] = MappingProxyType({})
