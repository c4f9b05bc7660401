"""The site's calendar: local days, hours and weeks, and daily opening times, as UTC instants.

Everything a report or the room model counts "per day" counts per day of the
site's time zone, and a local day is not always 24 hours: 23 on the day clocks go
forward, 25 when they go back. So days, hours and weekly windows are found by
asking the zone for the UTC instant of each local wall time, never by adding
86,400 s. A wall time the zone skips that day (02:30 on a spring-forward day in
Europe/Berlin) is read as PEP 495 reads it: with the offset before the jump, i.e.
the instant the wall clock would have shown it had it not jumped; a local midnight
that does not exist (zones that jump at midnight) is then the instant of the jump,
the first moment of the day. A wall time that happens twice (the hour clocks go
back) is its first occurrence.

Pure functions of their arguments; times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

Unit = Literal["hour", "day", "week", "none"]


def local_date(ts: float, zone: tzinfo) -> date:
    return datetime.fromtimestamp(ts, zone).date()


def instant(day: date, wall: time, zone: tzinfo) -> float:
    """The epoch seconds of `wall` on `day` in `zone` (see the module's docstring for
    wall times that happen twice or not at all)."""
    return datetime.combine(day, wall, tzinfo=zone).timestamp()


def day_start(day: date, zone: tzinfo) -> float:
    return instant(day, time(0), zone)


def day_bounds(ts: float, zone: tzinfo) -> tuple[float, float]:
    """[start, end) of the local day `ts` falls in."""
    day = local_date(ts, zone)
    return day_start(day, zone), day_start(day + timedelta(days=1), zone)


def _hour_starts(first: date, last: date, zone: tzinfo) -> list[float]:
    """Every instant in the local days first..last where a local hour begins: both
    02:00s of a night clocks go back, none for the hour a spring-forward skips."""
    found: set[float] = set()
    day = first
    while day <= last:
        for hour in range(24):
            for fold in (0, 1):
                wall = datetime(day.year, day.month, day.day, hour, tzinfo=zone, fold=fold)
                ts = wall.timestamp()
                back = datetime.fromtimestamp(ts, zone)
                if back.date() == day and back.hour == hour and back.minute == 0 and back.second == 0:
                    found.add(ts)
        day += timedelta(days=1)
    return sorted(found)


def unit_start(ts: float, unit: Unit, zone: tzinfo) -> float:
    """The start of the local hour, day or week (Monday) that `ts` falls in."""
    local = datetime.fromtimestamp(ts, zone)
    if unit == "hour":
        # `replace` keeps the fold, so the repeated hour's start is its own.
        return local.replace(minute=0, second=0, microsecond=0).timestamp()
    if unit == "day":
        return day_start(local.date(), zone)
    if unit == "week":
        return day_start(local.date() - timedelta(days=local.weekday()), zone)
    raise ValueError(f"no start for unit {unit!r}")


def bucket_edges(start: float, end: float, unit: Unit, zone: tzinfo) -> list[float]:
    """[start, b1, ..., end]: the window cut where each local hour, day or week begins
    (nothing in between for "none")."""
    if end <= start:
        raise ValueError("end must be after start")
    inner: list[float] = []
    if unit != "none":
        first, last = local_date(start, zone), local_date(end, zone)
        if unit == "hour":
            starts = _hour_starts(first, last, zone)
        else:
            if unit == "week":
                first -= timedelta(days=first.weekday())
            step = timedelta(days=7 if unit == "week" else 1)
            starts = []
            day = first
            while day <= last:
                starts.append(day_start(day, zone))
                day += step
        inner = [ts for ts in starts if start < ts < end]
    return [start, *inner, end]


def daily_spans(
    start: float,
    end: float,
    zone: tzinfo,
    opens: time,
    closes: time,
    weekdays: Collection[int],
) -> list[tuple[float, float]]:
    """The times within [start, end) between `opens` and `closes` local time on the given
    weekdays (Monday = 0), in order. A span that closes at or before it opens runs over
    midnight into the next day; its weekday is the one it opens on."""
    spans: list[tuple[float, float]] = []
    # From the day before: a span over midnight reaches into the window's first day.
    day = local_date(start, zone) - timedelta(days=1)
    last = local_date(end, zone)
    while day <= last:
        if day.weekday() in weekdays:
            s = instant(day, opens, zone)
            e = instant(day + timedelta(days=1) if closes <= opens else day, closes, zone)
            s, e = max(s, start), min(e, end)
            if s < e:
                spans.append((s, e))
        day += timedelta(days=1)
    return spans


def local_iso(ts: float, zone: tzinfo) -> str:
    """ISO 8601 with the zone's UTC offset at that instant."""
    return datetime.fromtimestamp(ts, zone).isoformat()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
