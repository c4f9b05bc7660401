"""People's days: who sits where, meetings that fit their rooms and their people."""

from __future__ import annotations

import itertools
import random

from simulators.simulate.library import load_scenario
from simulators.simulate.people import DayPlanner, seat
from simulators.simulate.physics import Sky, co2_after, daylight_lux
from simulators.simulate.plan import SitePlan
from simulators.simulate.schema import Co2Physics, DaylightPhysics

MONDAY = 1_893_974_400.0


def planner() -> tuple[SitePlan, DayPlanner]:
    scenario = load_scenario("faults")
    plan = SitePlan(scenario)
    rooms = list(plan.rooms.values())
    return plan, DayPlanner(seat(scenario.populations, rooms, random.Random(1)), rooms)


def test_desks_fill_rooms_of_the_desk_types_within_capacity() -> None:
    plan, day = planner()
    seats: dict[str, int] = {}
    for person in day.people:
        assert plan.rooms[person.desk].type in ("office", "open")
        seats[person.desk] = seats.get(person.desk, 0) + 1
    desks = [room for room in plan.rooms.values() if room.type in ("office", "open")]
    # 34 people, 32 desks: every desk taken before any room takes more than it holds.
    assert len(day.people) > sum(room.capacity for room in desks)
    assert all(seats.get(room.id, 0) >= room.capacity for room in desks)
    assert sum(max(0, seats[room] - plan.rooms[room].capacity) for room in seats) == len(day.people) - 32


def test_meetings_fit_their_rooms_and_never_overlap() -> None:
    plan, day = planner()
    for seed in range(5):
        meetings = day.plan(0, "mon", MONDAY, random.Random(seed)).meetings
        assert meetings
        by_room: dict[str, list[tuple[float, float]]] = {}
        for meeting in meetings:
            room = plan.rooms[meeting.room]
            assert room.type == "meeting" and len(meeting.attendees) <= room.capacity
            assert not meeting.booked or room.bookable
            assert meeting.book_at < meeting.start < meeting.end
            by_room.setdefault(meeting.room, []).append((meeting.start, meeting.end))
        for spans in by_room.values():
            spans.sort()
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_moves_are_in_time_order_and_no_shows_stay_away() -> None:
    _, day = planner()
    plan = day.plan(0, "mon", MONDAY, random.Random(3))
    assert [m[0] for m in plan.moves] == sorted(m[0] for m in plan.moves)
    for meeting in plan.meetings:
        into = [m for m in plan.moves if m[2] == meeting.room and meeting.start - 60 <= m[0] < meeting.end]
        if meeting.no_show:
            assert not into, meeting
        else:
            assert {m[1] for m in into} <= set(meeting.attendees)
            assert min(m[0] for m in into) >= meeting.start + meeting.late_by


def test_nobody_comes_at_the_weekend() -> None:
    _, day = planner()
    plan = day.plan(5, "sat", MONDAY + 5 * 86_400, random.Random(1))
    assert plan.moves == [] and plan.meetings == []


def test_co2_rises_to_its_steady_state_and_decays_with_ventilation() -> None:
    physics = Co2Physics()
    full = co2_after(420.0, 8, 10 * 3600, 100.0, physics)
    # 8 people x 5 mL/s in 100 m3 at 3 air changes an hour: 480 ppm above outdoor air.
    assert abs(full - 900.0) < 1.0
    assert co2_after(full, 0, 1200, 100.0, physics) < 420 + 480 * 0.37 + 1  # one time constant (20 min)


def test_no_daylight_at_night_or_in_an_inner_room() -> None:
    sky, light = Sky.draw(random.Random(1), 0.4), DaylightPhysics()
    assert daylight_lux(3 * 3600, sky, 1.0, light) == 0.0
    assert daylight_lux(12.5 * 3600, sky, 0.0, light) == 0.0
    assert 150 < daylight_lux(12.5 * 3600, sky, 1.0, light) <= light.peak_lux
