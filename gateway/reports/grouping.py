"""From per-room, per-bucket sums to the report table: groups, bucket labels, totals.

Each report computes sums per room and bucket (rules.reporting) and says how sums
of several rooms become figures (`Figures`) and how one room's sums over several
buckets add up (`OverTime`); this module does the rest, the same way for every
report:

- a row per group (GROUP_FIELDS of `group_by`) and bucket, every bucket of every
  group, empty ones too (a room nobody used is a finding);
- the bucket's label is the start of its hour, day or week in the site's zone
  (the first bucket may start before the window: its figures count the window only);
- the totals are the figures of every room, each over the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gateway.reports.rooms import ReportRoom
from gateway.reports.table import GROUP_FIELDS, Bucket, Figure, GroupBy, Report, ReportRow, ReportWindow
from rules.site_time import Unit, bucket_edges, unit_start

S = TypeVar("S")
# Figures of a group of rooms (their sums in one bucket, or each over the window);
# the flag says the group is one room (group_by=room).
Figures = Callable[[Sequence[tuple[ReportRoom, S]], bool], dict[str, Figure]]
OverTime = Callable[[Sequence[S]], S]
UNITS: dict[Bucket, Unit] = {Bucket.HOUR: "hour", Bucket.DAY: "day", Bucket.WEEK: "week", Bucket.NONE: "none"}


@dataclass(frozen=True, slots=True)
class Buckets:
    """The window cut into buckets: edges [start, ..., end] (epoch seconds) and each
    bucket's label."""

    edges: list[float]
    labels: list[datetime | None]

    @classmethod
    def of(cls, window: ReportWindow) -> Buckets:
        zone = ZoneInfo(window.timezone)
        unit = UNITS[window.bucket]
        edges = bucket_edges(window.start.timestamp(), window.end.timestamp(), unit, zone)
        if unit == "none":
            return cls(edges, [None])
        labels: list[datetime | None] = [
            datetime.fromtimestamp(unit_start(edge, unit, zone), zone) for edge in edges[:-1]
        ]
        return cls(edges, labels)

    def __len__(self) -> int:
        return len(self.labels)


def group_count(rooms: Sequence[ReportRoom], group_by: GroupBy) -> int:
    return len({tuple(room.group(group_by).values()) for room in rooms})


def assemble(
    name: str,
    window: ReportWindow,
    columns: Sequence[str],
    rooms: Sequence[ReportRoom],
    buckets: Buckets,
    sums: Mapping[str, Sequence[S]],
    figures: Figures[S],
    over_time: OverTime[S],
    meta: Mapping[str, Any],
) -> Report:
    groups: dict[tuple[str, ...], list[ReportRoom]] = {}
    for room in rooms:
        groups.setdefault(tuple(room.group(window.group_by).values()), []).append(room)
    keys = GROUP_FIELDS[window.group_by]
    single = window.group_by == GroupBy.ROOM
    rows = []
    for key in sorted(groups):
        members = groups[key]
        for k, label in enumerate(buckets.labels):
            rows.append(
                ReportRow(
                    dict(zip(keys, key, strict=True)),
                    label,
                    figures([(room, sums[room.id][k]) for room in members], single),
                )
            )
    totals = figures([(room, over_time(sums[room.id])) for room in rooms], False)
    return Report(name, window, list(columns), rows, totals, dict(meta))


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def ratio(part: float, whole: float, digits: int = 4, scale: float = 1.0) -> float | None:
    """part / whole (times `scale`), None when there is no whole."""
    return round(scale * part / whole, digits) if whole > 0 else None


def whole(value: float) -> float | int:
    """A count as an int when it is one (people counts are stored as floats)."""
    return int(value) if float(value).is_integer() else round(value, 2)
