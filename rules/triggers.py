"""Compiled triggers: given an event, the facts and the memory, the rooms a rule fires for.

Each trigger declares the event keys it listens to (`keys`), so the engine only asks
the rules that can match. `fire` may edit the memory draft (episodes, threshold
states, bursts) and returns one `Firing` per room (or device) the rule fires for.

Once per episode: a `for:` trigger records the start of the episode it fired for in
`episodes`; it fires again only for an episode with another start. Deadlines are
checked on Tick against stored start times, never against in-process timers, so
after a restart the first Tick fires whatever came due while the gateway was down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rules import spec
from rules.memory import MemoryDraft
from rules.types import (
    AccessEvent,
    DeviceAvailabilityChanged,
    OccupancyChanged,
    ReadingChanged,
    RoomFacts,
    RuleEvent,
    Tick,
)

Facts = Mapping[str, RoomFacts]
# ("tick",), ("occupancy", state), ("reading", fact), ("access", result), ("device",)
Key = tuple[str, ...]
TICK: Key = ("tick",)
DEVICE: Key = ("device",)
SCHEDULE = "*"  # the `episodes` key of a time-of-day trigger: it is not about one room


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule firing for one room: what conditions and actions see."""

    rule: str
    room_id: str
    facts: RoomFacts | None
    # When the triggering thing happened: the event's time, or `now` for Tick firings.
    # Time-window conditions look at this, so a badge read processed late is judged
    # by when it happened.
    at: float
    reason: str
    value: Any = None
    fact: str | None = None
    device_id: str | None = None
    count: int | None = None


def key_of(event: RuleEvent) -> Key:
    match event:
        case Tick():
            return TICK
        case OccupancyChanged(new=new):
            return ("occupancy", new)
        case ReadingChanged(fact=fact):
            return ("reading", fact)
        case AccessEvent(result=result):
            return ("access", result)
        case DeviceAvailabilityChanged():
            return DEVICE


def _seconds(value: float) -> str:
    return f"{value:g} s"


class Trigger:
    keys: tuple[Key, ...] = ()
    summary: str = ""

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        raise NotImplementedError


class OccupancyTrigger(Trigger):
    def __init__(self, model: spec.OccupancyTrigger) -> None:
        self.state = model.occupancy
        self.hold = model.for_
        # Without `for:` the change itself fires; with it, Ticks check the deadline.
        self.keys = (TICK,) if self.hold else (("occupancy", self.state),)
        self.summary = f"room {self.state}" + (f" for {_seconds(self.hold)}" if self.hold else "")

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        if isinstance(event, OccupancyChanged):
            if event.old == self.state:
                return []
            room = facts.get(event.room_id)
            return [Firing(rule, event.room_id, room, event.at, f"room became {self.state}", self.state)]
        if not isinstance(event, Tick):
            return []
        firings = []
        for room_id, room in facts.items():
            since = room.occupancy_since
            if room.occupancy != self.state or since is None or now - since < self.hold:
                continue
            if memory.episodes.get(rule, room_id) == since:
                continue  # this episode already fired
            memory.episodes.set(rule, room_id, since)
            reason = f"room {self.state} for {_seconds(now - since)} (>= {_seconds(self.hold)})"
            firings.append(Firing(rule, room_id, room, now, reason, self.state))
        return firings


# Facts whose RoomFacts also say since when they hold their value; a state first seen
# on a Tick (after a restart, say) is then dated correctly.
_SINCE: dict[str, Callable[[RoomFacts], float | None]] = {
    "door_open": lambda room: room.door_open_since,
    "occupancy": lambda room: room.occupancy_since,
}


class FactTrigger(Trigger):
    """Threshold, `is` or any-change trigger on one fact.

    A threshold trigger is a two-state machine per room kept in `active`: it enters
    when the value passes the threshold and leaves only once the value is back past
    the threshold by `hysteresis`, so a value hovering at the threshold fires once.
    Readings drive it (dated by the event), and so do Ticks (from the current facts),
    which catches values the gateway set without a ReadingChanged and restarts.
    A value that becomes unknown (None) ends the episode.
    """

    def __init__(self, model: spec.FactTrigger) -> None:
        self.fact = model.fact
        self.hold = model.for_
        self.read = _reader(model.fact)
        self.since_of = _SINCE.get(model.fact)
        hysteresis = model.hysteresis
        self.enters: Callable[[Any], bool] | None
        self.leaves: Callable[[Any], bool]
        if model.above is not None:
            above = model.above
            self.enters, self.leaves = (lambda v: v > above), (lambda v: v <= above - hysteresis)
            self.summary = f"{self.fact} above {above:g}"
        elif model.below is not None:
            below = model.below
            self.enters, self.leaves = (lambda v: v < below), (lambda v: v >= below + hysteresis)
            self.summary = f"{self.fact} below {below:g}"
        elif model.is_ is not None:
            wanted = model.is_
            self.enters, self.leaves = (lambda v: v == wanted), (lambda v: v != wanted)
            self.summary = f"{self.fact} is {_word(wanted)}"
        else:
            self.enters = None
            self.leaves = lambda v: True
            self.summary = f"{self.fact} changes"
        if hysteresis:
            self.summary += f" (hysteresis {hysteresis:g})"
        if self.hold:
            self.summary += f" for {_seconds(self.hold)}"
        reading: Key = ("reading", self.fact)
        self.keys = (reading,) if self.enters is None else (reading, TICK)

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        if isinstance(event, ReadingChanged):
            room = facts.get(event.room_id)
            if self.enters is None:
                if event.new == event.old:
                    return []
                reason = f"{self.fact} changed to {_word(event.new)}"
                return [Firing(rule, event.room_id, room, event.at, reason, event.new, self.fact)]
            firing = self._step(rule, event.room_id, room, event.new, event.at, now, memory)
            return [] if firing is None else [firing]
        if not isinstance(event, Tick):
            return []
        firings = []
        for room_id, room in facts.items():
            at = (self.since_of(room) if self.since_of else None) or now
            firing = self._step(rule, room_id, room, self.read(room), at, now, memory)
            if firing is not None:
                firings.append(firing)
        return firings

    def _step(
        self,
        rule: str,
        room_id: str,
        room: RoomFacts | None,
        value: Any,
        at: float,
        now: float,
        memory: MemoryDraft,
    ) -> Firing | None:
        assert self.enters is not None
        since = memory.active.get(rule, room_id)
        if since is None:
            if value is None or not self.enters(value):
                return None
            since = at
            memory.active.set(rule, room_id, since)
        elif value is None or self.leaves(value):
            memory.active.delete(rule, room_id)
            memory.episodes.delete(rule, room_id)
            return None
        if self.hold and now - since < self.hold:
            return None
        if memory.episodes.get(rule, room_id) == since:
            return None
        memory.episodes.set(rule, room_id, since)
        reason = f"{self.summary}: {_word(value)}"
        return Firing(rule, room_id, room, now if self.hold else at, reason, value, self.fact)


class TimeTrigger(Trigger):
    """A time of day on some weekdays, in the site's time zone.

    Memory keeps the last occurrence handled. On a Tick, an occurrence later than that
    fires once, for every room (conditions then pick the rooms). Catch-up: after a
    restart, only the latest missed occurrence fires, once, and only when it is at
    most `catch_up` seconds late (no limit by default). With no memory at all (first
    start, or a rule just added) the current occurrence is recorded without firing:
    nobody knows whether it was already acted on.
    """

    def __init__(self, model: spec.TimeTrigger, zone: ZoneInfo) -> None:
        self.at_time: time = model.at
        self.weekdays = frozenset(spec.WEEKDAYS.index(day) for day in model.weekdays)
        self.catch_up = model.catch_up
        self.zone = zone
        self.keys = (TICK,)
        days = "every day" if len(self.weekdays) == 7 else ",".join(model.weekdays)
        self.summary = f"at {self.at_time:%H:%M} {days} ({zone.key})"

    def latest(self, now: float) -> float | None:
        """The latest scheduled moment at or before `now`."""
        today = datetime.fromtimestamp(now, self.zone).date()
        for back in range(8):
            day = today - timedelta(days=back)
            if day.weekday() not in self.weekdays:
                continue
            moment = datetime.combine(day, self.at_time, tzinfo=self.zone).timestamp()
            if moment <= now:
                return moment
        return None

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        if not isinstance(event, Tick):
            return []
        moment = self.latest(now)
        if moment is None:
            return []
        handled = memory.episodes.get(rule, SCHEDULE)
        if handled is not None and moment <= handled:
            return []
        memory.episodes.set(rule, SCHEDULE, moment)
        if handled is None or (self.catch_up is not None and now - moment > self.catch_up):
            return []
        late = now - moment
        reason = f"{self.summary}" + (f", caught up {_seconds(round(late))} late" if late >= 2 else "")
        return [Firing(rule, room_id, room, now, reason) for room_id, room in facts.items()]


class DeviceTrigger(Trigger):
    """A device went offline. The engine keeps `offline` up to date for every device."""

    def __init__(self, model: spec.DeviceTrigger) -> None:
        self.kind = None if model.device_offline == "any" else model.device_offline
        self.hold = model.for_
        self.keys = (DEVICE, TICK) if self.hold else (DEVICE,)
        self.summary = f"{self.kind or 'any'} device offline" + (
            f" for {_seconds(self.hold)}" if self.hold else ""
        )

    def _matches(self, room: RoomFacts | None, device_id: str) -> bool:
        if self.kind is None:
            return True
        return room is not None and device_id in room.devices.get(self.kind, ())

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        if isinstance(event, DeviceAvailabilityChanged):
            if event.online:
                memory.episodes.delete(rule, event.device_id)
                return []
            room = facts.get(event.room_id)
            if self.hold or not self._matches(room, event.device_id):
                return []
            reason = f"device {event.device_id} offline"
            return [Firing(rule, event.room_id, room, event.at, reason, device_id=event.device_id)]
        if not isinstance(event, Tick) or not self.hold:
            return []
        firings = []
        for room_id, devices in memory.offline.rows.items():
            room = facts.get(room_id)
            for device_id, since in devices.items():
                if now - since < self.hold or memory.episodes.get(rule, device_id) == since:
                    continue
                if not self._matches(room, device_id):
                    continue
                memory.episodes.set(rule, device_id, since)
                reason = f"device {device_id} offline for {_seconds(round(now - since))}"
                firings.append(Firing(rule, room_id, room, now, reason, device_id=device_id))
        return firings


class AccessTrigger(Trigger):
    """A badge read; with `count`, a burst of that many in `within` seconds in one room.

    A burst fires once and starts counting afresh, so a fourth denial right after the
    third does not raise a second alert.
    """

    def __init__(self, model: spec.AccessTrigger) -> None:
        self.result = model.access
        self.count = model.count
        self.within = model.within or 0.0
        self.keys = (("access", self.result),)
        self.summary = f"access {self.result}" + (
            f" {self.count} times within {_seconds(self.within)}" if self.count > 1 else ""
        )

    def fire(
        self, rule: str, event: RuleEvent, facts: Facts, now: float, memory: MemoryDraft
    ) -> list[Firing]:
        if not isinstance(event, AccessEvent) or event.result != self.result:
            return []
        room = facts.get(event.room_id)
        if self.count == 1:
            reason = f"access {self.result} at {event.device_id}"
            return [
                Firing(rule, event.room_id, room, event.at, reason, self.result, None, event.device_id, 1)
            ]
        recent = tuple(t for t in memory.bursts.get(rule, event.room_id) or () if t > event.at - self.within)
        recent += (event.at,)
        if len(recent) < self.count:
            memory.bursts.set(rule, event.room_id, recent)
            return []
        memory.bursts.delete(rule, event.room_id)
        reason = f"access {self.result} {len(recent)} times within {_seconds(self.within)}"
        return [
            Firing(
                rule, event.room_id, room, event.at, reason, self.result, None, event.device_id, len(recent)
            )
        ]


def compile_trigger(model: spec.Trigger, zone: ZoneInfo) -> Trigger:
    match model:
        case spec.OccupancyTrigger():
            return OccupancyTrigger(model)
        case spec.FactTrigger():
            return FactTrigger(model)
        case spec.TimeTrigger():
            return TimeTrigger(model, zone)
        case spec.DeviceTrigger():
            return DeviceTrigger(model)
        case spec.AccessTrigger():
            return AccessTrigger(model)


def _reader(fact: str) -> Callable[[RoomFacts], Any]:
    # `fact` was checked against FACT_NAMES when the rules loaded.
    return lambda room: room.value(fact)


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
