"""Occupancy fusion as tables of (state, evidence, now) -> state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from rules.occupancy import (
    CONFIDENCE_COUNT,
    CONFIDENCE_TIMEOUT,
    Evidence,
    FusionParams,
    Occupancy,
    OccupancyState,
    Phase,
    co2_slope,
    expire,
    explain,
    forget,
    observe,
    vacancy_deadline,
    vacant_at,
)

T0 = 1_000.0
P = FusionParams(vacancy_timeout=600.0)
LIGHTS = FusionParams(vacancy_timeout=600.0, lights_on_lux=300.0)
UNKNOWN = OccupancyState()
BY_MOTION = OccupancyState(
    Occupancy.OCCUPIED, since=T0, last_motion=T0, confidence=0.9, reason="motion detected"
)
BY_COUNT = OccupancyState(Occupancy.OCCUPIED, since=T0, people=2, confidence=0.95, reason="people count 2")
VACANT = OccupancyState(Occupancy.VACANT, since=T0, confidence=0.8, reason="no motion for 600 s")

MOTION = Evidence(motion=True)
STILL = Evidence(motion=False)
OPEN = Evidence(door_closed=False)
CLOSED = Evidence(door_closed=True)
BADGE = Evidence(badge_in=True)
PRESENT = Evidence(presence=True)
NOBODY = Evidence(presence=False)

# A step: (seconds after T0, evidence) from device "d", or (seconds, evidence, device).
Step = tuple[float, Evidence] | tuple[float, Evidence, str]


def fold(steps: Sequence[Step], params: FusionParams = P, start: OccupancyState = UNKNOWN) -> OccupancyState:
    state = start
    for step in steps:
        source = step[2] if len(step) == 3 else "d"
        state = observe(state, step[1], T0 + step[0], params, source)
    return state


def co2_ramp(start: float, end: float, ppm: float, per_min: float) -> list[Step]:
    """One CO2 reading a minute from `start` to `end` s, rising `per_min` ppm a minute."""
    return [(t, Evidence(co2=ppm + per_min * (t - start) / 60)) for t in range(int(start), int(end) + 1, 60)]


OBSERVE_TABLE = [
    # (name, before, evidence, now, state after, people after, since after)
    ("motion occupies", UNKNOWN, MOTION, T0, Occupancy.OCCUPIED, None, T0),
    ("motion on vacant", VACANT, MOTION, T0 + 5, Occupancy.OCCUPIED, None, T0 + 5),
    ("more motion keeps since", BY_MOTION, MOTION, T0 + 30, Occupancy.OCCUPIED, None, T0),
    ("no motion does not vacate", BY_MOTION, STILL, T0 + 30, Occupancy.OCCUPIED, None, T0),
    ("no motion from the start", UNKNOWN, STILL, T0, Occupancy.VACANT, None, T0),
    ("count occupies", UNKNOWN, Evidence(people=3), T0, Occupancy.OCCUPIED, 3, T0),
    ("count zero vacates at once", BY_COUNT, Evidence(people=0), T0 + 9, Occupancy.VACANT, 0, T0 + 9),
    ("count zero vacates motion", BY_MOTION, Evidence(people=0), T0 + 9, Occupancy.VACANT, 0, T0 + 9),
    ("entered from unknown", UNKNOWN, Evidence(entered=2), T0, Occupancy.OCCUPIED, 2, T0),
    ("entered and exited", BY_COUNT, Evidence(entered=1, exited=3), T0 + 1, Occupancy.VACANT, 0, T0 + 1),
    ("exits never go negative", BY_COUNT, Evidence(exited=5), T0 + 1, Occupancy.VACANT, 0, T0 + 1),
    ("count beats deltas", BY_COUNT, Evidence(people=4, entered=9), T0 + 1, Occupancy.OCCUPIED, 4, T0),
    (
        "motion after count zero",
        OccupancyState(Occupancy.VACANT, since=T0, people=0),
        MOTION,
        T0 + 2,
        Occupancy.OCCUPIED,
        0,
        T0 + 2,
    ),
    ("nothing said", BY_MOTION, Evidence(), T0 + 1, Occupancy.OCCUPIED, None, T0),
    ("radar presence occupies", VACANT, PRESENT, T0 + 3, Occupancy.OCCUPIED, None, T0 + 3),
    ("radar says nobody from the start", UNKNOWN, NOBODY, T0, Occupancy.VACANT, None, T0),
    ("a badge-in alone does not occupy", VACANT, BADGE, T0 + 3, Occupancy.VACANT, None, T0),
    ("CO2 alone does not occupy", VACANT, Evidence(co2=900.0), T0 + 3, Occupancy.VACANT, None, T0),
    ("a door alone says nothing", UNKNOWN, CLOSED, T0, Occupancy.UNKNOWN, None, None),
    (
        "lights are no evidence by default",
        VACANT,
        Evidence(illuminance=900.0),
        T0 + 3,
        Occupancy.VACANT,
        None,
        T0,
    ),
    ("a badge-in does not end motion", BY_MOTION, BADGE, T0 + 3, Occupancy.OCCUPIED, None, T0),
    ("a deadline passed before the reading", BY_MOTION, BADGE, T0 + 700, Occupancy.VACANT, None, T0 + 600),
]


@pytest.mark.parametrize(
    ("before", "evidence", "now", "state", "people", "since"),
    [row[1:] for row in OBSERVE_TABLE],
    ids=[row[0] for row in OBSERVE_TABLE],
)
def test_observe(
    before: OccupancyState,
    evidence: Evidence,
    now: float,
    state: Occupancy,
    people: int | None,
    since: float | None,
) -> None:
    after = observe(before, evidence, now, P)
    assert (after.state, after.people, after.since) == (state, people, since)
    assert 0.0 <= after.confidence <= 1.0


EXPIRE_TABLE = [
    # (name, before, now, timeout, state after, since after)
    ("before the deadline", BY_MOTION, T0 + 599, 600.0, Occupancy.OCCUPIED, T0),
    ("at the deadline", BY_MOTION, T0 + 600, 600.0, Occupancy.VACANT, T0 + 600),
    ("noticed late, dated at deadline", BY_MOTION, T0 + 5_000, 600.0, Occupancy.VACANT, T0 + 600),
    ("a count holds without timeout", BY_COUNT, T0 + 86_400, 600.0, Occupancy.OCCUPIED, T0),
    ("vacant stays vacant", VACANT, T0 + 5_000, 600.0, Occupancy.VACANT, T0),
    ("unknown stays unknown", UNKNOWN, T0 + 5_000, 600.0, Occupancy.UNKNOWN, None),
]


@pytest.mark.parametrize(
    ("before", "now", "timeout", "state", "since"),
    [row[1:] for row in EXPIRE_TABLE],
    ids=[row[0] for row in EXPIRE_TABLE],
)
def test_expire(
    before: OccupancyState, now: float, timeout: float, state: Occupancy, since: float | None
) -> None:
    after = expire(before, now, FusionParams(vacancy_timeout=timeout))
    assert (after.state, after.since) == (state, since)


# Sequences of readings, then the state at `now` (seconds after T0).
SCENARIOS: list[tuple[str, list[Step], float, Occupancy, Phase, float | None, str]] = [
    # (name, steps, now, state, phase, since, reason contains)
    (
        "wasp: motion inside the closed room holds it without a timeout",
        [(0, OPEN), (2, MOTION), (10, CLOSED), (40, MOTION)],
        86_400,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0 + 2,
        "wasp in a box",
    ),
    (
        "wasp: the door opens, the normal timeout runs from there",
        [(0, OPEN), (2, MOTION), (10, CLOSED), (40, MOTION), (7_200, OPEN)],
        7_200 + 599,
        Occupancy.OCCUPIED,
        Phase.OCCUPIED,
        T0 + 2,
        "door opened",
    ),
    (
        "wasp: ... and vacates at the restarted deadline",
        [(0, OPEN), (2, MOTION), (10, CLOSED), (40, MOTION), (7_200, OPEN)],
        9_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 7_800,
        "no motion for 600 s",
    ),
    (
        "leaving: the door closes after the last motion, the timeout runs",
        [(0, OPEN), (2, MOTION), (10, CLOSED)],
        5_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 602,
        "no motion for 600 s",
    ),
    (
        "leaving: motion right after the door closed is the person walking out",
        [(0, OPEN), (2, MOTION), (10, CLOSED), (12, MOTION)],
        5_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 612,
        "no motion for 600 s",
    ),
    (
        "wasp: a people count of zero ends it",
        [(0, CLOSED), (40, MOTION), (100, Evidence(people=0))],
        5_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 100,
        "people count 0",
    ),
    (
        "radar presence holds past the motion timeout",
        [(0, MOTION), (10, PRESENT)],
        5_000,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "radar presence",
    ),
    (
        "radar presence false ends the hold at once",
        [(0, MOTION), (10, PRESENT), (5_000, NOBODY)],
        5_001,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 5_000,
        "radar reports nobody",
    ),
    (
        "one radar's no does not cancel another's yes",
        [(0, PRESENT, "r1"), (0, PRESENT, "r2"), (5_000, NOBODY, "r1")],
        6_000,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "radar presence",
    ),
    (
        "presence false does not cut a running motion timer",
        [(0, MOTION), (10, PRESENT), (20, NOBODY)],
        599,
        Occupancy.OCCUPIED,
        Phase.OCCUPIED,
        T0,
        "motion detected",
    ),
    (
        "a badge-in holds an occupied room",
        [(0, MOTION), (500, BADGE)],
        1_000,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "badge-in",
    ),
    (
        "the badge-in hold runs out",
        [(0, MOTION), (500, BADGE)],
        3_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 1_400,
        "badge-in hold of 900 s ended",
    ),
    (
        "a badge-in before people 0 no longer holds",
        [(0, MOTION), (10, BADGE), (20, Evidence(people=0)), (30, MOTION)],
        700,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 630,
        "no motion for 600 s",
    ),
    (
        "rising CO2 holds an occupied room",
        [(0, MOTION), *co2_ramp(0, 1_200, 600.0, 10.0)],
        1_300,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "CO2 rising",
    ),
    (
        "rising CO2 goes stale without new readings",
        [(0, MOTION), *co2_ramp(0, 1_200, 600.0, 10.0)],
        5_000,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 1_800,
        "CO2 no longer rising",
    ),
    (
        "CO2 levelling off ends the hold at that reading",
        [(0, MOTION), *co2_ramp(0, 1_200, 600.0, 10.0), *co2_ramp(1_260, 2_400, 800.0, 0.0)],
        5_000,
        Occupancy.VACANT,
        Phase.VACANT,
        # The 10-minute slope falls under 5 ppm/min at the fifth flat reading.
        T0 + 1_500,
        "CO2 stopped rising",
    ),
    (
        "falling CO2 holds nothing",
        [(0, MOTION), *co2_ramp(0, 1_200, 1_200.0, -10.0)],
        1_300,
        Occupancy.VACANT,
        Phase.VACANT,
        T0 + 600,
        "no motion for 600 s",
    ),
    (
        "rising CO2 does not occupy a vacant room",
        [(0, STILL), *co2_ramp(0, 1_200, 600.0, 10.0)],
        1_300,
        Occupancy.VACANT,
        Phase.VACANT,
        T0,
        "no motion reported",
    ),
    (
        "a people count holds, motion or not",
        [(0, Evidence(people=2)), (10, MOTION)],
        86_400,
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "people count 2",
    ),
    (
        "a PIR's no motion never vacates before the timeout",
        [(0, MOTION), *[(t, STILL) for t in range(30, 600, 30)]],
        599,
        Occupancy.OCCUPIED,
        Phase.OCCUPIED,
        T0,
        "motion detected",
    ),
]


@pytest.mark.parametrize(
    ("steps", "now", "state", "phase", "since", "reason"),
    [row[1:] for row in SCENARIOS],
    ids=[row[0] for row in SCENARIOS],
)
def test_scenario(
    steps: list[Step], now: float, state: Occupancy, phase: Phase, since: float | None, reason: str
) -> None:
    after = expire(fold(steps), T0 + now, P)
    assert (after.state, after.phase, after.since) == (state, phase, since)
    assert reason in after.reason
    assert 0.0 <= after.confidence <= 1.0


LIGHTS_TABLE: list[tuple[str, list[Step], float, Occupancy, float | None]] = [
    # (name, steps, now, state, since), with lights_on_lux=300
    ("lights on occupy", [(0, Evidence(illuminance=450.0))], 5_000, Occupancy.OCCUPIED, T0),
    ("a dark room is vacant", [(0, Evidence(illuminance=20.0))], 10, Occupancy.VACANT, T0),
    (
        "lights off vacate when nothing else holds",
        [(0, Evidence(illuminance=450.0)), (3_000, Evidence(illuminance=20.0))],
        3_001,
        Occupancy.VACANT,
        T0 + 3_000,
    ),
    (
        "lights off leave a running motion timer alone",
        [(0, Evidence(illuminance=450.0)), (2_900, MOTION), (3_000, Evidence(illuminance=20.0))],
        3_001,
        Occupancy.OCCUPIED,
        T0,
    ),
    (
        "a dim sensor does not cancel a bright one",
        [(0, Evidence(illuminance=450.0), "n1"), (60, Evidence(illuminance=40.0), "n2")],
        3_000,
        Occupancy.OCCUPIED,
        T0,
    ),
]


@pytest.mark.parametrize(
    ("steps", "now", "state", "since"),
    [row[1:] for row in LIGHTS_TABLE],
    ids=[row[0] for row in LIGHTS_TABLE],
)
def test_lights_on_evidence(steps: list[Step], now: float, state: Occupancy, since: float | None) -> None:
    after = expire(fold(steps, LIGHTS), T0 + now, LIGHTS)
    assert (after.state, after.since) == (state, since)


# Restart catch-up: a state saved long ago, expired at a much later `now`, must
# say what a gateway that never stopped would have said, dated when it happened.
RESTART_TABLE: list[tuple[str, list[Step], Occupancy, float | None]] = [
    # (name, steps before the restart, state a week later, since)
    ("motion only", [(0, MOTION)], Occupancy.VACANT, T0 + 600),
    ("badge-in hold", [(0, MOTION), (500, BADGE)], Occupancy.VACANT, T0 + 1_400),
    ("rising CO2", [(0, MOTION), *co2_ramp(0, 1_200, 600.0, 10.0)], Occupancy.VACANT, T0 + 1_800),
    ("wasp in a box", [(0, CLOSED), (40, MOTION)], Occupancy.OCCUPIED, T0 + 40),
    ("radar presence", [(0, PRESENT)], Occupancy.OCCUPIED, T0),
    ("a door opened a wasp box", [(0, CLOSED), (40, MOTION), (100, OPEN)], Occupancy.VACANT, T0 + 700),
]


@pytest.mark.parametrize(
    ("steps", "state", "since"), [row[1:] for row in RESTART_TABLE], ids=[row[0] for row in RESTART_TABLE]
)
def test_restart_catches_up(steps: list[Step], state: Occupancy, since: float | None) -> None:
    saved = fold(steps)
    # The snapshot keeps only the state: a copy field by field stands for it.
    restored = replace(saved)
    week_later = T0 + 7 * 86_400
    after = expire(restored, week_later, P)
    assert (after.state, after.since) == (state, since)
    # Ticking along the way gives the same answer as one late catch-up.
    ticked = restored
    for now in range(int(T0), int(week_later), 97):
        ticked = expire(ticked, float(now), P)
    assert expire(ticked, week_later, P) == after


def test_expire_returns_the_same_object_when_nothing_changes() -> None:
    # The ticker relies on identity to skip rooms that did not change.
    assert expire(BY_MOTION, T0 + 1, P) is BY_MOTION
    vacant = expire(BY_MOTION, T0 + 700, P)
    assert expire(vacant, T0 + 800, P) is vacant
    held = expire(fold([(0, MOTION), (10, PRESENT)]), T0 + 700, P)
    assert expire(held, T0 + 900, P) is held


def test_motion_timer_running_out_under_a_hold_turns_occupied_into_held() -> None:
    state = fold([(0, MOTION), (10, PRESENT)])
    assert (state.phase, state.held) == (Phase.OCCUPIED, False)
    held = expire(state, T0 + 600, P)
    assert held is not state
    assert (held.state, held.phase, held.since, held.reason) == (
        Occupancy.OCCUPIED,
        Phase.HELD,
        T0,
        "radar presence",
    )
    # New motion puts the timer back.
    assert observe(held, MOTION, T0 + 700, P).phase == Phase.OCCUPIED


def test_vacancy_deadline_and_vacant_at() -> None:
    assert vacancy_deadline(BY_MOTION, P) == T0 + 600
    assert vacancy_deadline(BY_COUNT, P) is None
    assert vacancy_deadline(VACANT, P) is None
    assert vacant_at(BY_COUNT, P) is None
    assert vacant_at(fold([(0, MOTION), (500, BADGE)]), P) == T0 + 1_400


def test_co2_slope_is_ppm_per_minute_over_the_window() -> None:
    state = fold(co2_ramp(0, 600, 500.0, 12.0))
    assert co2_slope(state, P) == pytest.approx(12.0)
    # Too short a history says nothing.
    assert co2_slope(fold(co2_ramp(0, 120, 500.0, 12.0)), P) is None


def test_confidence_and_reason_follow_the_evidence() -> None:
    by_count = observe(UNKNOWN, Evidence(people=2), T0, P)
    assert (by_count.confidence, by_count.reason) == (CONFIDENCE_COUNT, "people count 2")
    timed_out = expire(observe(UNKNOWN, MOTION, T0, P), T0 + 60, FusionParams(vacancy_timeout=60.0))
    assert (timed_out.confidence, timed_out.reason) == (CONFIDENCE_TIMEOUT, "no motion for 60 s")
    assert observe(UNKNOWN, MOTION, T0, P).reason == "motion detected"


@pytest.mark.parametrize(
    ("room_type", "timeout"),
    [("meeting", 600.0), ("office", 900.0), ("open", 900.0), ("restroom", 300.0), ("unknown", 600.0)],
)
def test_vacancy_timeout_per_room_type(room_type: str, timeout: float) -> None:
    assert FusionParams.for_room_type(room_type).vacancy_timeout == timeout
    assert FusionParams.for_room_type(room_type, 42.0).vacancy_timeout == 42.0


def test_evidence_is_empty() -> None:
    assert Evidence().is_empty()
    assert not Evidence(co2=400.0).is_empty()


def test_explain_an_occupied_room_with_a_running_timer() -> None:
    state = fold([(0, MOTION), (30, BADGE)])
    report = explain(state, T0 + 100, P)
    assert (report["state"], report["phase"], report["reason"]) == ("occupied", "occupied", "motion detected")
    assert report["evidence"]["motion"] == {"last_seen": T0}
    assert report["evidence"]["badge"] == {"last_granted": T0 + 30}
    timers = report["timers"]
    assert (timers["vacancy_deadline"], timers["hold_until"], timers["vacant_at"]) == (
        T0 + 600,
        T0 + 930,
        T0 + 930,
    )
    assert timers["held_by"] == ["badge-in"]
    assert report["why"].startswith("Occupied: motion seen 100 s ago")


def test_explain_a_wasp_box() -> None:
    state = fold([(0, CLOSED), (40, MOTION)])
    report = explain(state, T0 + 3_600, P)
    assert (report["state"], report["phase"]) == ("occupied", "held")
    assert report["timers"]["wasp"] is True
    assert report["timers"]["vacant_at"] is None
    assert report["evidence"]["door"] == {"closed": True, "since": T0, "open_devices": []}
    assert "until a door opens" in report["why"]


def test_explain_brings_the_state_to_now() -> None:
    report = explain(BY_MOTION, T0 + 5_000, P)
    assert (report["state"], report["since"]) == ("vacant", T0 + 600)
    assert report["why"] == "Vacant for 4400 s: no motion for 600 s."
    assert explain(UNKNOWN, T0, P)["why"] == "Unknown: no occupancy evidence yet."


def test_explain_reports_the_co2_trend() -> None:
    state = fold([(0, MOTION), *co2_ramp(0, 600, 500.0, 10.0)])
    co2 = explain(state, T0 + 610, P)["evidence"]["co2"]
    assert co2 == {"ppm": 600.0, "at": T0 + 600, "slope_ppm_per_min": 10.0, "rising": True}


# A device that goes offline: its level evidence stops counting.


def test_an_offline_radar_no_longer_holds_the_room() -> None:
    held = fold([(0, PRESENT, "radar")])
    assert held.phase == Phase.HELD
    after = forget(held, "radar", T0 + 3_600, P)
    assert after.state == Occupancy.VACANT
    assert after.since == T0 + 3_600  # it said "present" until it went offline
    assert "offline" in after.reason


def test_another_radar_still_holds_the_room() -> None:
    held = fold([(0, PRESENT, "radar-a"), (5, PRESENT, "radar-b")])
    after = forget(held, "radar-a", T0 + 3_600, P)
    assert after.state == Occupancy.OCCUPIED
    assert after.present == frozenset({"radar-b"})


def test_recent_motion_still_runs_out_by_its_own_timer() -> None:
    state = fold([(0, PRESENT, "radar"), (100, MOTION, "pir")])
    after = forget(state, "radar", T0 + 200, P)
    assert after.state == Occupancy.OCCUPIED
    assert vacant_at(after, P) == T0 + 100 + 600


def test_an_offline_door_contact_releases_the_wasp_box() -> None:
    boxed = fold([(0, OPEN, "door"), (2, MOTION, "pir"), (10, CLOSED, "door"), (40, MOTION, "pir")])
    assert boxed.wasp
    after = forget(boxed, "door", T0 + 7_200, P, door=True)
    assert not after.wasp
    assert after.state == Occupancy.OCCUPIED  # for the timeout, restarted now
    assert vacant_at(after, P) == T0 + 7_200 + 600


def test_forgetting_a_device_that_held_nothing_changes_nothing() -> None:
    state = fold([(0, MOTION, "pir")])
    assert forget(state, "thermometer", T0 + 10, P) == expire(state, T0 + 10, P)
    assert forget(BY_COUNT, "counter", T0 + 10, P) is BY_COUNT
