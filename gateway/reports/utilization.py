"""The utilisation report: how rooms are used against business hours, bookings and size.

Figures (columns, in order): occupied_hours, business_hours, occupied_business_hours,
utilization (= occupied_business_hours / business_hours, 0..1), booked_hours,
booked_used_hours, booked_vs_used (= booked_used_hours / booked_hours, 0..1),
bookings, no_shows, peak_people, capacity, right_sizing. Method: rules/reporting/
utilization.py; hours add up over the rooms of a group, ratios are taken of the
sums. A group's capacity is its rooms' seats, its peak_people the sum of each
room's own peak (the seats its rooms needed at their busiest), and its
right_sizing says how many of its rooms are over- or undersized.
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from gateway.config import ReportsSection
from gateway.reports.grouping import Buckets, assemble, ratio, whole
from gateway.reports.rooms import ReportRoom
from gateway.reports.table import Figure, Report, ReportWindow
from gateway.storage.report_queries import ReportSource
from rules.reporting.occupancy import OCCUPIED, spans_in_state
from rules.reporting.utilization import Booked, UseSums, room_use

NAME = "utilization"
COLUMNS = (
    "occupied_hours",
    "business_hours",
    "occupied_business_hours",
    "utilization",
    "booked_hours",
    "booked_used_hours",
    "booked_vs_used",
    "bookings",
    "no_shows",
    "peak_people",
    "capacity",
    "right_sizing",
)
# No booking is longer (bookings.max_duration's bound): older ones cannot reach the window.
LONGEST_BOOKING = 7 * 86_400.0
HOURS = 3_600.0


def build_utilization(
    source: ReportSource, window: ReportWindow, rooms: Sequence[ReportRoom], settings: ReportsSection
) -> Report:
    """`rooms`: the rooms the caller may see (gateway.reports.rooms.selected applies the
    window's filters to them first)."""
    zone = ZoneInfo(window.timezone)
    buckets = Buckets.of(window)
    start, end = buckets.edges[0], buckets.edges[-1]
    hold = settings.reading_hold
    business = settings.business_hours.window().spans(start, end, zone)
    ids = [room.id for room in rooms]
    sums: dict[str, list[UseSums]] = {}
    with source.read() as rows:
        occupancy = rows.occupancy(ids, start, end)
        bookings = rows.bookings(ids, start, end, LONGEST_BOOKING)
        for room in rooms:
            o = occupancy[room.id]
            sums[room.id] = room_use(
                spans_in_state(OCCUPIED, o.initial, o.changes, start, end),
                business,
                [Booked(b.start, b.end, b.status == "released") for b in bookings.get(room.id, [])],
                rows.series(room.id, "people", start - hold, end),
                buckets.edges,
                hold,
            )
    oversized = settings.oversized_below

    def figures(members: Sequence[tuple[ReportRoom, UseSums]], single: bool) -> dict[str, Figure]:
        return _figures(members, single, oversized)

    meta = {
        "business_hours": settings.business_hours.window().describe(),
        "oversized_below": oversized,
        "reading_hold_s": hold,
    }
    return assemble(NAME, window, COLUMNS, rooms, buckets, sums, figures, _over_time, meta)


def _over_time(sums: Sequence[UseSums]) -> UseSums:
    peaks = [s.peak_people for s in sums if s.peak_people is not None]
    return UseSums(
        occupied=sum(s.occupied for s in sums),
        business=sum(s.business for s in sums),
        occupied_business=sum(s.occupied_business for s in sums),
        booked=sum(s.booked for s in sums),
        booked_used=sum(s.booked_used for s in sums),
        bookings=sum(s.bookings for s in sums),
        no_shows=sum(s.no_shows for s in sums),
        peak_people=max(peaks) if peaks else None,
    )


def hint(room: ReportRoom, sums: UseSums, oversized_below: float) -> str | None:
    """A room's right-sizing hint: undersized when more people came than it seats,
    oversized when its peak stayed at or below `oversized_below` of its seats while it
    was used; None without a count, a capacity or any use."""
    peak = sums.peak_people
    if peak is None or room.capacity <= 0 or sums.occupied <= 0:
        return None
    people = whole(peak)
    if peak > room.capacity:
        return f"undersized: peak {people} people, capacity {room.capacity}"
    if peak <= oversized_below * room.capacity:
        return f"oversized: peak {people} people, capacity {room.capacity}"
    return None


def _figures(
    members: Sequence[tuple[ReportRoom, UseSums]], single: bool, oversized: float
) -> dict[str, Figure]:
    occupied = sum(s.occupied for _, s in members)
    business = sum(s.business for _, s in members)
    occupied_business = sum(s.occupied_business for _, s in members)
    booked = sum(s.booked for _, s in members)
    booked_used = sum(s.booked_used for _, s in members)
    peaks = [s.peak_people for _, s in members if s.peak_people is not None]
    hints = [hint(room, s, oversized) for room, s in members]
    if single:
        right_sizing = hints[0]
    else:
        over = sum(1 for h in hints if h is not None and h.startswith("oversized"))
        under = sum(1 for h in hints if h is not None and h.startswith("undersized"))
        parts = [
            f"{count} of {len(members)} rooms {what}"
            for count, what in ((over, "oversized"), (under, "undersized"))
            if count
        ]
        right_sizing = "; ".join(parts) or None
    return {
        "occupied_hours": round(occupied / HOURS, 4),
        "business_hours": round(business / HOURS, 4),
        "occupied_business_hours": round(occupied_business / HOURS, 4),
        "utilization": ratio(occupied_business, business),
        "booked_hours": round(booked / HOURS, 4),
        "booked_used_hours": round(booked_used / HOURS, 4),
        "booked_vs_used": ratio(booked_used, booked),
        "bookings": sum(s.bookings for _, s in members),
        "no_shows": sum(s.no_shows for _, s in members),
        "peak_people": whole(sum(peaks)) if peaks else None,
        "capacity": sum(room.capacity for room, _ in members),
        "right_sizing": right_sizing,
    }
