"""The schema of a rules file: pydantic models, checked once when rules load.

A rules file is a YAML list of rules (or a mapping with a `rules:` list):

    - name: lights-off-when-vacant
      description: Switch the lights off when the room becomes vacant.
      priority: energy            # energy | booking | manual | safety
      trigger: {occupancy: vacant}
      conditions: {fact: lights_on, op: ne, value: false}
      actions: [{lights: "off"}]

Triggers, conditions and actions are each told apart by the key they carry
(`occupancy:`, `fact:`, `at:`, ...): a callable discriminator picks the model, so a
mistake is reported against that one model instead of against every union branch.
Everything a rule names (facts, device kinds, template fields) is checked here, so
the compiled rules never meet a name they do not know.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable
from datetime import time
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    StrictBool,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rules.types import FACT_NAMES, RoomFacts

# What kind of value each fact holds, read off RoomFacts so the two never drift apart.


def _kind_of(annotation: Any) -> str:
    args = [arg for arg in (get_args(annotation) or (annotation,)) if arg is not type(None)]
    if bool in args:  # before int: bool is an int
        return "bool"
    if int in args or float in args:
        return "number"
    return "str"


_HINTS = get_type_hints(RoomFacts)
FACT_KINDS: dict[str, str] = {name: _kind_of(_HINTS[name]) for name in sorted(FACT_NAMES)}
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
OCCUPANCY_STATES = ("occupied", "vacant", "unknown")
# The device kinds a site config may give a device (gateway.config.DeviceKind).
DEVICE_KINDS = ("light", "hvac", "lock", "sensor", "switch", "badge_reader")
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Names a message or topic template may use; facts come from the room the rule fired for.
TEMPLATE_NAMES = frozenset({"room", "rule", "value", "fact", "device", "count", "time", "date"} | FACT_NAMES)

# Numbers never come from strings or booleans: `for: "60"` is a mistake worth reporting.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Seconds = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
NonNegative = Seconds
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def _parse_clock(value: Any) -> Any:
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match:
            hour, minute, second = match.groups()
            return time(int(hour), int(minute), int(second or 0))
    if isinstance(value, time):
        return value
    raise ValueError('must be a time of day "HH:MM"')


ClockTime = Annotated[time, BeforeValidator(_parse_clock)]


def check_template(text: str) -> str:
    """Only plain names from TEMPLATE_NAMES: no attribute access, indexing or nesting."""
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None
    for _, name, spec, conversion in pieces:
        if name is None:
            continue
        if name not in TEMPLATE_NAMES:
            close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1)
            hint = f" (did you mean {{{close[0]}}}?)" if close else ""
            raise ValueError(f"unknown name {{{name}}} in template{hint}")
        if spec and ("{" in spec or "}" in spec):
            raise ValueError(f"nested field in the format of {{{name}}}")
        if conversion not in (None, "r", "s", "a"):
            raise ValueError(f"bad conversion !{conversion} in {{{name}}}")
    return text


def _check_fact(name: str) -> str:
    if name not in FACT_KINDS:
        close = difflib.get_close_matches(name, FACT_KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown fact {name!r}{hint}")
    return name


def _check_value(info: ValidationInfo, value: Any) -> Any:
    """`value` must be something the fact validated before it can hold (None: "unknown")."""
    fact = info.data.get("fact")
    kind = FACT_KINDS.get(fact) if isinstance(fact, str) else None
    if value is None or kind is None:
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"must be true or false for fact {fact!r}")
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"must be a number for fact {fact!r}")
    if kind == "str" and not isinstance(value, str):
        raise ValueError(f"must be a string for fact {fact!r}")
    if fact == "occupancy" and value not in OCCUPANCY_STATES:
        raise ValueError(f"must be one of {', '.join(OCCUPANCY_STATES)} for fact 'occupancy'")
    return value


def _needs_number(info: ValidationInfo, what: str) -> None:
    fact = info.data.get("fact")
    if isinstance(fact, str) and FACT_KINDS.get(fact) != "number":
        raise ValueError(f"{what} needs a numeric fact; {fact!r} is not one")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _by_key(*keys: tuple[str, str]) -> Callable[[Any], str | None]:
    """A discriminator: the tag of the first key present in a mapping."""

    def pick(value: Any) -> str | None:
        if isinstance(value, dict):
            for key, tag in keys:
                if key in value:
                    return tag
        return None

    return pick


def _by_shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "Word"
    if isinstance(value, dict):
        return "Params"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "Amount"
    return None


# Tags appear in pydantic's error locations; error paths leave them out.
UNION_TAGS = frozenset(
    {"Word", "Params", "Amount", "One", "Many"}
    | {"Occupancy", "Fact", "Clock", "Device", "Access"}
    | {"FactIs", "Window", "All", "Any", "Not"}
    | {"Lights", "Daylight", "Hvac", "Lock", "Alert", "Publish"}
)


# Triggers


class OccupancyTrigger(_Spec):
    """The room became occupied/vacant; with `for:`, has been so for that long."""

    occupancy: Literal["occupied", "vacant"]
    for_: Seconds = Field(default=0, alias="for")


class FactTrigger(_Spec):
    """A fact crossed a threshold (`above`/`below`), took a value (`is`), or just changed."""

    fact: str
    above: Number | None = None
    below: Number | None = None
    is_: StrictBool | str | None = Field(default=None, alias="is")
    # The value must come back this far past the threshold before the trigger re-arms.
    hysteresis: NonNegative = 0
    for_: Seconds = Field(default=0, alias="for")

    @field_validator("fact")
    @classmethod
    def _fact(cls, value: str) -> str:
        return _check_fact(value)

    @field_validator("above", "below")
    @classmethod
    def _threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None:
            _needs_number(info, f"{info.field_name}")
        return value

    @field_validator("is_")
    @classmethod
    def _is(cls, value: bool | str | None, info: ValidationInfo) -> bool | str | None:
        fact = info.data.get("fact")
        if value is not None and isinstance(fact, str) and FACT_KINDS.get(fact) == "number":
            raise ValueError(f"use above/below for the numeric fact {fact!r}")
        return _check_value(info, value)  # type: ignore[no-any-return]

    @model_validator(mode="after")
    def _consistent(self) -> FactTrigger:
        given = [key for key in ("above", "below", "is_") if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError("give only one of above, below, is")
        if self.hysteresis and not (self.above is not None or self.below is not None):
            raise ValueError("hysteresis needs above or below")
        if not given and self.for_:
            raise ValueError("for needs above, below or is (a bare fact trigger fires on every change)")
        return self


class TimeTrigger(_Spec):
    """A time of day in the site's time zone, on some weekdays."""

    at: ClockTime
    weekdays: tuple[Weekday, ...] = Field(default=WEEKDAYS, min_length=1)
    # A missed occurrence fires on catch-up only when at most this late (None: any lateness).
    catch_up: Seconds | None = None


class DeviceTrigger(_Spec):
    """A device in the room went offline (`any`, or a device kind), optionally for a while."""

    device_offline: str
    for_: Seconds = Field(default=0, alias="for")

    @field_validator("device_offline")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != "any" and value not in DEVICE_KINDS:
            raise ValueError(f"must be 'any' or a device kind ({', '.join(DEVICE_KINDS)})")
        return value


class AccessTrigger(_Spec):
    """A badge read; with `count`/`within`, that many reads in that many seconds in one room."""

    access: Literal["granted", "denied"]
    count: int = Field(default=1, ge=1, le=1000, strict=True)
    within: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _burst(self) -> AccessTrigger:
        if self.count > 1 and self.within is None:
            raise ValueError("count above 1 needs within (seconds)")
        if self.within is not None and self.count == 1:
            raise ValueError("within needs count above 1")
        return self


Trigger = Annotated[
    Annotated[OccupancyTrigger, Tag("Occupancy")]
    | Annotated[FactTrigger, Tag("Fact")]
    | Annotated[TimeTrigger, Tag("Clock")]
    | Annotated[DeviceTrigger, Tag("Device")]
    | Annotated[AccessTrigger, Tag("Access")],
    Discriminator(
        _by_key(
            ("occupancy", "Occupancy"),
            ("fact", "Fact"),
            ("at", "Clock"),
            ("device_offline", "Device"),
            ("access", "Access"),
        ),
        custom_error_type="trigger_kind",
        custom_error_message=(
            "must be a mapping with one of the keys occupancy, fact, at, device_offline, access"
        ),
    ),
]


# Conditions


class FactCondition(_Spec):
    fact: str
    op: Literal["eq", "ne", "gt", "ge", "lt", "le"] = "eq"
    value: StrictBool | Number | str | None

    @field_validator("fact")
    @classmethod
    def _fact(cls, value: str) -> str:
        return _check_fact(value)

    @field_validator("op")
    @classmethod
    def _op(cls, value: str, info: ValidationInfo) -> str:
        if value not in ("eq", "ne"):
            _needs_number(info, f"op {value}")
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("op", "eq") not in ("eq", "ne"):
            raise ValueError(f"op {info.data['op']} needs a value, not null")
        return _check_value(info, value)


class TimeCondition(_Spec):
    """Local time (site time zone) inside [start, end) on the given weekdays.

    A window that ends before it starts (22:00-06:00) runs over midnight; the weekday is
    the one of the moment checked.
    """

    between: tuple[ClockTime, ClockTime] | None = None
    weekdays: tuple[Weekday, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _something(self) -> TimeCondition:
        if self.between is None and self.weekdays is None:
            raise ValueError("give between, weekdays or both")
        if self.between is not None and self.between[0] == self.between[1]:
            raise ValueError("between: start and end are the same (an empty window)")
        return self


class AllCondition(_Spec):
    all: list[Condition] = Field(min_length=1)


class AnyCondition(_Spec):
    any: list[Condition] = Field(min_length=1)


class NotCondition(_Spec):
    not_: Condition = Field(alias="not")


Condition = Annotated[
    Annotated[FactCondition, Tag("FactIs")]
    | Annotated[TimeCondition, Tag("Window")]
    | Annotated[AllCondition, Tag("All")]
    | Annotated[AnyCondition, Tag("Any")]
    | Annotated[NotCondition, Tag("Not")],
    Discriminator(
        _by_key(
            ("fact", "FactIs"),
            ("between", "Window"),
            ("weekdays", "Window"),
            ("all", "All"),
            ("any", "Any"),
            ("not", "Not"),
        ),
        custom_error_type="condition_kind",
        custom_error_message="must be a mapping with one of the keys fact, between, weekdays, all, any, not",
    ),
]
for _model in (AllCondition, AnyCondition, NotCondition):
    _model.model_rebuild()

# `conditions:` is one condition or a list of them (all must hold).
Conditions = Annotated[
    Annotated[list[Condition], Tag("Many")] | Annotated[Condition, Tag("One")],
    Discriminator(lambda v: "Many" if isinstance(v, list) else "One"),
]


# Actions


class LightsLevel(_Spec):
    brightness_pct: Number = Field(ge=0, le=100)


class LightsAction(_Spec):
    lights: Annotated[
        Annotated[Literal["on", "off"], Tag("Word")] | Annotated[LightsLevel, Tag("Params")],
        Discriminator(
            _by_shape,
            custom_error_type="lights_kind",
            custom_error_message='must be "on", "off" or {brightness_pct: 0-100}',
        ),
    ]


class DaylightParams(_Spec):
    """Step the lights toward the room's lux_target when illuminance is off by more than hysteresis_lux."""

    hysteresis_lux: NonNegative = 50
    step_pct: Number = Field(default=10, gt=0, le=100)
    # Dimming never goes below min_pct: switching off is the vacancy rules' job.
    min_pct: Number = Field(default=10, ge=0, le=100)
    max_pct: Number = Field(default=100, ge=0, le=100)

    @model_validator(mode="after")
    def _range(self) -> DaylightParams:
        if self.min_pct > self.max_pct:
            raise ValueError("min_pct is above max_pct")
        return self


class DaylightAction(_Spec):
    daylight_dim: DaylightParams = DaylightParams()


class HvacParams(_Spec):
    setpoint: (
        Annotated[
            Annotated[Literal["comfort", "setback"], Tag("Word")]
            | Annotated[Number, Field(ge=5, le=35), Tag("Amount")],
            Discriminator(
                _by_shape,
                custom_error_type="setpoint_kind",
                custom_error_message="must be comfort, setback or degrees C (5-35)",
            ),
        ]
        | None
    ) = None
    mode: Literal["off", "heat", "cool", "auto", "eco", "fan"] | None = None

    @model_validator(mode="after")
    def _something(self) -> HvacParams:
        if self.setpoint is None and self.mode is None:
            raise ValueError("give setpoint, mode or both")
        return self


class HvacAction(_Spec):
    hvac: HvacParams


class LockAction(_Spec):
    lock: Literal["lock", "unlock"]


class AlertParams(_Spec):
    severity: Literal["info", "warning", "critical"] = "warning"
    message: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        return check_template(value)


class AlertAction(_Spec):
    alert: AlertParams


class PublishParams(_Spec):
    topic: Annotated[str, Field(min_length=1, max_length=250)]
    payload: dict[str, JsonValue] = {}

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if "+" in value or "#" in value:
            raise ValueError("a topic to publish on cannot hold the wildcards + or #")
        return check_template(value)

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _check_templates_in(value)
        return value


def _check_templates_in(value: JsonValue) -> None:
    if isinstance(value, str):
        check_template(value)
    elif isinstance(value, dict):
        for item in value.values():
            _check_templates_in(item)
    elif isinstance(value, list):
        for item in value:
            _check_templates_in(item)


class PublishAction(_Spec):
    publish: PublishParams


Action = Annotated[
    Annotated[LightsAction, Tag("Lights")]
    | Annotated[DaylightAction, Tag("Daylight")]
    | Annotated[HvacAction, Tag("Hvac")]
    | Annotated[LockAction, Tag("Lock")]
    | Annotated[AlertAction, Tag("Alert")]
    | Annotated[PublishAction, Tag("Publish")],
    Discriminator(
        _by_key(
            ("lights", "Lights"),
            ("daylight_dim", "Daylight"),
            ("hvac", "Hvac"),
            ("lock", "Lock"),
            ("alert", "Alert"),
            ("publish", "Publish"),
        ),
        custom_error_type="action_kind",
        custom_error_message=(
            "must be a mapping with one of the keys lights, daylight_dim, hvac, lock, alert, publish"
        ),
    ),
]


# Rules

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class RuleSpec(_Spec):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=1000)
    priority: Literal["energy", "booking", "manual", "safety"] = "energy"
    enabled: StrictBool = True
    trigger: Trigger
    conditions: Conditions | None = None
    actions: list[Action] = Field(min_length=1)


class RulesFile(_Spec):
    rules: list[RuleSpec] = []
