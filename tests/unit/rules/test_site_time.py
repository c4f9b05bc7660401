"""The site calendar: local days, hours and weeks as UTC instants, on clock-change days too."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from rules.site_time import bucket_edges, daily_spans, day_bounds, day_start, local_iso, unit_start

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3_600.0


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def isos(edges: list[float]) -> list[str]:
    return [local_iso(edge, BERLIN) for edge in edges]


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2024, 3, 30), 24), (date(2024, 3, 31), 23), (date(2024, 10, 27), 25)],
    ids=["ordinary", "clocks forward", "clocks back"],
)
def test_a_local_day_lasts_what_the_clocks_say(day: date, hours: int) -> None:
    start = day_start(day, BERLIN)
    assert day_bounds(start + 1, BERLIN) == (start, start + hours * HOUR)


def test_hours_of_the_spring_forward_day_skip_two_oclock() -> None:
    edges = bucket_edges(at("2024-03-31T00:00+01:00"), at("2024-04-01T00:00+02:00"), "hour", BERLIN)
    assert len(edges) - 1 == 23
    assert isos(edges[:4]) == [
        "2024-03-31T00:00:00+01:00",
        "2024-03-31T01:00:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T04:00:00+02:00",
    ]


def test_hours_of_the_fall_back_day_have_two_two_oclocks() -> None:
    edges = bucket_edges(at("2024-10-27T00:00+02:00"), at("2024-10-28T00:00+01:00"), "hour", BERLIN)
    assert len(edges) - 1 == 25
    assert isos(edges[2:4]) == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
    # Each 02:00 hour is its own bucket start.
    assert unit_start(edges[3] + 1_800, "hour", BERLIN) == edges[3]
    assert unit_start(edges[2] + 1_800, "hour", BERLIN) == edges[2]


def test_days_and_weeks_cut_the_window_where_they_begin() -> None:
    start, end = at("2024-03-27T13:00+01:00"), at("2024-04-09T02:00+02:00")
    assert isos(bucket_edges(start, end, "week", BERLIN)) == [
        "2024-03-27T13:00:00+01:00",
        "2024-04-01T00:00:00+02:00",  # Monday
        "2024-04-08T00:00:00+02:00",
        "2024-04-09T02:00:00+02:00",
    ]
    days = bucket_edges(start, end, "day", BERLIN)
    assert len(days) - 1 == 14 and isos(days)[1] == "2024-03-28T00:00:00+01:00"
    assert bucket_edges(start, end, "none", BERLIN) == [start, end]
    assert unit_start(start, "week", BERLIN) == at("2024-03-25T00:00+01:00")


def test_a_midnight_the_zone_skips_starts_the_day_at_the_jump() -> None:
    santiago = ZoneInfo("America/Santiago")
    # 2022-09-11: clocks went from 24:00 (-04) to 01:00 (-03).
    start = day_start(date(2022, 9, 11), santiago)
    assert local_iso(start, santiago) == "2022-09-11T01:00:00-03:00"
    assert local_iso(start - 1, santiago) == "2022-09-10T23:59:59-04:00"


def test_daily_windows_on_clock_change_days() -> None:
    weekend = day_start(date(2024, 3, 30), BERLIN), day_start(date(2024, 4, 1), BERLIN)
    every_day = range(7)
    office = daily_spans(*weekend, BERLIN, time(8), time(18), every_day)
    assert [e - s for s, e in office] == [10 * HOUR, 10 * HOUR]
    night = daily_spans(*weekend, BERLIN, time(22), time(6), every_day)
    # Friday night's tail, Saturday night (7 h: the clocks jump), Sunday night's head.
    assert [e - s for s, e in night] == [6 * HOUR, 7 * HOUR, 2 * HOUR]
    assert daily_spans(*weekend, BERLIN, time(8), time(18), [0, 1, 2, 3, 4]) == []
