"""The live state of one room, as a pure function of readings and time.

`apply` folds one validated device reading into a room's state; `expire` moves
the state forward in time (vacancy timeout). Both return a new frozen state and
never read the clock, so the same code runs live, in tests and in replays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from types import MappingProxyType
from typing import TypeVar

from devices.fields import DevicePayload
from rules import occupancy
from rules.occupancy import DEFAULT_PARAMS, Evidence, FusionParams, Occupancy, OccupancyState
from rules.site_time import day_bounds


@dataclass(frozen=True, slots=True)
class Environment:
    co2_ppm: float | None = None
    temperature_c: float | None = None
    humidity_pct: float | None = None
    illuminance_lux: float | None = None


@dataclass(frozen=True, slots=True)
class Light:
    on: bool | None = None
    brightness_pct: float | None = None
    power_w: float | None = None
    # Watts at full brightness, from the site config, for lights that report no power.
    rated_w: float | None = None

    @property
    def draw_w(self) -> float | None:
        """Reported power, else an estimate from the rated watts and the dimmer level."""
        if self.power_w is not None:
            return self.power_w
        if self.rated_w is None or self.on is None:
            return None
        if not self.on:
            return 0.0
        return self.rated_w * (self.brightness_pct if self.brightness_pct is not None else 100.0) / 100


@dataclass(frozen=True, slots=True)
class Lighting:
    on: bool | None
    brightness_pct: float | None
    power_w: float | None


@dataclass(frozen=True, slots=True)
class RoomState:
    room_id: str
    # Frozen values, so one shared default instance is safe.
    occupancy: OccupancyState = OccupancyState()  # noqa: RUF009
    environment: Environment = Environment()
    # Per device, so that a room with several lights, doors or locks is summarised
    # from all of them rather than from whichever spoke last.
    lights: Mapping[str, Light] = field(default_factory=lambda: MappingProxyType({}))
    doors_open: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    locks_locked: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    # Energy integrated from lighting power (reported or estimated), per day of the
    # site's time zone: the counters hold the day that ends at `energy_day_end` (UTC
    # epoch seconds), up to `energy_at`. (A state saved before site days has no end:
    # its counters count as the site day of `energy_at`.)
    energy_kwh: float = 0.0
    energy_day_end: float | None = None
    energy_at: float | None = None
    updated_at: float | None = None
    # When the room's door summary (any door open) last changed: door-held-open rules.
    door_since: float | None = None
    # Of energy_kwh, what was used while the room was vacant.
    energy_waste_kwh: float = 0.0

    @property
    def lighting(self) -> Lighting:
        if not self.lights:
            return Lighting(on=None, brightness_pct=None, power_w=None)
        states = [light.on for light in self.lights.values() if light.on is not None]
        on = any(states) if states else None
        levels = [
            light.brightness_pct
            for light in self.lights.values()
            if light.on and light.brightness_pct is not None
        ]
        brightness = max(levels) if levels else (0.0 if on is False else None)
        powers = [draw for light in self.lights.values() if (draw := light.draw_w) is not None]
        return Lighting(on=on, brightness_pct=brightness, power_w=sum(powers) if powers else None)

    @property
    def door_open(self) -> bool | None:
        return any(self.doors_open.values()) if self.doors_open else None

    @property
    def locked(self) -> bool | None:
        return all(self.locks_locked.values()) if self.locks_locked else None

    def kwh_today(self, now: float, zone: tzinfo = UTC) -> float | None:
        """Energy used today (the local day of `zone`, the site's) up to `now`, counting
        the current draw since the last report."""
        today = self.energy_today(now, zone)
        return None if today is None else today.at(now)[0]

    def kwh_wasted_today(self, now: float, zone: tzinfo = UTC) -> float | None:
        """Of `kwh_today`, what lit an empty room."""
        today = self.energy_today(now, zone)
        return None if today is None else today.at(now)[1]

    def energy_today(self, now: float, zone: tzinfo = UTC) -> EnergyToday | None:
        """Today's counters as a function of time, for `now` and every moment around it
        that falls in the same span of the same day (`EnergyToday.since`, `until`);
        None for a room without energy figures."""
        if self.energy_at is None:
            return None
        start, end = day_bounds(now, zone)
        if self.energy_day_end is not None and end < self.energy_day_end:
            # The counters are of a day after `now`'s: asked about an earlier day (a
            # clock that went back, such as a gateway following device time that has
            # not heard a device since its restart), of which they hold nothing.
            return EnergyToday(start, end, 0.0, 0.0, now, 0.0, wasting=False)
        counters_end = self.energy_day_end
        if counters_end is None:
            counters_end = day_bounds(self.energy_at, zone)[1]
        kwh, waste, since = self.energy_kwh, self.energy_waste_kwh, self.energy_at
        if now >= counters_end:
            # Past the end of the counters' day they start again from the local
            # midnight, counting the draw since then.
            kwh, waste, since = 0.0, 0.0, max(since, start)
            start = max(start, counters_end)
        else:
            end = min(end, counters_end)
        wasting = self.occupancy.state == Occupancy.VACANT
        return EnergyToday(start, end, kwh, waste, since, self.lighting.power_w or 0.0, wasting=wasting)


@dataclass(frozen=True, slots=True)
class EnergyToday:
    """A room's energy counters of today over [since, until): what they held at the
    last report, plus the draw since then (a vacant room's draw is also waste)."""

    since: float
    until: float
    kwh: float
    wasted: float
    # The draw (W) counts from this moment.
    drawing_since: float
    power_w: float
    wasting: bool

    def at(self, now: float) -> tuple[float, float]:
        """(kWh, wasted kWh) at `now` (a moment in [since, until))."""
        gained = self.power_w * max(0.0, now - self.drawing_since) / 3_600_000
        return self.kwh + gained, self.wasted + (gained if self.wasting else 0.0)


V = TypeVar("V")


def _with(mapping: Mapping[str, V], key: str, value: V) -> Mapping[str, V]:
    copy = dict(mapping)
    copy[key] = value
    return MappingProxyType(copy)


def _percent(brightness: int) -> float:
    return round(brightness * 100 / 254, 1)


def evidence_of(payload: DevicePayload) -> Evidence | None:
    """What the reading says about occupancy; None when it says nothing."""
    # Checked field by field first: most messages (lights, power, battery) say nothing.
    if (
        payload.occupancy is None
        and payload.presence is None
        and payload.people is None
        and payload.entered is None
        and payload.exited is None
        and payload.contact is None
        and payload.access != "granted"
        and payload.co2 is None
        and payload.illuminance is None
    ):
        return None
    return Evidence(
        motion=payload.occupancy,
        presence=payload.presence,
        people=payload.people,
        entered=payload.entered,
        exited=payload.exited,
        door_closed=payload.contact,
        badge_in=True if payload.access == "granted" else None,
        co2=payload.co2,
        illuminance=payload.illuminance,
    )


def apply(
    state: RoomState,
    device_id: str,
    payload: DevicePayload,
    now: float,
    rated_watts: float | None = None,
    params: FusionParams = DEFAULT_PARAMS,
    *,
    zone: tzinfo = UTC,
) -> RoomState:
    """`zone`: the site's time zone, whose days the energy counters count."""
    # Built field by field and constructed once: this runs for every message, and
    # dataclasses.replace costs several microseconds a call.
    occupancy_state = state.occupancy
    evidence = evidence_of(payload)
    if evidence is not None:
        occupancy_state = occupancy.observe(occupancy_state, evidence, now, params, device_id)

    environment = state.environment
    if (
        payload.co2 is not None
        or payload.temperature is not None
        or payload.humidity is not None
        or payload.illuminance is not None
    ):
        environment = Environment(
            co2_ppm=payload.co2 if payload.co2 is not None else environment.co2_ppm,
            temperature_c=payload.temperature
            if payload.temperature is not None
            else environment.temperature_c,
            humidity_pct=payload.humidity if payload.humidity is not None else environment.humidity_pct,
            illuminance_lux=payload.illuminance
            if payload.illuminance is not None
            else environment.illuminance_lux,
        )

    locks = state.locks_locked
    if payload.state == "LOCK" or payload.state == "UNLOCK":
        locks = _with(locks, device_id, payload.state == "LOCK")

    lights = state.lights
    energy = (state.energy_kwh, state.energy_day_end, state.energy_at, state.energy_waste_kwh)
    if lights and occupancy_state.state != state.occupancy.state:
        # Close the energy interval at the occupancy change, so waste counts only vacant time.
        energy = _energy_until(state, now, zone)
    is_light_state = payload.state == "ON" or payload.state == "OFF"
    if (
        is_light_state
        or payload.brightness is not None
        or (payload.power is not None and device_id in lights)
    ):
        energy = _energy_until(state, now, zone)
        light = lights.get(device_id) or Light(rated_w=rated_watts)
        lights = _with(
            lights,
            device_id,
            Light(
                on=(payload.state == "ON") if is_light_state else light.on,
                brightness_pct=_percent(payload.brightness)
                if payload.brightness is not None
                else light.brightness_pct,
                power_w=payload.power if payload.power is not None else light.power_w,
                rated_w=light.rated_w,
            ),
        )

    doors, door_since = state.doors_open, state.door_since
    if payload.contact is not None:
        # contact=true means the magnet touches: the door is closed.
        doors = _with(doors, device_id, not payload.contact)
        if any(doors.values()) != (state.door_open or False) or door_since is None:
            door_since = now

    return RoomState(
        state.room_id,
        occupancy_state,
        environment,
        lights,
        doors,
        locks,
        energy[0],
        energy[1],
        energy[2],
        now,
        door_since,
        energy[3],
    )


def _energy_until(state: RoomState, now: float, zone: tzinfo) -> tuple[float, float, float, float]:
    """(kWh, end of their day, as of, wasted kWh): the counters brought up to `now` at
    the old draw. Past the end of the counters' day they start again from the local
    midnight, counting the draw since then."""
    if state.energy_at is None:
        return 0.0, day_bounds(now, zone)[1], now, 0.0
    day_end = state.energy_day_end
    if day_end is None:
        day_end = day_bounds(state.energy_at, zone)[1]
    kwh, waste, since = state.energy_kwh, state.energy_waste_kwh, state.energy_at
    if now >= day_end:
        today, day_end = day_bounds(now, zone)
        kwh, waste, since = 0.0, 0.0, max(since, today)
    power = state.lighting.power_w or 0.0
    gained = power * max(0.0, now - since) / 3_600_000
    wasted = gained if state.occupancy.state == Occupancy.VACANT else 0.0
    return kwh + gained, day_end, now, waste + wasted


def forget(
    state: RoomState,
    device_id: str,
    now: float,
    params: FusionParams,
    *,
    door: bool,
    zone: tzinfo = UTC,
) -> RoomState:
    """`state` once the device went offline (see `occupancy.forget`)."""
    changed = occupancy.forget(state.occupancy, device_id, now, params, door=door)
    return _with_occupancy(state, changed, now, zone)


def expire(state: RoomState, now: float, params: FusionParams, *, zone: tzinfo = UTC) -> RoomState:
    return _with_occupancy(state, occupancy.expire(state.occupancy, now, params), now, zone)


def _with_occupancy(state: RoomState, changed: OccupancyState, now: float, zone: tzinfo) -> RoomState:
    """`state` with occupancy moved on by time or availability, not by a reading."""
    if changed is state.occupancy:
        return state
    if not state.lights:
        return replace(state, occupancy=changed, updated_at=now)
    # Energy up to the moment the occupancy changed counts under the old occupancy.
    at = max(changed.since if changed.since is not None else now, state.energy_at or 0.0)
    kwh, day_end, energy_at, waste = _energy_until(state, at, zone)
    return replace(
        state,
        occupancy=changed,
        updated_at=now,
        energy_kwh=kwh,
        energy_day_end=day_end,
        energy_at=energy_at,
        energy_waste_kwh=waste,
    )


def rename_devices(
    state: RoomState, rename: Callable[[str], str | None], now: float, *, zone: tzinfo = UTC
) -> RoomState:
    """`state` with its per-device entries under new ids: `rename` returns a device's
    new id, or None to drop what the device said (it was forgotten). Used to move a
    saved state to a new id scheme and to forget silent devices; the very same state
    when nothing changes. Energy is counted up to `now` before a light is dropped."""
    renames = {
        device: rename(device)
        for device in (
            *state.lights,
            *state.doors_open,
            *state.locks_locked,
            *state.occupancy.present,
            *state.occupancy.lights_on,
            *state.occupancy.open_doors,
        )
    }
    renames = {old: new for old, new in renames.items() if new != old}
    if not renames:
        return state

    def mapping(entries: Mapping[str, V]) -> Mapping[str, V]:
        return MappingProxyType(
            {new: value for old, value in entries.items() if (new := renames.get(old, old)) is not None}
        )

    def ids(devices: frozenset[str]) -> frozenset[str]:
        return frozenset(new for old in devices if (new := renames.get(old, old)) is not None)

    if state.lights and any(renames.get(light, light) is None for light in state.lights):
        kwh, day_end, energy_at, waste = _energy_until(state, now, zone)
        state = replace(
            state, energy_kwh=kwh, energy_day_end=day_end, energy_at=energy_at, energy_waste_kwh=waste
        )
    s = state.occupancy
    return replace(
        state,
        occupancy=replace(
            s, present=ids(s.present), lights_on=ids(s.lights_on), open_doors=ids(s.open_doors)
        ),
        lights=mapping(state.lights),
        doors_open=mapping(state.doors_open),
        locks_locked=mapping(state.locks_locked),
    )
