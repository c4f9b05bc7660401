"""People and their working day: who comes in, when, where they sit, lunch, breaks
and meetings (booked or walk-in, attended, late or skipped).

Pure: a day's plan is a function of the people, the rooms and one random generator
seeded for that day, so the same seed gives the same day whatever the gateway does.
A plan is a list of moves `(at, person, room)`: from `at` the person is in `room`
(None: out of the building or walking between rooms).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.simulate.plan import SimRoom
from simulators.simulate.schema import Meetings, Population, Spread

WALK = (20.0, 60.0)  # seconds between two rooms
MEETING_GAP = 600.0  # a room is planned free this long around each meeting
GRID = 1800.0  # meetings start on the half hour


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    population: Population
    building: str
    desk: str  # room id


@dataclass(frozen=True, slots=True)
class Meeting:
    id: str
    building: str
    room: str
    start: float
    end: float
    organizer: str
    attendees: tuple[str, ...]
    booked: bool
    no_show: bool
    late_by: float  # seconds after the start the group arrives (0: on time)
    book_at: float  # when the booking is made through the booking API


@dataclass(frozen=True, slots=True)
class DayPlan:
    moves: list[tuple[float, str, str | None]]
    meetings: list[Meeting]


def seat(populations: Sequence[Population], rooms: Sequence[SimRoom], rng: random.Random) -> list[Person]:
    """Everyone with a desk: in their populations' buildings (evenly), in rooms of
    their desk types, filled in proportion to capacity (overflow spreads evenly)."""
    buildings = list(dict.fromkeys(room.building for room in rooms))
    people: list[Person] = []
    taken: dict[str, int] = {}
    for population in populations:
        theirs = [b for b in buildings if not population.buildings or b in population.buildings]
        for n in range(population.size):
            building = theirs[n % len(theirs)]
            desks = [r for r in rooms if r.building == building and r.type in population.desks]
            if not desks:
                desks = [r for r in rooms if r.building == building]
            free = [r for r in desks if taken.get(r.id, 0) < r.capacity]
            room = (
                rng.choice(free)
                if free
                else min(desks, key=lambda r: (taken.get(r.id, 0) / r.capacity, r.id))
            )
            taken[room.id] = taken.get(room.id, 0) + 1
            people.append(Person(f"{population.name}-{n + 1}", population, building, room.id))
    return people


class DayPlanner:
    """Plans one day of the whole site at a time."""

    def __init__(self, people: Sequence[Person], rooms: Sequence[SimRoom]) -> None:
        self.people = list(people)
        self.rooms = {r.id: r for r in rooms}
        self._by_type: dict[tuple[str, str], list[SimRoom]] = {}
        for room in rooms:
            self._by_type.setdefault((room.building, room.type), []).append(room)

    def plan(self, day: int, weekday: str, midnight: float, rng: random.Random) -> DayPlan:
        present: list[Person] = []
        windows: dict[str, tuple[float, float]] = {}
        segments: dict[str, list[tuple[float, float, int, str | None]]] = {}
        for person in self.people:
            p = person.population
            # Draw for everyone, present or not: one person's day never shifts another's draws.
            attends = rng.random() < p.attendance
            arrive, leave = _at(p.arrival, rng), _at(p.leave, rng)
            if weekday not in p.workdays or not attends:
                continue
            arrive = min(max(arrive, 5 * 3600.0), 12 * 3600.0)
            leave = min(max(leave, arrive + 3 * 3600.0), 23 * 3600.0)
            present.append(person)
            windows[person.id] = (midnight + arrive, midnight + leave)
            own = segments[person.id] = [(midnight + arrive, midnight + leave, 0, person.desk)]
            desk = self.rooms[person.desk]
            if p.lunch is not None and rng.random() < p.lunch.probability:
                start = midnight + _at(p.lunch.at, rng)
                length = rng.uniform(p.lunch.duration.low, p.lunch.duration.high)
                place = self._near(desk, p.lunch.room, rng) if p.lunch.room else None
                own.append((start, start + length, 2, place))
            if p.breaks is not None:
                for _ in range(_poisson(p.breaks.per_day, rng)):
                    start = rng.uniform(
                        midnight + arrive + 1800, max(midnight + arrive + 1800, midnight + leave - 1800)
                    )
                    length = rng.uniform(p.breaks.duration.low, p.breaks.duration.high)
                    own.append((start, start + length, 1, self._near(desk, p.breaks.room, rng)))
        meetings = self._meetings(day, midnight, present, windows, segments, rng)
        moves: list[tuple[float, str, str | None]] = []
        for person in present:
            moves.extend(_moves(person.id, segments[person.id], rng))
        moves.sort(key=lambda move: move[0])
        return DayPlan(moves, meetings)

    def _near(self, desk: SimRoom, room_type: str | None, rng: random.Random) -> str | None:
        if room_type is None:
            return None
        choices = self._by_type.get((desk.building, room_type), [])
        same_floor = [r for r in choices if r.floor == desk.floor]
        pick = same_floor or choices
        return rng.choice(pick).id if pick else None

    def _meetings(
        self,
        day: int,
        midnight: float,
        present: list[Person],
        windows: dict[str, tuple[float, float]],
        segments: dict[str, list[tuple[float, float, int, str | None]]],
        rng: random.Random,
    ) -> list[Meeting]:
        meetings: list[Meeting] = []
        busy: dict[str, list[tuple[float, float]]] = {}
        rooms_busy: dict[str, list[tuple[float, float]]] = {}
        for building in dict.fromkeys(p.building for p in present):
            here = [p for p in present if p.building == building and p.population.meetings is not None]
            if not here:
                continue
            wanted = sum(p.population.meetings.per_day for p in here if p.population.meetings)
            rooms = sorted(self._by_type.get((building, "meeting"), []), key=lambda r: (r.capacity, r.id))
            attended, tries = 0, 0
            while attended < wanted and tries < 20 * max(1.0, wanted):
                tries += 1
                organizer = rng.choice(here)
                habits: Meetings = organizer.population.meetings  # type: ignore[assignment]
                length = rng.choice(habits.duration)
                size = rng.randint(*habits.size)
                first = max(habits.between[0], windows[organizer.id][0] - midnight + 900)
                last = min(habits.between[1], windows[organizer.id][1] - midnight - length - 900)
                slots = int((last - first) // GRID) if last >= first else -1
                if slots < 0:
                    continue
                start = midnight + (first // GRID + (1 if first % GRID else 0) + rng.randint(0, slots)) * GRID
                end = start + length
                if end > windows[organizer.id][1] - 600:
                    continue
                if _overlaps(busy.get(organizer.id, []), start - 600, end + 600):
                    continue
                free = [
                    p
                    for p in here
                    if p is not organizer
                    and windows[p.id][0] <= start - 600
                    and windows[p.id][1] >= end + 600
                    and not _overlaps(busy.get(p.id, []), start - 600, end + 600)
                ]
                guests = rng.sample(free, min(len(free), size - 1))
                group = [organizer, *guests]
                if len(group) < habits.size[0]:
                    continue
                booked = rng.random() < habits.booked
                no_show = booked and rng.random() < habits.no_show
                late = (
                    rng.uniform(habits.late.by.low, habits.late.by.high)
                    if rng.random() < habits.late.probability
                    else 0.0
                )
                room = next(
                    (
                        r
                        for r in rooms
                        if r.capacity >= len(group)
                        and (r.bookable or not booked)
                        and not _overlaps(rooms_busy.get(r.id, []), start - MEETING_GAP, end + MEETING_GAP)
                    ),
                    None,
                )
                if room is None:
                    continue
                _add(rooms_busy.setdefault(room.id, []), start, end)
                meeting = Meeting(
                    id=f"d{day}-m{len(meetings) + 1}",
                    building=building,
                    room=room.id,
                    start=start,
                    end=end,
                    organizer=organizer.id,
                    attendees=tuple(p.id for p in group),
                    booked=booked,
                    no_show=no_show,
                    late_by=late,
                    book_at=max(midnight, start - habits.book_ahead),
                )
                meetings.append(meeting)
                attended += len(group)
                for person in group:
                    _add(busy.setdefault(person.id, []), start, end)
                    if not no_show:
                        # People trickle in over a minute (after the late start) and leave at the end.
                        arrive = start + late + rng.uniform(0, 60)
                        segments[person.id].append((arrive, end, 3, room.id))
        meetings.sort(key=lambda m: (m.start, m.id))
        return meetings


def _at(spread: Spread, rng: random.Random) -> float:
    return spread.mean + (rng.gauss(0.0, spread.sd) if spread.sd else 0.0)


def _poisson(mean: float, rng: random.Random) -> int:
    # Knuth's method; means here are small (breaks a day).
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _overlaps(spans: list[tuple[float, float]], start: float, end: float) -> bool:
    index = bisect.bisect_left(spans, (start, start))
    if index > 0 and spans[index - 1][1] > start:
        return True
    return index < len(spans) and spans[index][0] < end


def _add(spans: list[tuple[float, float]], start: float, end: float) -> None:
    bisect.insort(spans, (start, end))


def _moves(
    person: str, segments: list[tuple[float, float, int, str | None]], rng: random.Random
) -> list[tuple[float, str, str | None]]:
    """Where the person is over the day: the highest-priority segment at each moment
    (meeting > lunch > break > desk; the later one on a tie), with a walk between rooms."""
    points = sorted({t for start, end, _, _ in segments for t in (start, end)})
    ranked = list(enumerate(segments))
    moves: list[tuple[float, str, str | None]] = []
    where: str | None = None
    for i, t in enumerate(points):
        covering = [(prio, index, room) for index, (start, end, prio, room) in ranked if start <= t < end]
        here = max(covering)[2] if covering else None
        if here == where:
            continue
        if where is not None and here is not None:
            # Leaves, walks over; never past the next change of plan.
            walk = rng.uniform(*WALK)
            if i + 1 < len(points):
                walk = min(walk, (points[i + 1] - t) / 2)
            moves.append((t, person, None))
            moves.append((t + walk, person, here))
        else:
            moves.append((t, person, here))
        where = here
    return moves
