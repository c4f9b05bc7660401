"""Rules as tables of (facts, event, now, memory) -> actions: the room, the events and
the runner shared by the tests of rules.triggers, .conditions, .actions, .memory,
.loader and .engine.

Every scenario runs its steps in order, round-tripping the memory through JSON
between steps, as a gateway that restarts after any event would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rules.engine import RuleMemory, RuleSet, load_rules
from rules.types import (
    AccessEvent,
    Action,
    Alert,
    Command,
    DeviceAvailabilityChanged,
    OccupancyChanged,
    Publish,
    ReadingChanged,
    RoomFacts,
    RuleEvent,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rules"
PARIS = ZoneInfo("Europe/Paris")
# Monday 4 March 2024, 10:00 UTC (11:00 in Paris, winter time).
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC).timestamp()

ROOM = RoomFacts(
    room_id="orion",
    type="meeting",
    building="hq",
    floor="2",
    bookable=True,
    capacity=8,
    occupancy="occupied",
    occupancy_since=T0 - 3600,
    people=3,
    co2_ppm=600.0,
    temperature_c=21.0,
    humidity_pct=40.0,
    illuminance_lux=500.0,
    lights_on=True,
    brightness_pct=60.0,
    power_w=40.0,
    door_open=False,
    door_open_since=None,
    locked=True,
    lux_target=500.0,
    devices={"light": ("orion-l1", "orion-l2"), "hvac": ("orion-hvac",), "lock": ("orion-door",)},
)


def room(**changes: Any) -> dict[str, RoomFacts]:
    return {"orion": replace(ROOM, **changes)}


def local(text: str, zone: tzinfo = PARIS) -> float:
    """Epoch seconds of a local 'YYYY-MM-DD HH:MM[:SS]' in `zone`."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def rules(text: str, tz: str = "UTC") -> RuleSet:
    return load_rules(text, source="test", tz=tz)


def show(action: Action) -> tuple[Any, ...]:
    """Actions as short tuples, so tables stay readable."""
    match action:
        case Command():
            return ("cmd", action.device_id, action.payload)
        case Alert():
            return ("alert", action.severity.value, action.message)
        case Publish():
            return ("publish", action.topic, action.payload)


Step = tuple[dict[str, RoomFacts], RuleEvent, float, list[tuple[Any, ...]]]


def run(ruleset: RuleSet, steps: list[Step], memory: RuleMemory | None = None) -> RuleMemory:
    memory = memory or RuleMemory()
    for index, (facts, event, now, expected) in enumerate(steps):
        actions, memory = ruleset.evaluate(facts, event, now, memory)
        assert [show(a) for a in actions] == expected, f"step {index}: {event}"
        # What the gateway persists and loads back after a restart.
        memory = RuleMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
    return memory


LIGHTS_OFF = [("cmd", "orion-l1", {"state": "OFF"}), ("cmd", "orion-l2", {"state": "OFF"})]


def occupancy(old: str, new: str, at: float) -> OccupancyChanged:
    return OccupancyChanged("orion", old, new, at)


def reading(fact: str, old: Any, new: Any, at: float) -> ReadingChanged:
    return ReadingChanged("orion", fact, old, new, at)


def badge(result: str, at: float, room_id: str = "orion") -> AccessEvent:
    return AccessEvent(room_id, f"{room_id}-reader", result, "p-1234", at)


def availability(device: str, online: bool, at: float) -> DeviceAvailabilityChanged:
    return DeviceAvailabilityChanged("orion", device, online, at)
