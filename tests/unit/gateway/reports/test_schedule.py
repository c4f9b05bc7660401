"""When scheduled reports are due: ISO weeks and calendar months of the site, run at a
local time the day after, from the period the schedule was switched on in."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from gateway.reports.schedule import due, period_of

BERLIN = ZoneInfo("Europe/Berlin")
SIX = time(6, 0)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("kind", "day", "label", "first", "following"),
    [
        ("weekly", date(2026, 11, 25), "2026-W48", date(2026, 11, 23), date(2026, 11, 30)),
        ("weekly", date(2026, 11, 23), "2026-W48", date(2026, 11, 23), date(2026, 11, 30)),
        ("weekly", date(2026, 11, 29), "2026-W48", date(2026, 11, 23), date(2026, 11, 30)),
        # ISO week 1 of 2027 starts on Monday 4 January; 1-3 January are week 53 of 2026.
        ("weekly", date(2027, 1, 2), "2026-W53", date(2026, 12, 28), date(2027, 1, 4)),
        ("monthly", date(2026, 11, 30), "2026-11", date(2026, 11, 1), date(2026, 12, 1)),
        ("monthly", date(2026, 12, 31), "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ],
    ids=["mid-week", "monday", "sunday", "iso-year-boundary", "month", "december"],
)
def test_the_period_holding_a_day(kind: str, day: date, label: str, first: date, following: date) -> None:
    period = period_of(kind, day)  # type: ignore[arg-type]
    assert (period.label, period.first_day, period.next_day) == (label, first, following)


def test_a_week_across_the_clock_change_is_167_hours_and_runs_at_six_local() -> None:
    # Summer time ends on Sunday 25 October 2026 in Berlin.
    week = period_of("weekly", date(2026, 10, 21))
    assert week.end(BERLIN) - week.start(BERLIN) == (7 * 24 + 1) * 3600
    assert datetime.fromtimestamp(week.run_at(BERLIN, SIX), BERLIN).isoformat() == "2026-10-26T06:00:00+01:00"


def test_the_first_period_due_is_the_one_running_when_the_schedule_was_switched_on() -> None:
    since = at("2026-11-25T15:00")  # a Wednesday of week 48
    assert due("weekly", since, at("2026-11-30T05:59"), BERLIN, SIX, 12) == []
    (week,) = due("weekly", since, at("2026-11-30T06:00"), BERLIN, SIX, 12)
    assert week.label == "2026-W48"
    # Still the one week until the next one's run time.
    assert [p.label for p in due("weekly", since, at("2026-12-07T05:59"), BERLIN, SIX, 12)] == ["2026-W48"]


def test_periods_whose_run_time_passed_while_down_are_all_due_and_a_long_backlog_is_cut() -> None:
    since = at("2026-11-02T00:00")
    labels = [p.label for p in due("weekly", since, at("2026-12-01T12:00"), BERLIN, SIX, 12)]
    assert labels == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    assert [p.label for p in due("weekly", since, at("2026-12-01T12:00"), BERLIN, SIX, 2)] == [
        "2026-W47",
        "2026-W48",
    ]


def test_months_run_on_the_first_at_the_local_time() -> None:
    since = at("2026-10-10T10:00")
    assert [p.label for p in due("monthly", since, at("2026-11-01T05:00"), BERLIN, SIX, 12)] == []
    assert [p.label for p in due("monthly", since, at("2026-12-01T06:00"), BERLIN, SIX, 12)] == [
        "2026-10",
        "2026-11",
    ]
