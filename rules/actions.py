"""Compiled actions: what a firing turns into (device commands, alerts, publishes).

Device commands go to every device of the kind in the room (`RoomFacts.devices`), in
the native vocabulary of DESIGN.md §2. Whether and when they go out (priorities,
manual override, debounce) is the gateway's actuator's call, not ours.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import JsonValue

from rules import spec
from rules.triggers import Firing
from rules.types import Action, Alert, Command, Priority, Publish, Severity

ActionFn = Callable[[Firing, float], list[Action]]

LIGHT, HVAC, LOCK = "light", "hvac", "lock"


def compile_action(model: spec.Action, rule: str, priority: Priority, zone: ZoneInfo) -> ActionFn:
    match model:
        case spec.LightsAction(lights=spec.LightsLevel(brightness_pct=pct)):
            return _command(LIGHT, {"brightness": to_brightness(pct)}, rule, priority)
        case spec.LightsAction(lights=word):
            return _command(LIGHT, {"state": "ON" if word == "on" else "OFF"}, rule, priority)
        case spec.DaylightAction():
            return _daylight(model.daylight_dim, rule, priority)
        case spec.HvacAction():
            return _hvac(model.hvac, rule, priority)
        case spec.LockAction():
            return _command(LOCK, {"state": model.lock.upper()}, rule, priority)
        case spec.AlertAction():
            return _alert(model.alert, rule, zone)
        case spec.PublishAction():
            return _publish(model.publish, rule, zone)


def describe_action(model: spec.Action) -> str:
    match model:
        case spec.LightsAction(lights=spec.LightsLevel(brightness_pct=pct)):
            return f"lights {pct:g} %"
        case spec.LightsAction(lights=word):
            return f"lights {word}"
        case spec.DaylightAction(daylight_dim=p):
            return f"dim lights toward lux_target (±{p.hysteresis_lux:g} lx, steps of {p.step_pct:g} %)"
        case spec.HvacAction(hvac=p):
            parts = []
            if isinstance(p.setpoint, float):
                parts.append(f"setpoint {p.setpoint:g} °C")
            elif p.setpoint is not None:
                parts.append(f"setpoint {p.setpoint}")
            if p.mode is not None:
                parts.append(f"mode {p.mode}")
            return "hvac " + ", ".join(parts)
        case spec.LockAction():
            return model.lock
        case spec.AlertAction(alert=p):
            return f"alert ({p.severity}): {p.message}"
        case spec.PublishAction(publish=p):
            return f"publish to {p.topic}"


def to_brightness(pct: float) -> int:
    """Percent to the 0-254 scale of the native `brightness` field."""
    return max(0, min(254, round(pct * 254 / 100)))


def _devices(firing: Firing, kind: str) -> tuple[str, ...]:
    return () if firing.facts is None else firing.facts.devices.get(kind, ())


def _command(kind: str, payload: dict[str, Any], rule: str, priority: Priority) -> ActionFn:
    def act(firing: Firing, now: float) -> list[Action]:
        return [
            Command(device, dict(payload), priority, rule, firing.room_id, firing.reason)
            for device in _devices(firing, kind)
        ]

    return act


def _daylight(params: spec.DaylightParams, rule: str, priority: Priority) -> ActionFn:
    """One step toward the lux target per illuminance reading: measured light includes
    our own, so small steps with a dead band converge without oscillating."""

    def act(firing: Firing, now: float) -> list[Action]:
        room = firing.facts
        if room is None or room.lux_target is None or room.lights_on is False:
            return []  # nothing to aim at, or lights off: dimming never switches lights on
        lux = firing.value if firing.fact == "illuminance_lux" else room.illuminance_lux
        if not isinstance(lux, int | float) or isinstance(lux, bool):
            return []
        current = room.brightness_pct
        if current is None:
            if room.lights_on is not True:
                return []
            current = 100.0  # on with no level reported: a plain switch at full
        target = room.lux_target
        if lux < target - params.hysteresis_lux:
            level = min(params.max_pct, current + params.step_pct)
        elif lux > target + params.hysteresis_lux:
            level = max(params.min_pct, current - params.step_pct)
        else:
            return []
        if to_brightness(level) == to_brightness(current):
            return []
        reason = f"{firing.reason}; {lux:g} lx vs target {target:g} lx: {current:g} % -> {level:g} %"
        return [
            Command(device, {"brightness": to_brightness(level)}, priority, rule, firing.room_id, reason)
            for device in _devices(firing, LIGHT)
        ]

    return act


def _hvac(params: spec.HvacParams, rule: str, priority: Priority) -> ActionFn:
    def act(firing: Firing, now: float) -> list[Action]:
        room = firing.facts
        if room is None:
            return []
        payload: dict[str, Any] = {}
        if params.setpoint == "comfort":
            payload["setpoint"] = float(room.comfort_setpoint_c)
        elif params.setpoint == "setback":
            payload["setpoint"] = float(room.setback_setpoint_c)
        elif params.setpoint is not None:
            payload["setpoint"] = float(params.setpoint)
        if params.mode is not None:
            payload["mode"] = params.mode
        return [
            Command(device, dict(payload), priority, rule, firing.room_id, firing.reason)
            for device in _devices(firing, HVAC)
        ]

    return act


def _alert(params: spec.AlertParams, rule: str, zone: ZoneInfo) -> ActionFn:
    message = Template(params.message, zone)
    severity = Severity(params.severity)

    def act(firing: Firing, now: float) -> list[Action]:
        return [Alert(rule, firing.room_id, severity, message.render(firing), now)]

    return act


def _publish(params: spec.PublishParams, rule: str, zone: ZoneInfo) -> ActionFn:
    topic = Template(params.topic, zone)
    payload = {key: _json_template(value, zone) for key, value in params.payload.items()}

    def act(firing: Firing, now: float) -> list[Action]:
        return [Publish(rule, topic.render(firing), {key: fill(firing) for key, fill in payload.items()})]

    return act


def _json_template(value: JsonValue, zone: ZoneInfo) -> Callable[[Firing], JsonValue]:
    """A payload value with every string in it a template, compiled once."""
    if isinstance(value, str):
        return Template(value, zone).render
    if isinstance(value, dict):
        items = {key: _json_template(item, zone) for key, item in value.items()}
        return lambda firing: {key: fill(firing) for key, fill in items.items()}
    if isinstance(value, list):
        fills = [_json_template(item, zone) for item in value]
        return lambda firing: [fill(firing) for fill in fills]
    return lambda firing: value


# Template names and how to get each from a firing; names were checked at load
# (spec.TEMPLATE_NAMES), so rendering never looks anything up by user text.
_FIELDS: dict[str, Callable[[Firing, ZoneInfo], Any]] = {
    "room": lambda f, z: f.room_id,
    "rule": lambda f, z: f.rule,
    "value": lambda f, z: f.value,
    "fact": lambda f, z: f.fact,
    "device": lambda f, z: f.device_id,
    "count": lambda f, z: f.count,
    "time": lambda f, z: f"{datetime.fromtimestamp(f.at, z):%H:%M}",
    "date": lambda f, z: f"{datetime.fromtimestamp(f.at, z):%Y-%m-%d}",
}


def _field(name: str, firing: Firing, zone: ZoneInfo) -> Any:
    getter = _FIELDS.get(name)
    if getter is not None:
        return getter(firing, zone)
    return None if firing.facts is None else firing.facts.value(name)


class Template:
    """A `str.format`-style template over known names, parsed once.

    Rendering never fails: a value its format does not fit (`{value:.0f}` of None)
    is shown plainly, and unknown values read "unknown".
    """

    __slots__ = ("_pieces", "_zone")

    def __init__(self, text: str, zone: ZoneInfo) -> None:
        spec.check_template(text)
        self._pieces = list(string.Formatter().parse(text))
        self._zone = zone

    def render(self, firing: Firing) -> str:
        out: list[str] = []
        for literal, name, format_spec, conversion in self._pieces:
            out.append(literal)
            if name is None:
                continue
            value = _field(name, firing, self._zone)
            if value is None:
                out.append("unknown")
                continue
            if conversion == "r":
                value = repr(value)
            elif conversion == "a":
                value = ascii(value)
            elif conversion == "s":
                value = str(value)
            try:
                out.append(format(value, format_spec or ""))
            except (TypeError, ValueError):
                out.append(str(value))
        return "".join(out)
