"""Every report by name, and the bounds an answer is held to.

`build_report(name, source, window, rooms, settings)` is the one way in for the API,
the gateway and scheduled reports: it applies the window's filters to the rooms
the caller may see, refuses windows that are too long or would give too many rows,
and runs the report's builder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from gateway.config import ReportsSection
from gateway.reports.comfort import build_comfort
from gateway.reports.energy import build_energy
from gateway.reports.grouping import Buckets, group_count
from gateway.reports.rooms import ReportRoom, selected
from gateway.reports.table import Report, ReportWindow
from gateway.reports.utilization import build_utilization
from gateway.storage.report_queries import ReportSource

Builder = Callable[[ReportSource, ReportWindow, Sequence[ReportRoom], ReportsSection], Report]

BUILDERS: Mapping[str, Builder] = {
    "utilization": build_utilization,
    "energy": build_energy,
    "comfort": build_comfort,
}


class ReportRefused(ValueError):
    """A report that would not be answered (the window is too long, the table too large)."""


def build_report(
    name: str,
    source: ReportSource,
    window: ReportWindow,
    rooms: Sequence[ReportRoom],
    settings: ReportsSection,
) -> Report:
    """The report `name` over `window` for `rooms` (those the caller may see).
    Raises KeyError for an unknown name, ReportRefused past the bounds."""
    builder = BUILDERS[name]
    days = (window.end - window.start).total_seconds() / 86_400
    if days <= 0:
        raise ReportRefused("end must be after start")
    if days > settings.max_days:
        raise ReportRefused(
            f"the window is {days:g} days long; at most {settings.max_days:g} (reports.max_days)"
        )
    kept = selected(rooms, window)
    rows = group_count(kept, window.group_by) * len(Buckets.of(window))
    if rows > settings.max_rows:
        raise ReportRefused(
            f"the report would have {rows} rows; at most {settings.max_rows} (reports.max_rows): "
            "ask for a shorter window, a coarser bucket or grouping, or filter"
        )
    return builder(source, window, kept, settings)
