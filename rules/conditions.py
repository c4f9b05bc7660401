"""Compiled conditions: a predicate over one firing, built once from the spec."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from rules import spec
from rules.triggers import Firing

Check = Callable[[Firing], bool]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def compile_condition(model: spec.Condition | list[spec.Condition], zone: ZoneInfo) -> Check:
    match model:
        case list():
            return _all([compile_condition(item, zone) for item in model])
        case spec.FactCondition():
            return _fact(model)
        case spec.TimeCondition():
            return _window(model, zone)
        case spec.AllCondition():
            return _all([compile_condition(item, zone) for item in model.all])
        case spec.AnyCondition():
            checks = [compile_condition(item, zone) for item in model.any]
            return lambda firing: any(check(firing) for check in checks)
        case spec.NotCondition():
            inner = compile_condition(model.not_, zone)
            return lambda firing: not inner(firing)


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    return lambda firing: all(check(firing) for check in checks)


def _fact(model: spec.FactCondition) -> Check:
    compare = _OPS[model.op]
    fact, wanted = model.fact, model.value
    ordering = model.op not in ("eq", "ne")

    def check(firing: Firing) -> bool:
        if firing.facts is None:
            return False  # a room the gateway has no facts for satisfies nothing
        value = firing.facts.value(fact)  # `fact` checked against FACT_NAMES at load
        if ordering and value is None:
            return False  # an unknown reading is neither above nor below anything
        return compare(value, wanted)

    return check


def _window(model: spec.TimeCondition, zone: ZoneInfo) -> Check:
    days = None if model.weekdays is None else frozenset(spec.WEEKDAYS.index(d) for d in model.weekdays)
    between = model.between

    def check(firing: Firing) -> bool:
        local = datetime.fromtimestamp(firing.at, zone)
        if days is not None and local.weekday() not in days:
            return False
        return between is None or in_window(local.time(), *between)

    return check


def in_window(moment: time, start: time, end: time) -> bool:
    """[start, end), running over midnight when end comes before start."""
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def describe_condition(model: spec.Condition | list[spec.Condition]) -> str:
    match model:
        case list():
            return " and ".join(_grouped(item) for item in model)
        case spec.FactCondition():
            return f"{model.fact} {_SYMBOLS[model.op]} {_literal(model.value)}"
        case spec.TimeCondition():
            parts = []
            if model.between is not None:
                parts.append(f"{model.between[0]:%H:%M}-{model.between[1]:%H:%M}")
            if model.weekdays is not None:
                parts.append(",".join(model.weekdays))
            return "time in " + " ".join(parts)
        case spec.AllCondition():
            return " and ".join(_grouped(item) for item in model.all)
        case spec.AnyCondition():
            return " or ".join(_grouped(item) for item in model.any)
        case spec.NotCondition():
            return f"not {_grouped(model.not_)}"


def _grouped(model: spec.Condition) -> str:
    text = describe_condition(model)
    return f"({text})" if isinstance(model, spec.AllCondition | spec.AnyCondition) else text


def _literal(value: bool | float | str | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return value
