"""Occupancy of one room from motion and people-count evidence.

Pure: every function takes the current state, the evidence and `now`, and returns
the new state. Motion *triggers* occupancy and the vacancy timeout ends it; a
people count is direct evidence both ways (a count above zero holds the room
occupied without a timeout, a count of zero empties it at once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Occupancy(StrEnum):
    OCCUPIED = "occupied"
    VACANT = "vacant"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class OccupancyState:
    state: Occupancy = Occupancy.UNKNOWN
    since: float | None = None
    people: int | None = None
    last_motion: float | None = None
    confidence: float = 0.0
    reason: str = "no evidence yet"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one reading says about occupancy; None means "this reading says nothing"."""

    motion: bool | None = None
    people: int | None = None
    entered: int | None = None
    exited: int | None = None

    def is_empty(self) -> bool:
        return self.motion is None and self.people is None and self.entered is None and self.exited is None


# How much each kind of evidence is trusted; exposed so dashboards can tell a
# count-backed answer from a timeout guess.
CONFIDENCE_COUNT = 0.95
CONFIDENCE_MOTION = 0.9
CONFIDENCE_TIMEOUT = 0.8
CONFIDENCE_NO_MOTION = 0.6


def _become(
    current: OccupancyState,
    state: Occupancy,
    now: float,
    confidence: float,
    reason: str,
    *,
    people: int | None = None,
    last_motion: float | None = None,
) -> OccupancyState:
    """`current` moved to `state`; `since` only changes when the state does."""
    return OccupancyState(
        state=state,
        since=current.since if current.state == state else now,
        people=current.people if people is None else people,
        last_motion=current.last_motion if last_motion is None else last_motion,
        confidence=confidence,
        reason=reason,
    )


def observe(current: OccupancyState, evidence: Evidence, now: float) -> OccupancyState:
    people = evidence.people
    if people is None and (evidence.entered is not None or evidence.exited is not None):
        people = max(0, (current.people or 0) + (evidence.entered or 0) - (evidence.exited or 0))

    new = current
    if people is not None:
        if people > 0:
            new = _become(
                new, Occupancy.OCCUPIED, now, CONFIDENCE_COUNT, f"people count {people}", people=people
            )
        else:
            new = _become(new, Occupancy.VACANT, now, CONFIDENCE_COUNT, "people count 0", people=0)

    if evidence.motion is True:
        # Motion after a count of zero means someone the counter missed is inside.
        if new.state != Occupancy.OCCUPIED or not new.people:
            new = _become(new, Occupancy.OCCUPIED, now, CONFIDENCE_MOTION, "motion detected", last_motion=now)
        else:
            new = _become(new, new.state, now, new.confidence, new.reason, last_motion=now)
    elif evidence.motion is False and new.state == Occupancy.UNKNOWN:
        # A sensor that reports "no motion" from the start: nobody has been seen.
        new = _become(new, Occupancy.VACANT, now, CONFIDENCE_NO_MOTION, "no motion reported")
    return new


def vacancy_deadline(current: OccupancyState, vacancy_timeout: float) -> float | None:
    """When the room turns vacant if nothing else happens; None when no timer runs."""
    if current.state != Occupancy.OCCUPIED or current.people or current.last_motion is None:
        return None
    return current.last_motion + vacancy_timeout


def expire(current: OccupancyState, now: float, vacancy_timeout: float) -> OccupancyState:
    deadline = vacancy_deadline(current, vacancy_timeout)
    if deadline is None or now < deadline:
        return current
    # The room became vacant at the deadline, not at whatever moment we noticed.
    return replace(
        current,
        state=Occupancy.VACANT,
        since=deadline,
        confidence=CONFIDENCE_TIMEOUT,
        reason=f"no motion for {vacancy_timeout:g} s",
    )
