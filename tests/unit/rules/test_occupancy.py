"""Occupancy as a table of (state, evidence, now) -> state."""

from __future__ import annotations

import pytest

from rules.occupancy import Evidence, Occupancy, OccupancyState, expire, observe, vacancy_deadline

T0 = 1_000.0
UNKNOWN = OccupancyState()
BY_MOTION = OccupancyState(
    Occupancy.OCCUPIED, since=T0, last_motion=T0, confidence=0.9, reason="motion detected"
)
BY_COUNT = OccupancyState(Occupancy.OCCUPIED, since=T0, people=2, confidence=0.95, reason="people count 2")
VACANT = OccupancyState(Occupancy.VACANT, since=T0, confidence=0.8, reason="no motion for 600 s")

OBSERVE_TABLE = [
    # (name, before, evidence, now, state after, people after, since after)
    ("motion occupies", UNKNOWN, Evidence(motion=True), T0, Occupancy.OCCUPIED, None, T0),
    ("motion on vacant", VACANT, Evidence(motion=True), T0 + 5, Occupancy.OCCUPIED, None, T0 + 5),
    ("more motion keeps since", BY_MOTION, Evidence(motion=True), T0 + 30, Occupancy.OCCUPIED, None, T0),
    ("no motion does not vacate", BY_MOTION, Evidence(motion=False), T0 + 30, Occupancy.OCCUPIED, None, T0),
    ("no motion from the start", UNKNOWN, Evidence(motion=False), T0, Occupancy.VACANT, None, T0),
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
        Evidence(motion=True),
        T0 + 2,
        Occupancy.OCCUPIED,
        0,
        T0 + 2,
    ),
    ("nothing said", BY_MOTION, Evidence(), T0 + 1, Occupancy.OCCUPIED, None, T0),
]


@pytest.mark.parametrize(
    ("before", "evidence", "now", "state", "people", "since"),
    [row[1:] for row in OBSERVE_TABLE],
    ids=[row[0] for row in OBSERVE_TABLE],
)
def test_observe(
    before: OccupancyState, evidence: Evidence, now: float, state: Occupancy, people: int | None, since: float
) -> None:
    after = observe(before, evidence, now)
    assert (after.state, after.people, after.since) == (state, people, since)


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
    after = expire(before, now, timeout)
    assert (after.state, after.since) == (state, since)


def test_expire_returns_the_same_object_when_nothing_changes() -> None:
    # The ticker relies on identity to skip rooms that did not change.
    assert expire(BY_MOTION, T0 + 1, 600.0) is BY_MOTION


def test_vacancy_deadline() -> None:
    assert vacancy_deadline(BY_MOTION, 600.0) == T0 + 600
    assert vacancy_deadline(BY_COUNT, 600.0) is None
    assert vacancy_deadline(VACANT, 600.0) is None


def test_confidence_and_reason_follow_the_evidence() -> None:
    by_count = observe(UNKNOWN, Evidence(people=2), T0)
    assert (by_count.confidence, by_count.reason) == (0.95, "people count 2")
    timed_out = expire(observe(UNKNOWN, Evidence(motion=True), T0), T0 + 60, 60.0)
    assert (timed_out.confidence, timed_out.reason) == (0.8, "no motion for 60 s")
