"""Rules in action: room changes become rule events, rule actions become device commands.

Runs inside the gateway's lock, on the ingest thread (after each reading) and on
the ticker (time passing). The rules themselves are pure (`rules.engine`); this
module builds their inputs from the live state and carries out their outputs
through the actuator, the event log and MQTT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from devices.dialects import DIALECTS, dialect_for
from gateway.automation.actuator import ActuationPolicy, Actuator, Decision, Outgoing
from gateway.automation.event_log import EventLog
from gateway.config import RoomConfig, Settings
from gateway.live_state import LiveState
from gateway.logs import kv
from rules.engine import RuleMemory, RulesError, RuleSet, default_rules, load_rules_file
from rules.room_model import RoomState
from rules.types import (
    AccessEvent,
    Action,
    Alert,
    Command,
    DeviceAvailabilityChanged,
    OccupancyChanged,
    Priority,
    Publish,
    ReadingChanged,
    RoomFacts,
    RuleEvent,
    Tick,
)

log = logging.getLogger("officegw.rules")

Publisher = Callable[[str, bytes], None]

# How each fact that can change with a reading is read off a room state. Only the
# facts some rule watches are compared (see RuleSet.watched_facts).
FACT_READERS: dict[str, Callable[[RoomState], Any]] = {
    "people": lambda s: s.occupancy.people,
    "co2_ppm": lambda s: s.environment.co2_ppm,
    "temperature_c": lambda s: s.environment.temperature_c,
    "humidity_pct": lambda s: s.environment.humidity_pct,
    "illuminance_lux": lambda s: s.environment.illuminance_lux,
    "lights_on": lambda s: s.lighting.on,
    "brightness_pct": lambda s: s.lighting.brightness_pct,
    "power_w": lambda s: s.lighting.power_w,
    "door_open": lambda s: s.door_open,
    "locked": lambda s: s.locked,
}
# Rule timers (`for:`, time of day) need no finer resolution than this.
RULE_TICK_INTERVAL = 1.0
# Reading changes evaluated per hold of the gateway's lock on a tick.
READINGS_PER_SLICE = 25


def facts_of(
    config: RoomConfig,
    state: RoomState,
    devices: dict[str, tuple[str, ...]],
    next_booking_in: float | None = None,
) -> RoomFacts:
    occupancy, env, lighting = state.occupancy, state.environment, state.lighting
    return RoomFacts(
        room_id=config.id,
        type=config.type,
        building=config.building,
        floor=config.floor,
        bookable=config.bookable,
        capacity=config.capacity,
        occupancy=occupancy.state.value,
        occupancy_since=occupancy.since,
        people=occupancy.people,
        co2_ppm=env.co2_ppm,
        temperature_c=env.temperature_c,
        humidity_pct=env.humidity_pct,
        illuminance_lux=env.illuminance_lux,
        lights_on=lighting.on,
        brightness_pct=lighting.brightness_pct,
        power_w=lighting.power_w,
        door_open=state.door_open,
        door_open_since=state.door_since if state.door_open else None,
        locked=state.locked,
        lux_target=config.lux_target,
        comfort_setpoint_c=config.comfort_setpoint,
        setback_setpoint_c=config.setback_setpoint,
        next_booking_in=next_booking_in,
        devices=devices,
    )


# When a room's current or next booking starts (None: nothing booked), at `now`.
NextBooking = Callable[[str, float], float | None]
# (state, devices version, seconds to the next booking, facts)
_CachedFacts = tuple[RoomState, int, float | None, RoomFacts]


def _no_bookings(room_id: str, now: float) -> float | None:
    return None


class _LazyFacts(Mapping[str, RoomFacts]):
    """Facts built only for the rooms a rule looks at, and rebuilt only when the room's
    state, the set of devices or the time to its next booking changed since the last time."""

    def __init__(
        self, live: LiveState, cache: dict[str, _CachedFacts], next_booking: NextBooking, now: float
    ) -> None:
        self._live = live
        self._cache = cache
        self._next_booking = next_booking
        self._now = now

    def __getitem__(self, room_id: str) -> RoomFacts:
        state = self._live.state_of(room_id)
        version = self._live.devices.version
        start = self._next_booking(room_id, self._now)
        # A booking in progress counts as starting now.
        booking_in = None if start is None else max(0.0, start - self._now)
        cached = self._cache.get(room_id)
        if cached is not None and cached[0] is state and cached[1] == version and cached[2] == booking_in:
            return cached[3]
        facts = facts_of(
            self._live.config_of(room_id), state, self._live.devices.by_kind(room_id), booking_in
        )
        self._cache[room_id] = (state, version, booking_in, facts)
        return facts

    def __iter__(self) -> Iterator[str]:
        return iter(self._live.states())

    def __len__(self) -> int:
        return len(self._live.states())


def load_rule_set(settings: Settings) -> RuleSet:
    """The configured rules file, or the built-in set when none is named."""
    if settings.rules is None:
        return default_rules(tz=settings.site.timezone)
    return load_rules_file(Path(settings.rules), tz=settings.site.timezone)


class Automation:
    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        events: EventLog,
        rules: RuleSet,
        publish: Publisher,
        next_booking: NextBooking = _no_bookings,
    ) -> None:
        self._settings = settings
        self._next_booking = next_booking
        self._live = live
        self._events = events
        self._publish = publish
        self.rules = rules
        self.memory = RuleMemory()
        a = settings.actuation
        self.actuator = Actuator(
            ActuationPolicy(
                confirm_timeout=a.confirm_timeout,
                max_attempts=a.max_attempts,
                min_switch_interval=a.min_switch_interval,
                override_release=a.override_release,
                booking_hold=a.booking_hold,
                safety_hold=a.safety_hold,
            )
        )
        self.alerts_raised = 0
        self.commands_sent = 0
        self._watched = rules.watched_facts
        self._facts_cache: dict[str, _CachedFacts] = {}
        self._pending_readings: dict[tuple[str, str], ReadingChanged] = {}
        self._last_rule_tick = float("-inf")

    # Inputs (called with the live-state lock held)

    def after_reading(
        self,
        room_id: str,
        device_id: str,
        fields: Mapping[str, Any],
        before: RoomState,
        after: RoomState,
        now: float,
    ) -> None:
        in_flight = self.actuator.in_flight(device_id)
        outcome = self.actuator.report(device_id, room_id, fields, now)
        if outcome == "override":
            self._events.append(now, "override", room_id, device=device_id, state=_actuated(fields))
            log.info(kv("manual override", room=room_id, device=device_id))
        elif outcome == "confirmed":
            confirmed: dict[str, Any] = {
                "device": device_id,
                "status": "confirmed",
                "device_kind": self._kind(device_id),
            }
            if in_flight is not None:
                # What the service report measures: how long after its first attempt
                # the device reported the commanded state.
                confirmed |= {
                    "rule": in_flight.command.rule,
                    "payload": in_flight.command.payload,
                    "attempts": in_flight.attempts,
                    "sent_at": _iso(in_flight.first_sent_at),
                    # Milliseconds, to the microsecond: the report rounds, the log does not.
                    "confirm_ms": round((now - in_flight.first_sent_at) * 1000, 3),
                }
            self._events.append(now, "command", room_id, **confirmed)

        for event in _changes(room_id, before, after, now, self._watched):
            self._dispatch(event, now)
        access = fields.get("access")
        if access is not None:
            self._on_event(AccessEvent(room_id, device_id, access, fields.get("credential"), now), now)

    def after_availability(self, room_id: str, device_id: str, online: bool, now: float) -> None:
        if not online:
            # Its evidence stops counting: the room may turn vacant right now.
            before = self._live.state_of(room_id)
            self._live.forget(room_id, device_id, now)
            for event in _changes(room_id, before, self._live.state_of(room_id), now, self._watched):
                self._dispatch(event, now)
        self._on_event(DeviceAvailabilityChanged(room_id, device_id, online, now), now)

    def tick(self, before: Mapping[str, RoomState], now: float) -> None:
        """Time passed: occupancy that expired, rule timers, command retries (all at once;
        the gateway's ticker runs the same steps with the lock released in between)."""
        self.expired(before, now)
        for chunk in self.take_readings():
            self.evaluate(chunk, now)
        self.timers(now)

    def expired(self, before: Mapping[str, RoomState], now: float) -> None:
        """Acts on rooms that `LiveState.expire` moved on since `before`."""
        for room_id, old in before.items():
            new = self._live.state_of(room_id)
            if new is not old:
                for event in _changes(room_id, old, new, now, self._watched):
                    self._dispatch(event, now)

    def take_readings(self, chunk: int = READINGS_PER_SLICE) -> list[list[ReadingChanged]]:
        """The coalesced reading changes since the last tick, in slices: under a sensor
        flood there are hundreds, and the caller releases the lock between slices so
        that ingest (and actuation latency) does not wait for all of them."""
        pending, self._pending_readings = self._pending_readings, {}
        changed = [event for event in pending.values() if event.old != event.new]
        return [changed[i : i + chunk] for i in range(0, len(changed), chunk)]

    def evaluate(self, events: list[ReadingChanged], now: float) -> None:
        for event in events:
            self._on_event(event, now)

    def timers(self, now: float) -> None:
        """Rule timers (once a second) and command retries."""
        if now - self._last_rule_tick >= RULE_TICK_INTERVAL:
            self._last_rule_tick = now
            a = self._settings.availability
            for device_id, room_id in self._live.devices.expire_silent(
                now, a.mains_timeout, a.battery_timeout
            ):
                log.info(kv("device silent, now offline", device=device_id, room=room_id))
                self.after_availability(room_id, device_id, False, now)
            self._on_event(Tick(now), now)
        outgoing, alerts = self.actuator.tick(now)
        for item in outgoing:
            self._publish_command(item, now)
        for alert in alerts:
            self._raise(alert)

    def manual_command(self, device_id: str, payload: dict[str, Any], now: float) -> Decision:
        room_id = self._live.devices.room_of(device_id) or ""
        command = Command(device_id, payload, Priority.MANUAL, "manual", room_id, "API")
        decision = self.actuator.manual(command, now)
        self._events.append(now, "command", room_id, device=device_id, payload=payload, rule="manual")
        if decision.outgoing is not None:
            self._publish_command(decision.outgoing, now)
        return decision

    def forget(self, rooms: list[str], devices: list[str]) -> None:
        """Drops what the automation holds about rooms and devices the registry forgot
        (call with the live-state lock held)."""
        gone = set(rooms)
        for room_id in gone:
            self._facts_cache.pop(room_id, None)
        if gone:
            self._pending_readings = {
                key: event for key, event in self._pending_readings.items() if key[0] not in gone
            }
        self.actuator.forget(devices)
        self.memory = self.memory.without([*rooms, *devices])

    def reload(self, settings: Settings, now: float) -> RuleSet:
        """Replaces the rules; on a bad file raises RulesError and keeps the old ones."""
        rules = load_rule_set(settings)
        self.rules = rules
        self._watched = rules.watched_facts
        self.memory = self.memory.retain({info.name for info in rules.rules})
        self._events.append(now, "rules", None, source=rules.source, rules=len(rules.rules))
        log.info(kv("rules reloaded", source=rules.source, rules=len(rules.rules)))
        return rules

    # Internals

    def _dispatch(self, event: RuleEvent, now: float) -> None:
        """Occupancy changes act at once (they switch lights); reading changes are
        coalesced per room and fact until the next tick. Threshold and daylight rules
        need the latest value, not every one: a sensor flood then costs one rule
        evaluation per room and tick instead of one per message."""
        if not isinstance(event, ReadingChanged):
            self._on_event(event, now)
            return
        key = (event.room_id, event.fact)
        earlier = self._pending_readings.get(key)
        if earlier is not None:
            event = ReadingChanged(event.room_id, event.fact, earlier.old, event.new, event.at)
        self._pending_readings[key] = event

    def _on_event(self, event: RuleEvent, now: float) -> None:
        if isinstance(event, OccupancyChanged):
            self._events.append(now, "occupancy", event.room_id, old=event.old, new=event.new)
            if event.new == "vacant":
                for device in self.actuator.room_vacant(event.room_id):
                    self._events.append(now, "override", event.room_id, device=device, status="released")
        if not self.rules.listens_to(event):
            return
        actions, self.memory = self.rules.evaluate(
            _LazyFacts(self._live, self._facts_cache, self._next_booking, now), event, now, self.memory
        )
        for action in actions:
            self._carry_out(action, now)

    def _carry_out(self, action: Action, now: float) -> None:
        if isinstance(action, Command):
            decision = self.actuator.submit(action, now)
            if decision.outgoing is not None:
                self._publish_command(decision.outgoing, now)
            elif decision.outcome in ("suppressed", "deferred"):
                self._events.append(
                    now,
                    "command",
                    action.room_id,
                    device=action.device_id,
                    payload=action.payload,
                    rule=action.rule,
                    status=decision.outcome,
                    detail=decision.detail,
                )
        elif isinstance(action, Alert):
            self._raise(action)
        elif isinstance(action, Publish):
            self._publish(action.topic, orjson.dumps(action.payload))

    def _publish_command(self, item: Outgoing, now: float) -> None:
        topic = self._live.devices.topic_of(item.device_id)
        if topic is None:
            log.warning(kv("command dropped: device has no topic", device=item.device_id))
            return
        commander = self._live.devices.commander_of(item.device_id)
        if commander is not None:
            # A discovered device says in its announcements how it takes commands.
            messages = commander(item.payload)
        else:
            known = self._live.devices.spec_of(item.device_id)
            spec = known[0] if known else None
            name = spec.dialect if spec is not None else "native"
            if name not in DIALECTS:
                # Discovered without a command topic: nothing carries a command to it.
                log.warning(kv("command dropped: device announces no command topic", device=item.device_id))
                return
            dialect = dialect_for(name, spec.channel if spec is not None else None)
            reported = self._live.devices.capabilities_of(item.device_id)
            messages = dialect.command(topic, item.payload, reported)
        for command_topic, payload in messages:
            self._publish(command_topic, payload)
        self.commands_sent += 1
        self._events.append(
            now,
            "command",
            item.command.room_id,
            device=item.device_id,
            payload=item.payload,
            rule=item.command.rule,
            attempt=item.attempt,
            status="sent",
            device_kind=self._kind(item.device_id),
        )

    def _kind(self, device_id: str) -> str | None:
        return self._live.devices.kind_of(device_id)

    def _raise(self, alert: Alert) -> None:
        self.alerts_raised += 1
        self._events.append(
            alert.at,
            "alert",
            alert.room_id,
            rule=alert.rule,
            severity=alert.severity.value,
            message=alert.message,
        )
        log.warning(
            kv(
                "alert",
                rule=alert.rule,
                room=alert.room_id,
                severity=alert.severity.value,
                message=alert.message,
            )
        )


def _iso(ts: float) -> str:
    # As the REST API and the pushed documents write times: UTC with a Z.
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _actuated(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: fields[key] for key in ("state", "brightness", "setpoint", "mode") if key in fields}


def _changes(
    room_id: str, before: RoomState, after: RoomState, now: float, watched: frozenset[str]
) -> Iterator[RuleEvent]:
    if before.occupancy.state != after.occupancy.state:
        yield OccupancyChanged(room_id, before.occupancy.state.value, after.occupancy.state.value, now)
    if not watched or (
        before.environment is after.environment
        and before.lights is after.lights
        and before.doors_open is after.doors_open
        and before.locks_locked is after.locks_locked
        and before.occupancy.people == after.occupancy.people
    ):
        return
    for fact in watched:
        read = FACT_READERS.get(fact)
        if read is None:
            continue
        old, new = read(before), read(after)
        if old != new:
            yield ReadingChanged(room_id, fact, old, new, now)


__all__ = ["Automation", "RulesError", "facts_of", "load_rule_set"]
