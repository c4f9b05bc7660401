"""The booking core as tables: (booking, presence, now) -> transition; availability."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.bookings import (
    Booking,
    BookingPolicy,
    BookingStatus,
    Presence,
    Transition,
    Windows,
    apply,
    availability,
    current_and_next,
    decide,
    presence_of,
    window_problem,
)
from rules.occupancy import Occupancy, OccupancyState

S, E = 10_000.0, 13_600.0  # a one-hour booking
POLICY = BookingPolicy(checkin_window=600, release_when_vacant=900, presence_min=60)
BOOKED = Booking("b1", "orion", S, E)
CHECKED_IN = replace(BOOKED, status=BookingStatus.CHECKED_IN, checked_in_at=S + 70)

VACANT_BEFORE = Presence(sensing=True, occupied=False, since=S - 3000, last_seen=S - 3600)
BLIND = Presence(sensing=False)
OFFLINE = Presence(sensing=False, occupied=False, since=S - 3000, sensors_offline=True)


def occupied(since: float, last_seen: float) -> Presence:
    return Presence(sensing=True, occupied=True, since=since, last_seen=last_seen)


def vacant(since: float) -> Presence:
    return Presence(sensing=True, occupied=False, since=since, last_seen=since - 600)


RELEASED, ENDED, IN = BookingStatus.RELEASED, BookingStatus.ENDED, BookingStatus.CHECKED_IN
CANCELLED = BookingStatus.CANCELLED

DECIDE_TABLE = [
    # id, booking, presence, now, (status, at) or None
    ("before-start", BOOKED, VACANT_BEFORE, S - 1, None),
    ("within-checkin-window", BOOKED, VACANT_BEFORE, S + 599, None),
    ("no-show-released-at-deadline", BOOKED, VACANT_BEFORE, S + 600, (RELEASED, S + 600)),
    ("released-late-tick-dated-at-deadline", BOOKED, VACANT_BEFORE, S + 2000, (RELEASED, S + 600)),
    ("brief-visit-released-when-it-left", BOOKED, vacant(S + 650), S + 700, (RELEASED, S + 650)),
    ("no-sensor-never-released", BOOKED, BLIND, S + 3000, None),
    ("sensors-offline-never-released", BOOKED, OFFLINE, S + 3000, None),
    ("presence-held-checks-in", BOOKED, occupied(S + 10, S + 80), S + 90, (IN, S + 70)),
    ("presence-not-held-long-enough", BOOKED, occupied(S + 10, S + 65), S + 69, None),
    ("one-pir-blip-is-not-presence", BOOKED, occupied(S + 10, S + 10), S + 300, None),
    ("blip-occupied-past-deadline-waits", BOOKED, occupied(S + 10, S + 10), S + 605, None),
    ("occupied-before-start-counts-from-start", BOOKED, occupied(S - 300, S + 61), S + 62, (IN, S + 60)),
    ("evidence-before-start-only", BOOKED, occupied(S - 300, S - 10), S + 100, None),
    ("no-show-through-the-end", replace(BOOKED, end=S + 300), VACANT_BEFORE, S + 300, (RELEASED, S + 300)),
    ("end-without-sensors-ended", BOOKED, BLIND, E, (ENDED, E)),
    ("checked-in-occupied-stays", CHECKED_IN, occupied(S + 10, S + 2000), S + 2000, None),
    ("vacant-long-enough-ends-early", CHECKED_IN, vacant(S + 2000), S + 2900, (ENDED, S + 2900)),
    ("vacant-not-long-enough", CHECKED_IN, vacant(S + 2000), S + 2899, None),
    ("vacant-counts-from-check-in", CHECKED_IN, vacant(S - 100), S + 970, (ENDED, S + 970)),
    ("checked-in-blind-keeps-booking", CHECKED_IN, BLIND, S + 3000, None),
    ("checked-in-over", CHECKED_IN, occupied(S, E), E, (ENDED, E)),
    ("vacancy-runs-past-end", CHECKED_IN, vacant(E - 100), E, (ENDED, E)),
    ("released-is-final", replace(BOOKED, status=RELEASED), VACANT_BEFORE, E + 1, None),
    (
        "cancelled-is-final",
        replace(BOOKED, status=BookingStatus.CANCELLED),
        occupied(S, S + 99),
        S + 99,
        None,
    ),
]


@pytest.mark.parametrize(
    ("booking", "presence", "now", "expected"),
    [row[1:] for row in DECIDE_TABLE],
    ids=[row[0] for row in DECIDE_TABLE],
)
def test_decide(
    booking: Booking, presence: Presence, now: float, expected: tuple[BookingStatus, float] | None
) -> None:
    transition = decide(booking, presence, POLICY, now)
    assert (None if transition is None else (transition.status, transition.at)) == expected
    if transition is not None:
        assert transition.at <= now


def test_apply_records_when() -> None:
    checked = apply(BOOKED, Transition(IN, S + 70, "presence"))
    assert (checked.status, checked.checked_in_at, checked.updated_at) == (IN, S + 70, S + 70)
    assert apply(BOOKED, Transition(RELEASED, S + 600, "")).released_at == S + 600
    assert apply(CHECKED_IN, Transition(ENDED, S + 900, "")).ended_at == S + 900
    cancelled = apply(BOOKED, Transition(BookingStatus.CANCELLED, S - 5, ""))
    assert (cancelled.active, cancelled.cancelled_at) == (False, S - 5)


NOW = 50_000.0
PRESENCE_TABLE = [
    ("vacant", OccupancyState(Occupancy.VACANT, since=NOW - 60, last_motion=NOW - 700), (False, NOW - 700)),
    ("motion", OccupancyState(Occupancy.OCCUPIED, since=NOW - 60, last_motion=NOW - 5), (True, NOW - 5)),
    ("people-count-is-now", OccupancyState(Occupancy.OCCUPIED, since=NOW - 60, people=2), (True, NOW)),
    (
        "radar-presence-is-now",
        OccupancyState(Occupancy.OCCUPIED, since=NOW - 60, present=frozenset({"radar"})),
        (True, NOW),
    ),
    (
        "badge-hold",
        OccupancyState(Occupancy.OCCUPIED, since=NOW - 60, last_motion=NOW - 50, last_badge=NOW - 20),
        (True, NOW - 20),
    ),
    ("no-evidence", OccupancyState(), (False, None)),
]


@pytest.mark.parametrize(
    ("state", "expected"), [row[1:] for row in PRESENCE_TABLE], ids=[row[0] for row in PRESENCE_TABLE]
)
def test_presence_of(state: OccupancyState, expected: tuple[bool, float | None]) -> None:
    presence = presence_of(state, True, NOW)
    assert (presence.occupied, presence.last_seen) == expected
    assert presence.since == state.since


NEXT = Booking("b2", "orion", S + 7200, S + 9000)
AVAILABILITY_TABLE = [
    # id, (bookings, start, end, now, occupied, sensors_offline), (available, reasons, free_until, next)
    ("nothing-booked", ((), S, E, S - 10, False, False), (True, (), None, None)),
    ("free-until-next", ((BOOKED, NEXT), S - 3600, S, S - 3600, False, False), (True, (), S, "b1")),
    ("booked", ((BOOKED, NEXT), S + 600, S + 1200, S - 3600, False, False), (False, ("booked",), None, "b1")),
    ("between-bookings", ((BOOKED, NEXT), E, E + 1800, S - 3600, False, False), (True, (), NEXT.start, "b2")),
    ("occupied-now", ((BOOKED,), S - 600, S, S - 600, True, False), (False, ("occupied",), None, "b1")),
    ("occupied-ignored-later", ((BOOKED,), S - 600, S, S - 1200, True, False), (True, (), S, "b1")),
    (
        "meeting-in-progress",
        ((BOOKED,), S, E, S + 60, True, False),
        (False, ("booked", "occupied"), None, "b1"),
    ),
    ("sensors-offline-caveat", ((), S, E, S, False, True), (True, ("sensors_offline",), None, None)),
    ("offline-only-counts-now", ((), S, E, S - 60, False, True), (True, (), None, None)),
    (
        "released-booking-frees",
        ((replace(BOOKED, status=RELEASED),), S, E, S + 700, False, False),
        (True, (), None, None),
    ),
]


@pytest.mark.parametrize(
    ("given", "expected"),
    [row[1:] for row in AVAILABILITY_TABLE],
    ids=[row[0] for row in AVAILABILITY_TABLE],
)
def test_availability(
    given: tuple[tuple[Booking, ...], float, float, float, bool, bool],
    expected: tuple[bool, tuple[str, ...], float | None, str | None],
) -> None:
    bookings, start, end, now, occupied_now, offline = given
    got = availability(bookings, start, end, now, occupied=occupied_now, sensors_offline=offline)
    assert (got.available, got.reasons, got.free_until, got.next_booking and got.next_booking.id) == expected


# The windows an answer holds for: (bookings, start, end) -> Windows. BOOKED is [S, E),
# NEXT [S + 7200, S + 9000).
INF = float("inf")
HOLDS_FOR_TABLE = [
    ("nothing-booked", ((), S, E), Windows()),
    # Free until BOOKED: the same while the window ends by its start.
    ("before-a-booking", ((BOOKED, NEXT), S - 3600, S - 1800), Windows(start_until=E, end_until=S)),
    # Booked by BOOKED: the same while the window starts before its end and ends after its start.
    ("in-a-booking", ((BOOKED, NEXT), S + 600, S + 1200), Windows(start_until=E, end_after=S)),
    # Between the two: from BOOKED's end on, until NEXT starts.
    ("between-bookings", ((BOOKED, NEXT), E, E + 1800), Windows(E, NEXT.end, end_until=NEXT.start)),
    ("after-the-last", ((BOOKED, NEXT), NEXT.end + 60, NEXT.end + 120), Windows(start_from=NEXT.end)),
    ("inactive-bookings-do-not-count", ((replace(BOOKED, status=RELEASED),), S, E), Windows()),
]


@pytest.mark.parametrize(
    ("given_", "expected"),
    [row[1:] for row in HOLDS_FOR_TABLE],
    ids=[row[0] for row in HOLDS_FOR_TABLE],
)
def test_holds_for(given_: tuple[tuple[Booking, ...], float, float], expected: Windows) -> None:
    bookings, start, end = given_
    assert availability(bookings, start, end, S - 7200).holds_for == expected


def test_windows_contain_and_intersect() -> None:
    w = Windows(10, 20, end_after=30, end_until=40)
    assert (10, 31) in w and (19.5, 40) in w
    assert (20, 31) not in w and (9, 31) not in w and (10, 30) not in w and (10, 41) not in w
    assert w & Windows(start_from=15, end_until=35) == Windows(15, 20, 30, 35)
    assert Windows() & w == w


MINUTE = 60.0


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Booking, ...]:
    """A room's bookings as the index holds them: sorted by start, active ones never
    overlapping (inactive ones may), on a minute grid so that boundaries coincide."""
    bookings: list[Booking] = []
    at = draw(st.integers(0, 30)) * MINUTE
    for n in range(draw(st.integers(0, 5))):
        at += draw(st.integers(0, 60)) * MINUTE
        length = draw(st.integers(1, 90)) * MINUTE
        status = draw(st.sampled_from([BookingStatus.BOOKED, BookingStatus.CHECKED_IN, RELEASED]))
        bookings.append(Booking(f"b{n}", "orion", at, at + length, status=status))
        if status != RELEASED:
            at += length
    return tuple(sorted(bookings, key=lambda b: (b.start, b.id)))


grid = st.integers(0, 600).map(lambda m: m * MINUTE / 2)


@settings(max_examples=150, deadline=None)
@given(schedules(), grid, grid, grid, st.booleans(), st.booleans())
def test_an_answer_is_the_same_for_every_window_it_holds_for(
    bookings: tuple[Booking, ...],
    s1: float,
    length1: float,
    now: float,
    occupied_now: bool,
    offline: bool,
) -> None:
    """What a cache of answers rests on: for any other window in `holds_for` (with now
    in it or not, as in the first), the answer is the same. The other windows tried
    start and end on and next to every boundary, where answers change."""
    e1 = s1 + length1 + MINUTE
    first = availability(bookings, s1, e1, now, occupied=occupied_now, sensors_offline=offline)
    # A window always holds for itself.
    assert (s1, e1) in first.holds_for
    instants = {s1, e1, now} | {b.start for b in bookings} | {b.end for b in bookings}
    near = sorted({t + d for t in instants for d in (-1.0, 0.0, 1.0)})
    for s2 in near:
        for e2 in (t for t in near if t > s2):
            if (s2, e2) not in first.holds_for or (s1 <= now < e1) != (s2 <= now < e2):
                continue
            second = availability(bookings, s2, e2, now, occupied=occupied_now, sensors_offline=offline)
            assert replace(second, holds_for=first.holds_for) == first, (s2, e2)


def test_current_and_next() -> None:
    assert current_and_next((BOOKED, NEXT), S - 1) == (None, BOOKED)
    assert current_and_next((BOOKED, NEXT), S) == (BOOKED, NEXT)
    assert current_and_next((BOOKED, NEXT), E) == (None, NEXT)
    assert current_and_next((), S) == (None, None)


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (S, E, None),
        (S, S, "end must be after start"),
        (S, S - 1, "end must be after start"),
        (S, S + 86_401, "a booking may last at most 24 h"),
        (float("nan"), E, "start and end must be finite times"),
        (S, float("inf"), "start and end must be finite times"),
    ],
)
def test_window_problem(start: float, end: float, problem: str | None) -> None:
    assert window_problem(start, end, 86_400) == problem
