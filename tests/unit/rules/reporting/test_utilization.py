"""One room's use per bucket, figures computed by hand, over the weekend Berlin's clocks
go forward (Saturday 24 h, Sunday 23 h)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from rules.reporting.calendar import DailyWindow
from rules.reporting.occupancy import OCCUPIED, VACANT, spans_in_state
from rules.reporting.utilization import Booked, UseSums, peaks, room_use
from rules.site_time import bucket_edges, day_start

BERLIN = ZoneInfo("Europe/Berlin")
H = 3_600.0
START = day_start(date(2024, 3, 30), BERLIN)
END = day_start(date(2024, 4, 1), BERLIN)
EVERY_DAY = DailyWindow(time(8), time(18), frozenset(range(7)))


def at(local: str) -> float:
    """A wall time of that weekend in Berlin (the offset is the zone's)."""
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).timestamp()


CHANGES = [
    (at("2024-03-30T09:00"), OCCUPIED),
    (at("2024-03-30T12:30"), VACANT),
    # Over midnight and the jump at 02:00: 1 h on Saturday, 2.5 h on Sunday.
    (at("2024-03-30T23:00"), OCCUPIED),
    (at("2024-03-31T03:30"), VACANT),
    (at("2024-03-31T17:00"), OCCUPIED),
    (at("2024-03-31T19:00"), VACANT),
]
BOOKINGS = [
    Booked(at("2024-03-30T09:00"), at("2024-03-30T10:00"), no_show=False),
    Booked(at("2024-03-30T14:00"), at("2024-03-30T15:00"), no_show=True),
    Booked(at("2024-03-31T16:30"), at("2024-03-31T17:30"), no_show=False),
]
PEOPLE = [
    (at("2024-03-30T09:00"), 4.0),
    (at("2024-03-30T10:00"), 6.0),
    (at("2024-03-30T12:30"), 0.0),
    (at("2024-03-30T23:00"), 2.0),  # held into Sunday (2 h): Sunday's peak
    (at("2024-03-31T17:00"), 1.0),
]


def test_a_weekend_by_day() -> None:
    edges = bucket_edges(START, END, "day", BERLIN)
    occupied = spans_in_state(OCCUPIED, VACANT, CHANGES, START, END)
    saturday, sunday = room_use(
        occupied, EVERY_DAY.spans(START, END, BERLIN), BOOKINGS, PEOPLE, edges, hold=2 * H
    )
    assert saturday == UseSums(
        occupied=4.5 * H,
        business=10 * H,
        occupied_business=3.5 * H,
        booked=2 * H,
        booked_used=1 * H,
        bookings=2,
        no_shows=1,
        peak_people=6.0,
    )
    assert sunday == UseSums(
        occupied=4.5 * H,
        business=10 * H,
        occupied_business=1 * H,
        booked=1 * H,
        booked_used=0.5 * H,
        bookings=1,
        no_shows=0,
        peak_people=2.0,
    )


def test_by_hour_the_sunday_has_23_buckets() -> None:
    edges = bucket_edges(at("2024-03-31T00:00"), END, "hour", BERLIN)
    occupied = spans_in_state(OCCUPIED, VACANT, CHANGES, edges[0], END)
    hours = room_use(occupied, [], [], [], edges, hold=2 * H)
    assert len(hours) == 23
    # 00:00-01:00 and 01:00-03:00 (one hour long) occupied; 03:00-04:00 half.
    assert [h.occupied / H for h in hours[:4]] == [1.0, 1.0, 0.5, 0.0]


def test_the_state_before_the_window_counts_until_the_first_change() -> None:
    assert spans_in_state(OCCUPIED, OCCUPIED, [(50.0, VACANT)], 0.0, 100.0) == [(0.0, 50.0)]
    assert spans_in_state(OCCUPIED, None, [], 0.0, 100.0) == []
    # A repeated state is no change.
    assert spans_in_state(OCCUPIED, None, [(10.0, OCCUPIED), (20.0, OCCUPIED)], 0.0, 30.0) == [(10.0, 30.0)]


def test_peaks_without_counts_are_unknown() -> None:
    assert peaks([], [0.0, 10.0, 20.0], hold=5.0) == [None, None]
    assert peaks([(1.0, 3.0), (12.0, 1.0)], [0.0, 10.0, 20.0], hold=5.0) == [3.0, 1.0]
    # Held across the edge (until 11): counts in the second bucket too.
    assert peaks([(8.0, 3.0), (11.0, 1.0)], [0.0, 10.0, 20.0], hold=5.0) == [3.0, 3.0]
