"""Report windows and buckets in the site's time zone: hours, days and weeks as people
there live them (a day is 23 or 25 hours long when the clocks change).

Buckets are keyed by their start as epoch seconds, never by local wall-clock time:
the hour repeated when clocks go back is two buckets, which two local datetimes that
differ only in `fold` would not tell apart (they compare equal).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time
from typing import cast
from zoneinfo import ZoneInfo

from gateway.reports.table import Bucket
from rules.site_time import Unit, day_bounds, unit_start


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def start_of_day(ts: float, zone: ZoneInfo) -> float:
    """The start of the site's day that holds `ts`."""
    return day_bounds(ts, zone)[0]


def bucket_of(ts: float, bucket: Bucket, zone: ZoneInfo) -> float | None:
    """The start (epoch seconds) of the bucket holding `ts` (rules.site_time: hours,
    days and ISO weeks of the site); None for Bucket.NONE."""
    if bucket is Bucket.NONE:
        return None
    return unit_start(ts, cast(Unit, bucket.value), zone)


def bucket_label(start: float | None, zone: ZoneInfo) -> datetime | None:
    """A bucket's start as the report shows it: local time with its UTC offset."""
    return None if start is None else datetime.fromtimestamp(start, zone)


# How long each bucket is, give or take a clock change.
NOMINAL: dict[Bucket, float] = {Bucket.HOUR: 3600.0, Bucket.DAY: 86_400.0, Bucket.WEEK: 7 * 86_400.0}


class Buckets:
    """The buckets of a window, found by bisection: a report puts hundreds of thousands
    of records into buckets, and converting each one's time to local time costs many
    times what looking it up among the window's bucket starts does."""

    def __init__(self, start: float, end: float, bucket: Bucket, zone: ZoneInfo) -> None:
        self._none = bucket is Bucket.NONE
        self._starts: list[float] = []
        moment = bucket_of(start, bucket, zone)
        while moment is not None and moment < end:
            self._starts.append(moment)
            # Probing in half buckets finds the next one however the clocks change
            # in between: a 23- or 25-hour day, or Lord Howe's 30- and 90-minute hours.
            probe = moment + NOMINAL[bucket] / 2
            while (following := bucket_of(probe, bucket, zone)) == moment:
                probe += NOMINAL[bucket] / 2
            moment = following

    def of(self, ts: float) -> float | None:
        """The start of the bucket holding `ts`, a time in the window; None for Bucket.NONE."""
        if self._none:
            return None
        return self._starts[max(0, bisect_right(self._starts, ts) - 1)]
