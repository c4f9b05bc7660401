"""The comfort report: of the time rooms were occupied, how much inside the comfort bands.

Figures (columns, in order): occupied_minutes, temperature_minutes (occupied minutes
with a temperature known), temperature_in_band_pct (of those, the share inside
reports.comfort.temperature_c, 0..100), co2_minutes, co2_in_band_pct (at or below
reports.comfort.co2_ppm.max); a share is null without any minute known. Method:
rules/reporting/comfort.py; minutes add up over rooms, shares are taken of the sums.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config import ReportsSection
from gateway.reports.grouping import Buckets, assemble, ratio
from gateway.reports.rooms import ReportRoom
from gateway.reports.table import Figure, Report, ReportWindow
from gateway.storage.report_queries import ReportSource
from rules.reporting.comfort import ComfortSums, room_comfort
from rules.reporting.occupancy import OCCUPIED, spans_in_state

NAME = "comfort"
COLUMNS = (
    "occupied_minutes",
    "temperature_minutes",
    "temperature_in_band_pct",
    "co2_minutes",
    "co2_in_band_pct",
)
MINUTES = 60.0


def build_comfort(
    source: ReportSource, window: ReportWindow, rooms: Sequence[ReportRoom], settings: ReportsSection
) -> Report:
    """`rooms`: the rooms the caller may see (gateway.reports.rooms.selected applies the
    window's filters to them first)."""
    buckets = Buckets.of(window)
    start, end = buckets.edges[0], buckets.edges[-1]
    hold = settings.reading_hold
    temperature_band, co2_band = settings.comfort.bands()
    ids = [room.id for room in rooms]
    sums: dict[str, list[ComfortSums]] = {}
    with source.read() as rows:
        occupancy = rows.occupancy(ids, start, end)
        for room in rooms:
            o = occupancy[room.id]
            occupied = spans_in_state(OCCUPIED, o.initial, o.changes, start, end)
            # Only the readings of occupied time count: only those are read.
            sums[room.id] = room_comfort(
                occupied,
                rows.series_during(room.id, "temperature", occupied, hold),
                rows.series_during(room.id, "co2", occupied, hold),
                buckets.edges,
                hold,
                temperature_band,
                co2_band,
            )
    meta = {
        "bands": {
            "temperature_c": {"min": temperature_band.low, "max": temperature_band.high},
            "co2_ppm": {"max": co2_band.high},
        },
        "reading_hold_s": hold,
    }
    return assemble(NAME, window, COLUMNS, rooms, buckets, sums, _figures, _over_time, meta)


def _over_time(sums: Sequence[ComfortSums]) -> ComfortSums:
    total = ComfortSums()
    for s in sums:
        total.occupied += s.occupied
        total.temperature_known += s.temperature_known
        total.temperature_inside += s.temperature_inside
        total.co2_known += s.co2_known
        total.co2_inside += s.co2_inside
    return total


def _figures(members: Sequence[tuple[ReportRoom, ComfortSums]], single: bool) -> dict[str, Figure]:
    s = members[0][1] if single else _over_time([sums for _, sums in members])
    return {
        "occupied_minutes": round(s.occupied / MINUTES, 2),
        "temperature_minutes": round(s.temperature_known / MINUTES, 2),
        "temperature_in_band_pct": ratio(s.temperature_inside, s.temperature_known, 2, 100.0),
        "co2_minutes": round(s.co2_known / MINUTES, 2),
        "co2_in_band_pct": ratio(s.co2_inside, s.co2_known, 2, 100.0),
    }
