"""Shared checks for the simulator tests: the DESIGN.md §2 native payload table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return type(v) is int and v >= 0


# DESIGN.md §2, with the ranges a sane sensor in an office stays within.
_FIELDS: dict[str, Callable[[Any], bool]] = {
    "occupancy": lambda v: type(v) is bool,
    "people": _count,
    "entered": _count,
    "exited": _count,
    "contact": lambda v: type(v) is bool,
    "illuminance": lambda v: _number(v) and 0 <= v <= 100_000,
    "temperature": lambda v: _number(v) and 10 <= v <= 40,
    "humidity": lambda v: _number(v) and 0 <= v <= 100,
    "co2": lambda v: _number(v) and 300 <= v <= 3000,
    "state": lambda v: v in ("ON", "OFF", "LOCK", "UNLOCK"),
    "brightness": lambda v: type(v) is int and 0 <= v <= 254,
    "power": lambda v: _number(v) and v >= 0,
    "energy": lambda v: _number(v) and v >= 0,
    "access": lambda v: v in ("granted", "denied"),
    "credential": lambda v: isinstance(v, str) and 4 <= len(v) <= 64,
    "battery": lambda v: _number(v) and 0 <= v <= 100,
    "ts": lambda v: _number(v) and v > 1e9,
}
# What each device kind may say; a light never reports LOCK.
_KIND_FIELDS = {
    "pir": {"occupancy", "illuminance", "battery"},
    "env": {"temperature", "humidity", "co2", "illuminance", "battery"},
    "light": {"state", "brightness", "power", "energy"},
    "counter": {"people", "entered", "exited"},
    "door": {"contact", "battery"},
    "badge": {"access", "credential"},
    "lock": {"state", "battery"},
}
_STATES = {"light": {"ON", "OFF"}, "lock": {"LOCK", "UNLOCK"}}


def payload_errors(device: str, payload: bytes) -> list[str]:
    """Everything wrong with one native payload from device `<room>-<kind>`."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    if not isinstance(body, dict) or not body:
        return [f"not a non-empty object: {payload!r}"]
    kind = device.rsplit("-", 1)[-1]
    allowed = _KIND_FIELDS.get(kind, set()) | {"ts"}
    errors = [f"{k}={v!r} invalid" for k, v in body.items() if k in _FIELDS and not _FIELDS[k](v)]
    errors += [f"{k} not expected from a {kind}" for k in body if k not in allowed]
    if kind in _STATES and "state" in body and body["state"] not in _STATES[kind]:
        errors.append(f"state {body['state']} from a {kind}")
    return errors


@pytest.fixture
def check_payload() -> Callable[[str, bytes], list[str]]:
    return payload_errors
