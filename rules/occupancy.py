"""Occupancy of one room: every kind of evidence fused into an explainable state machine.

Phases: `unknown` (no evidence yet), `vacant`, `occupied` (a motion timer runs) and
`held` (no recent motion, but *hold* evidence keeps the room occupied). The API's
`state` only says occupied / vacant / unknown; `held` is reported next to it.

| evidence | vacant -> occupied | keeps occupied | ends |
|---|---|---|---|
| motion (`occupancy: true`) | yes (trigger) | `vacancy_timeout` | the timeout only |
| people count > 0 (or deltas) | yes (direct) | while > 0 | count 0: vacant at once |
| radar `presence: true` | yes (direct) | while any radar | that radar's `false` |
| lights on (lux >= `lights_on_lux`) | yes | while any sensor | that sensor below |
| badge-in (`access: granted`) | no | `badge_hold` | count 0, no presence |
| CO2 rising (slope >= `co2_rise`) | no | while rising | a flat or stale trend |
| wasp in a box (see below) | (motion) | until a door opens | count 0, no presence |

A PIR's `occupancy: false` never vacates by itself: PIRs miss people sitting still.

Why some evidence only holds: a badge read may be someone who turns back or
badges for a neighbour, and CO2 rises for other reasons (ventilation off at
night); both only say "still there" about people already seen. Counts and radar
presence see people directly. Lights-on is off by default (`lights_on_lux=None`):
it suits rooms whose lights people switch by hand and that have no motion sensor
(the UCI office); where officegw switches the lights itself, lights-on would keep
the room occupied and so the lights on.

Wasp in a box: when motion is seen while every door of the room is closed (at
least `wasp_settle` s after the last one closed, so the last motion of someone
walking out does not count), somebody is inside the closed box, sitting still or
not: the room stays occupied without a timeout until a door opens. Motion seen
only *before* the door closed proves nothing (people close the door behind them
when they leave), so then the normal timeout runs.

"People count 0" and "no radar presence" *end* holds: badge-ins, CO2 trends and a
wasp box from before them no longer count (`cleared_at`).

Every timer is derived from stored timestamps, never from sleeps: after a restart
that restores a state, `expire(state, now, params)` at any later `now` dates the
vacancy at the moment the last evidence lapsed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import Any


class Occupancy(StrEnum):
    OCCUPIED = "occupied"
    VACANT = "vacant"
    UNKNOWN = "unknown"


class Phase(StrEnum):
    UNKNOWN = "unknown"
    VACANT = "vacant"
    OCCUPIED = "occupied"
    HELD = "held"


# Seconds without motion before a room of each type turns vacant: restrooms are
# short visits, open areas and offices have people sitting still for long.
VACANCY_TIMEOUTS: Mapping[str, float] = MappingProxyType(
    {"meeting": 600.0, "office": 900.0, "open": 900.0, "restroom": 300.0}
)
DEFAULT_VACANCY_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class FusionParams:
    """How one room weighs its evidence; all durations in seconds."""

    vacancy_timeout: float = DEFAULT_VACANCY_TIMEOUT
    # How long a badge-in keeps an occupied room occupied without motion.
    badge_hold: float = 900.0
    # CO2 readings the slope is fitted on, and the slope (ppm/min) that counts as
    # people breathing: one person in a closed 30 m3 office adds about 10 ppm/min.
    co2_window: float = 600.0
    co2_rise: float = 5.0
    # A rising trend holds this long after its last reading (sensor gone quiet).
    co2_stale: float = 600.0
    # Illuminance that only the room's lights reach; None: lights are no evidence.
    lights_on_lux: float | None = None
    wasp_settle: float = 5.0

    @classmethod
    def for_room_type(cls, room_type: str, vacancy_timeout: float | None = None) -> FusionParams:
        """Defaults for a room type; an explicit `vacancy_timeout` wins."""
        if vacancy_timeout is None:
            vacancy_timeout = VACANCY_TIMEOUTS.get(room_type, DEFAULT_VACANCY_TIMEOUT)
        return cls(vacancy_timeout=vacancy_timeout)


DEFAULT_PARAMS = FusionParams()


@dataclass(frozen=True, slots=True)
class OccupancyState:
    state: Occupancy = Occupancy.UNKNOWN
    since: float | None = None
    people: int | None = None
    last_motion: float | None = None
    confidence: float = 0.0
    reason: str = "no evidence yet"
    # Occupied without a running motion timer, kept by hold evidence.
    held: bool = False
    people_at: float | None = None
    # Level evidence is kept per device, so one sensor's "no" does not cancel
    # another's "yes" in a room with several.
    present: frozenset[str] = frozenset()
    presence_at: float | None = None
    lights_on: frozenset[str] = frozenset()
    lights_at: float | None = None
    last_badge: float | None = None
    open_doors: frozenset[str] = frozenset()
    door_closed: bool | None = None  # every known door closed; None: no door seen
    door_at: float | None = None  # when the room last became closed or open
    wasp: bool = False
    released_at: float | None = None  # a door opened a wasp box: the timer restarts here
    co2: tuple[tuple[float, float], ...] = ()  # (ts, ppm) within co2_window
    # The last CO2 reading at which the trend was rising; None once one was not.
    co2_rising_at: float | None = None
    cleared_at: float | None = None  # last "nobody here": older holds do not count

    @property
    def phase(self) -> Phase:
        return Phase.HELD if self.held and self.state == Occupancy.OCCUPIED else Phase(self.state.value)


_FIELDS = tuple(f.name for f in fields(OccupancyState))
_INDEX = {name: i for i, name in enumerate(_FIELDS)}
_values = attrgetter(*_FIELDS)


def _evolve(s: OccupancyState, **changes: Any) -> OccupancyState:
    """`dataclasses.replace` without its per-call introspection: this runs for every reading."""
    values = list(_values(s))
    for name, value in changes.items():
        values[_INDEX[name]] = value
    return OccupancyState(*values)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one reading says about occupancy; None means "this reading says nothing"."""

    motion: bool | None = None
    presence: bool | None = None
    people: int | None = None
    entered: int | None = None
    exited: int | None = None
    door_closed: bool | None = None
    badge_in: bool | None = None
    co2: float | None = None
    illuminance: float | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


# How much each kind of evidence is trusted; exposed so dashboards can tell a
# count-backed answer from a timeout guess.
CONFIDENCE_COUNT = 0.95
CONFIDENCE_MOTION = 0.9
CONFIDENCE_PRESENCE = 0.9
CONFIDENCE_WASP = 0.9
CONFIDENCE_NOBODY = 0.85
CONFIDENCE_TIMEOUT = 0.8
CONFIDENCE_LIGHTS = 0.7
CONFIDENCE_BADGE = 0.7
CONFIDENCE_NO_MOTION = 0.6
CONFIDENCE_CO2 = 0.6

_CO2_MIN_SAMPLES = 3
_CO2_MAX_SAMPLES = 16


def _sample_time(sample: tuple[float, float]) -> float:
    return sample[0]


def observe(
    current: OccupancyState,
    evidence: Evidence,
    now: float,
    params: FusionParams = DEFAULT_PARAMS,
    source: str = "",
) -> OccupancyState:
    """`current` after one reading from device `source` at `now`."""
    # Catch up first: a deadline that passed before this reading must not be
    # extended by it.
    before = expire(current, now, params)
    seen = _remember(before, evidence, now, params, source)
    return _decide(before, seen, evidence, now, params)


def expire(current: OccupancyState, now: float, params: FusionParams) -> OccupancyState:
    """`current` moved forward to `now`; the same object when nothing changed."""
    if current.state != Occupancy.OCCUPIED or current.people:
        # Only a reading changes a vacant room or one a people count holds.
        return current
    deadline = _deadline(current, params)
    if not current.held and deadline is not None and now < deadline:
        # The ticker's common case: a motion timer still running changes nothing.
        return current
    end = _end(current, params)
    if end is not None and now >= end:
        # The room became vacant when its evidence lapsed, not when we noticed.
        return _vacant(current, end, _lapse(current, end, params), CONFIDENCE_TIMEOUT)
    held, reason, confidence = _describe(current, now, params)
    if (held, reason, confidence) == (current.held, current.reason, current.confidence):
        return current
    return _evolve(current, held=held, reason=reason, confidence=confidence)


def forget(
    current: OccupancyState, device: str, now: float, params: FusionParams, *, door: bool = False
) -> OccupancyState:
    """`current` once `device` has gone offline: its level evidence (radar presence,
    lights seen on) stops holding the room, and a wasp-in-a-box hold that relied on a
    door contact that can no longer report is released (the motion timer restarts
    now). What the device said before stays in the past: last motion still runs out
    by its own timer."""
    s = expire(current, now, params)
    changes: dict[str, Any] = {}
    if device in s.present:
        changes["present"] = s.present - {device}
    if device in s.lights_on:
        changes["lights_on"] = s.lights_on - {device}
    if door and s.wasp:
        changes.update(wasp=False, released_at=now)
    if not changes:
        return s
    s = _evolve(s, **changes)
    if s.state != Occupancy.OCCUPIED or s.people:
        return s
    end = _end(s, params)
    if end is not None and end <= now:
        return _vacant(s, now, "sensor went offline", CONFIDENCE_TIMEOUT)
    held, reason, confidence = _describe(s, now, params)
    return _evolve(s, held=held, reason=reason, confidence=confidence)


def vacancy_deadline(current: OccupancyState, params: FusionParams) -> float | None:
    """When the motion timer runs out; None when none runs (not occupied, or a count holds)."""
    return _deadline(current, params) if current.state == Occupancy.OCCUPIED else None


def vacant_at(current: OccupancyState, params: FusionParams) -> float | None:
    """When the room turns vacant if nothing new is seen; None while level evidence holds it."""
    return _end(current, params) if current.state == Occupancy.OCCUPIED else None


def co2_slope(current: OccupancyState, params: FusionParams) -> float | None:
    """Least-squares CO2 slope in ppm/min over the window; None with too few readings."""
    return _slope(current.co2, current.cleared_at, params.co2_window)


def _slope(readings: Sequence[tuple[float, float]], cleared_at: float | None, window: float) -> float | None:
    points = readings if cleared_at is None else [(t, v) for t, v in readings if t > cleared_at]
    if len(points) < _CO2_MIN_SAMPLES or points[-1][0] - points[0][0] < window / 2:
        return None
    # One pass, times relative to the first reading (epoch seconds squared lose precision).
    first = points[0][0]
    n = len(points)
    sum_t = sum_v = sum_tt = sum_tv = 0.0
    for t, v in points:
        t -= first
        sum_t += t
        sum_v += v
        sum_tt += t * t
        sum_tv += t * v
    return 60 * (n * sum_tv - sum_t * sum_v) / (n * sum_tt - sum_t * sum_t)


def _deadline(s: OccupancyState, p: FusionParams) -> float | None:
    if s.people:
        return None
    start = _latest(s.last_motion, s.released_at)
    return None if start is None else start + p.vacancy_timeout


def _end(s: OccupancyState, p: FusionParams) -> float | None:
    if s.people or s.wasp or s.present or s.lights_on:
        return None
    ends = [end for end in (_deadline(s, p), *_timed_holds(s, p).values()) if end is not None]
    # Every evidence interval was running when it was last checked, so they
    # overlap: the room stays occupied until the last one ends.
    return max(ends, default=s.since or 0.0)


# Evidence memory


def _remember(s: OccupancyState, e: Evidence, now: float, p: FusionParams, source: str) -> OccupancyState:
    """`s` with what the reading says stored; the occupancy decision comes after."""
    changes: dict[str, Any] = {}
    people = _count(s, e)
    if people is not None:
        changes.update(people=people, people_at=now)
    if e.motion:
        changes["last_motion"] = now
    if e.presence is not None:
        changes.update(present=_toggle(s.present, source, e.presence), presence_at=now)
    if e.illuminance is not None and p.lights_on_lux is not None:
        lights = _toggle(s.lights_on, source, e.illuminance >= p.lights_on_lux)
        changes.update(lights_on=lights, lights_at=now)
    if e.badge_in:
        changes["last_badge"] = now
    if e.co2 is not None:
        # Samples are in time order: cut the window with a binary search, and keep
        # them at least window/N apart so a chatty sensor costs no more than a calm one.
        recent = s.co2[bisect_right(s.co2, now - p.co2_window, key=_sample_time) :]
        if recent and now - recent[-1][0] < p.co2_window / _CO2_MAX_SAMPLES:
            recent = recent[:-1]
        changes["co2"] = co2 = (*recent[-(_CO2_MAX_SAMPLES - 1) :], (now, e.co2))
        # The trend is judged once per reading and kept as a timestamp, so timers
        # need no refit.
        slope = _slope(co2, s.cleared_at, p.co2_window)
        changes["co2_rising_at"] = now if slope is not None and slope >= p.co2_rise else None
    if e.door_closed is not None:
        changes.update(_doors(s, e.door_closed, now, source))
    nobody = people == 0 or (e.presence is False and not changes["present"])
    if nobody:
        changes.update(cleared_at=now, wasp=False, co2_rising_at=None)
    elif e.motion:
        door_at = changes.get("door_at", s.door_at)
        closed = changes.get("door_closed", s.door_closed)
        if closed and door_at is not None and now >= door_at + p.wasp_settle:
            changes["wasp"] = True
    return _evolve(s, **changes) if changes else s


def _count(s: OccupancyState, e: Evidence) -> int | None:
    if e.people is not None:
        return e.people
    if e.entered is not None or e.exited is not None:
        return max(0, (s.people or 0) + (e.entered or 0) - (e.exited or 0))
    return None


def _toggle(devices: frozenset[str], device: str, on: bool) -> frozenset[str]:
    if (device in devices) == on:
        return devices
    return devices | {device} if on else devices - {device}


def _doors(s: OccupancyState, closed_now: bool, now: float, source: str) -> dict[str, Any]:
    open_doors = _toggle(s.open_doors, source, not closed_now)
    closed = not open_doors
    changes: dict[str, Any] = {"open_doors": open_doors, "door_closed": closed}
    if closed != s.door_closed:
        changes["door_at"] = now
    if not closed and s.wasp:
        changes.update(wasp=False, released_at=now)
    return changes


# Decisions


def _decide(
    before: OccupancyState, s: OccupancyState, e: Evidence, now: float, p: FusionParams
) -> OccupancyState:
    counted = e.people is not None or e.entered is not None or e.exited is not None
    occupied = s.state == Occupancy.OCCUPIED
    if counted and s.people == 0:
        occupied = False
    if _occupies(e, p) or (counted and s.people):
        occupied = True
    if occupied:
        end = _end(s, p)
        if end is not None and end <= now:
            # This reading took away the last evidence that held the room.
            return _vacant(s, now, _ended_by(e), CONFIDENCE_NOBODY)
        held, reason, confidence = _describe(s, now, p)
        since = s.since if before.state == Occupancy.OCCUPIED else now
        return _evolve(
            s, state=Occupancy.OCCUPIED, since=since, held=held, reason=reason, confidence=confidence
        )
    if counted and s.people == 0:
        return _vacant(s, now, "people count 0", CONFIDENCE_COUNT)
    if s.state == Occupancy.UNKNOWN:
        return _first_vacant(s, e, now, p)
    return s


def _occupies(e: Evidence, p: FusionParams) -> bool:
    """Whether this reading's triggers alone make a vacant room occupied (counts aside)."""
    lights = e.illuminance is not None and p.lights_on_lux is not None and e.illuminance >= p.lights_on_lux
    return bool(e.motion or e.presence or lights)


def _first_vacant(s: OccupancyState, e: Evidence, now: float, p: FusionParams) -> OccupancyState:
    """An unknown room whose first readings say nobody is there."""
    if e.motion is False:
        return _vacant(s, now, "no motion reported", CONFIDENCE_NO_MOTION)
    if e.presence is False:
        return _vacant(s, now, "radar reports nobody", CONFIDENCE_NOBODY)
    if e.illuminance is not None and p.lights_on_lux is not None:
        return _vacant(s, now, "lights off", CONFIDENCE_NO_MOTION)
    return s


def _vacant(s: OccupancyState, at: float, reason: str, confidence: float) -> OccupancyState:
    since = s.since if s.state == Occupancy.VACANT else at
    return _evolve(s, state=Occupancy.VACANT, since=since, held=False, reason=reason, confidence=confidence)


def _ended_by(e: Evidence) -> str:
    if e.presence is False:
        return "radar reports nobody"
    if e.illuminance is not None:
        return "lights off"
    if e.co2 is not None:
        return "CO2 stopped rising"
    if e.door_closed is False:
        return "door opened"
    return "hold evidence ended"


def _level_holds(s: OccupancyState) -> list[str]:
    """Evidence that holds the room until a reading says otherwise."""
    holds = []
    if s.people:
        holds.append("people count")
    if s.wasp:
        holds.append("wasp in a box")
    if s.present:
        holds.append("radar presence")
    if s.lights_on:
        holds.append("lights on")
    return holds


def _timed_holds(s: OccupancyState, p: FusionParams) -> dict[str, float]:
    """Hold evidence that lapses by itself: name -> when it ends."""
    holds = {}
    if s.last_badge is not None and (s.cleared_at is None or s.last_badge > s.cleared_at):
        holds["badge-in"] = s.last_badge + p.badge_hold
    if s.co2_rising_at is not None:
        holds["CO2 rising"] = s.co2_rising_at + p.co2_stale
    return holds


def _describe(s: OccupancyState, now: float, p: FusionParams) -> tuple[bool, str, float]:
    """(held, reason, confidence) of an occupied room at `now`: the strongest evidence wins."""
    if s.people:
        # A count holds the room by itself, motion or not.
        return True, f"people count {s.people}", CONFIDENCE_COUNT
    deadline = _deadline(s, p)
    if deadline is not None and now < deadline:
        if s.released_at is not None and (s.last_motion is None or s.released_at > s.last_motion):
            return False, "door opened, vacancy timer restarted", CONFIDENCE_TIMEOUT
        return False, "motion detected", CONFIDENCE_MOTION
    if s.wasp:
        return True, "motion inside with the door closed (wasp in a box)", CONFIDENCE_WASP
    if s.present:
        return True, "radar presence", CONFIDENCE_PRESENCE
    if s.lights_on:
        return True, "lights on", CONFIDENCE_LIGHTS
    timed = {name: end for name, end in _timed_holds(s, p).items() if now < end}
    if "badge-in" in timed:
        return True, "badge-in", CONFIDENCE_BADGE
    if timed:
        return True, "CO2 rising", CONFIDENCE_CO2
    return s.held, s.reason, s.confidence


def _lapse(s: OccupancyState, end: float, p: FusionParams) -> str:
    """Why a room turned vacant at `end`: the evidence that ran out last."""
    timed = _timed_holds(s, p)
    if vacancy_deadline(s, p) == end or not timed:
        return f"no motion for {p.vacancy_timeout:g} s"
    if timed.get("badge-in") == end:
        return f"no motion for {p.vacancy_timeout:g} s; badge-in hold of {p.badge_hold:g} s ended"
    return f"no motion for {p.vacancy_timeout:g} s; CO2 no longer rising"


def _latest(*times: float | None) -> float | None:
    return max((t for t in times if t is not None), default=None)


# Explanation


def explain(current: OccupancyState, now: float, params: FusionParams) -> dict[str, Any]:
    """The evidence, the running timers and why the room is in its state, at `now`.

    Times are epoch seconds (the API formats them); ages are seconds before `now`.
    """
    s = expire(current, now, params)
    slope = co2_slope(s, params)
    timed = {name: end for name, end in _timed_holds(s, params).items() if now < end}
    holds = [*_level_holds(s), *timed] if s.state == Occupancy.OCCUPIED else []
    return {
        "state": s.state.value,
        "phase": s.phase.value,
        "since": s.since,
        "people": s.people,
        "confidence": s.confidence,
        "reason": s.reason,
        "why": _sentence(s, now, params, holds),
        "evidence": {
            "motion": {"last_seen": s.last_motion},
            "people": {"count": s.people, "at": s.people_at},
            "presence": {"devices": sorted(s.present), "at": s.presence_at},
            "lights": {
                "on_devices": sorted(s.lights_on),
                "at": s.lights_at,
                "threshold_lux": params.lights_on_lux,
            },
            "badge": {"last_granted": s.last_badge},
            "door": {"closed": s.door_closed, "since": s.door_at, "open_devices": sorted(s.open_doors)},
            "co2": {
                "ppm": s.co2[-1][1] if s.co2 else None,
                "at": s.co2[-1][0] if s.co2 else None,
                "slope_ppm_per_min": None if slope is None else round(slope, 2),
                "rising": "CO2 rising" in timed,
            },
            "cleared_at": s.cleared_at,
        },
        "timers": {
            "vacancy_timeout": params.vacancy_timeout,
            "vacancy_deadline": vacancy_deadline(s, params),
            "hold_until": max(timed.values(), default=None),
            "vacant_at": vacant_at(s, params),
            "wasp": s.wasp,
            "held_by": holds,
        },
    }


# How long each hold lasts, for the sentence of `explain`.
_UNTIL = MappingProxyType(
    {
        "people count": "the count drops to 0",
        "wasp in a box": "a door opens",
        "radar presence": "the radar reports nobody",
        "lights on": "the lights go off",
    }
)


def _sentence(s: OccupancyState, now: float, p: FusionParams, holds: list[str]) -> str:
    if s.state == Occupancy.UNKNOWN:
        return "Unknown: no occupancy evidence yet."
    if s.state == Occupancy.VACANT:
        return f"Vacant for {_ago(s.since, now)}: {s.reason}."
    deadline = vacancy_deadline(s, p)
    moved = _latest(s.last_motion, s.released_at)
    keep = f"{' and '.join(holds) or s.reason} {'keeps' if len(holds) <= 1 else 'keep'}"
    if deadline is not None and now < deadline:
        what = "a door opened" if moved == s.released_at else "motion seen"
        text = f"Occupied: {what} {_ago(moved, now)} ago"
        if holds:
            text += f"; after the vacancy timer ({_secs(deadline - now)} to go) {keep} it occupied"
    else:
        since_motion = "no motion seen" if moved is None else f"no motion for {_ago(moved, now)}"
        text = f"Held: {since_motion}, but {keep} the room occupied"
    end = vacant_at(s, p)
    if end is None:
        until = [_UNTIL[hold] for hold in holds if hold in _UNTIL]
        return text + f"; it stays occupied until {' and '.join(until)}."
    return text + f"; it turns vacant in {_secs(end - now)} unless new evidence arrives."


def _ago(at: float | None, now: float) -> str:
    return "an unknown time" if at is None else _secs(now - at)


def _secs(seconds: float) -> str:
    # Whole seconds for long spans (":g" would write 1.2e+06), tenths for short ones.
    return f"{max(0.0, seconds):.1f}".rstrip("0").rstrip(".") + " s"
