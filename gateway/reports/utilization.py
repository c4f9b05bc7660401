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
    total = UseSums()
    for s in sums:
        total.occupied += s.occupied
        total.business += s.business
        total.occupied_business += s.occupied_business
        total.booked += s.booked
        total.booked_used += s.booked_used
        total.bookings += s.bookings
        total.no_shows += s.no_shows
        if s.peak_people is not None and (total.peak_people is None or s.peak_people > total.peak_people):
            total.peak_people = s.peak_people
    return total


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
    if single:
        room, s = members[0]
        peak, capacity, right_sizing = s.peak_people, room.capacity, hint(room, s, oversized)
    else:
        # Rooms add up; a group's peak is the sum of its rooms' own peaks.
        s = UseSums()
        peak, capacity, over, under = None, 0, 0, 0
        for room, m in members:
            s.occupied += m.occupied
            s.business += m.business
            s.occupied_business += m.occupied_business
            s.booked += m.booked
            s.booked_used += m.booked_used
            s.bookings += m.bookings
            s.no_shows += m.no_shows
            capacity += room.capacity
            if m.peak_people is not None:
                peak = (peak or 0.0) + m.peak_people
            found = hint(room, m, oversized)
            if found is not None:
                if found.startswith("oversized"):
                    over += 1
                else:
                    under += 1
        parts = [
            f"{count} of {len(members)} rooms {what}"
            for count, what in ((over, "oversized"), (under, "undersized"))
            if count
        ]
        right_sizing = "; ".join(parts) or None
    return {
        "occupied_hours": round(s.occupied / HOURS, 4),
        "business_hours": round(s.business / HOURS, 4),
        "occupied_business_hours": round(s.occupied_business / HOURS, 4),
        "utilization": ratio(s.occupied_business, s.business),
        "booked_hours": round(s.booked / HOURS, 4),
        "booked_used_hours": round(s.booked_used / HOURS, 4),
        "booked_vs_used": ratio(s.booked_used, s.booked),
        "bookings": s.bookings,
        "no_shows": s.no_shows,
        "peak_people": whole(peak) if peak is not None else None,
        "capacity": capacity,
        "right_sizing": right_sizing,
    }
