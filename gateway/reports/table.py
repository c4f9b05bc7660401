"""The one shape every report has, whatever it measures, and its CSV form.

A report is a table: one row per group (room, floor, building or room type) and
time bucket (hour, day or week in the site's time zone, or the whole window), each
row holding the group's key fields, the bucket's start and the report's figures,
plus the same figures over all rows. JSON and CSV are two renderings of it, so a
figure can never differ between them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# A figure: a number, a label (a right-sizing hint, a rule id), or unknown.
Figure = float | int | str | None


class GroupBy(StrEnum):
    ROOM = "room"
    FLOOR = "floor"
    BUILDING = "building"
    ROOM_TYPE = "room_type"
    # Only the service report groups by device kind (its command figures; alerts are
    # about rooms, so its alert figures are totals only).
    DEVICE_KIND = "device_kind"


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    # The whole window as one bucket.
    NONE = "none"


# The key fields a row carries for each grouping, in column order.
GROUP_FIELDS: dict[GroupBy, tuple[str, ...]] = {
    GroupBy.ROOM: ("building", "floor", "room"),
    GroupBy.FLOOR: ("building", "floor"),
    GroupBy.BUILDING: ("building",),
    GroupBy.ROOM_TYPE: ("room_type",),
    GroupBy.DEVICE_KIND: ("device_kind",),
}


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """What a report covers: [start, end) in UTC, grouped and bucketed in `timezone`."""

    start: datetime
    end: datetime
    timezone: str
    group_by: GroupBy = GroupBy.ROOM
    bucket: Bucket = Bucket.DAY
    # Filters; None keeps every value.
    building: str | None = None
    floor: str | None = None
    room: str | None = None
    room_type: str | None = None
    # The buildings the asker may see (an API key's scope); None: every building.
    buildings: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ReportRow:
    # The group's key fields (GROUP_FIELDS[group_by]) -> value.
    group: Mapping[str, str]
    # Start of the bucket in the site's time zone (with its UTC offset); None for Bucket.NONE.
    bucket_start: datetime | None
    figures: Mapping[str, Figure]


@dataclass(frozen=True, slots=True)
class Report:
    name: str  # utilization | energy | comfort | service
    window: ReportWindow
    # Figure names in column order (every row and the totals have exactly these).
    columns: Sequence[str]
    rows: Sequence[ReportRow]
    totals: Mapping[str, Figure]
    # Units and settings the figures depend on (currency, tariff, bands, business hours).
    meta: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "report": self.name,
            "timezone": w.timezone,
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "group_by": w.group_by.value,
            "bucket": w.bucket.value,
            "columns": list(self.columns),
            "meta": dict(self.meta),
            "rows": [
                {
                    **row.group,
                    "bucket_start": None if row.bucket_start is None else row.bucket_start.isoformat(),
                    **{name: row.figures.get(name) for name in self.columns},
                }
                for row in self.rows
            ],
            "totals": {name: self.totals.get(name) for name in self.columns},
        }

    def as_csv(self) -> str:
        """One header line, one line per row, then a `total` line; unknown figures are empty."""
        keys = GROUP_FIELDS[self.window.group_by]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*keys, "bucket_start", *self.columns])
        for row in self.rows:
            start = "" if row.bucket_start is None else row.bucket_start.isoformat()
            writer.writerow(
                [
                    *(row.group.get(k, "") for k in keys),
                    start,
                    *(_cell(row.figures.get(c)) for c in self.columns),
                ]
            )
        writer.writerow(["total", *([""] * len(keys)), *(_cell(self.totals.get(c)) for c in self.columns)])
        return out.getvalue()


def _cell(value: Figure) -> str:
    return "" if value is None else str(value)
