"""When scheduled reports are due: weeks and months of the site's calendar (pure).

A weekly period is an ISO week, Monday 00:00 to the next Monday 00:00 in the site's
time zone; a monthly one runs from the 1st to the next 1st. A period's reports are
written at `at` (local time) on the day it ends, once every reading of it is in.

Which periods are due at `now` depends on `since`, when the schedule was first seen
switched on: every period that ends after `since` and whose run time has come. So
the period running when the schedule was switched on is the first one written (not
the one before it), and a period whose run time passed while the gateway was down is
written when it comes back: none missed, and none written twice as long as the
archive remembers which it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.reports.site_time import local_midnight

PeriodKind = Literal["weekly", "monthly"]


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    # "2026-W48" (ISO week) or "2026-11": unique per kind, sorts in time order.
    label: str
    first_day: date
    # The day after the period (its end is that day's local midnight).
    next_day: date

    def start(self, zone: ZoneInfo) -> float:
        return local_midnight(self.first_day, zone).timestamp()

    def end(self, zone: ZoneInfo) -> float:
        return local_midnight(self.next_day, zone).timestamp()

    def run_at(self, zone: ZoneInfo, at: time) -> float:
        return datetime.combine(self.next_day, at, tzinfo=zone).timestamp()


def period_of(kind: PeriodKind, day: date) -> Period:
    """The period holding the local date `day`."""
    if kind == "weekly":
        monday = day - timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        return Period(kind, f"{year}-W{week:02d}", monday, monday + timedelta(days=7))
    first = day.replace(day=1)
    following = (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )
    return Period(kind, f"{first:%Y-%m}", first, following)


def periods_from(kind: PeriodKind, day: date) -> Iterator[Period]:
    """The period holding `day` and every one after it."""
    period = period_of(kind, day)
    while True:
        yield period
        period = period_of(kind, period.next_day)


def due(kind: PeriodKind, since: float, now: float, zone: ZoneInfo, at: time, limit: int) -> list[Period]:
    """The periods ending after `since` whose run time is at or before `now`, oldest first;
    of a longer backlog (a gateway down for months), the newest `limit`."""
    found: list[Period] = []
    for period in periods_from(kind, datetime.fromtimestamp(since, zone).date()):
        if period.run_at(zone, at) > now:
            break
        if period.end(zone) > since:
            found.append(period)
    return found[-limit:]
