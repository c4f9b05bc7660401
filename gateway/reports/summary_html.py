"""A one-page HTML summary of a building's reports for a period: each report's totals,
a bar chart per bucket of its headline figures (inline SVG), and the lists its meta
carries (rooms with repeated alerts, savings by rule, ...).

Self-contained: no script, no stylesheet or font from elsewhere, so it opens offline,
from a mail attachment or a file share, and prints on one or two pages. Every text
that comes from data is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from gateway.reports.site_time import local_midnight
from gateway.reports.table import Figure, Report

# The figures charted per report (those it has; else its first numeric column).
HEADLINES: Mapping[str, tuple[str, ...]] = {
    "utilization": ("utilization", "booked_vs_used"),
    "energy": ("kwh", "saved_kwh"),
    "comfort": ("temperature_in_band_pct", "co2_in_band_pct"),
    "service": ("confirm_p95_ms", "alerts"),
}
# Headings of the lists reports carry in their meta (others: the key's own name).
META_TITLES: Mapping[str, str] = {
    "by_device_kind": "Commands by device kind",
    "repeated": "Rooms with repeated alerts",
    "savings_by_rule": "Savings by rule",
}
CHART_WIDTH, CHART_HEIGHT, AXIS = 640, 150, 28
# Lists in a report's meta longer than this are cut (the CSV files have everything).
MAX_LIST_ROWS = 10
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:720px;color:#222}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.15em;margin:1.6em 0 .4em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em}.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
th{font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg text{font:10px system-ui,sans-serif;fill:#555}.bar{fill:#3a7bd5}.files li{margin:0}
@media print{body{margin:0}}
"""


def render_summary(
    building: str,
    period_label: str,
    start: float,
    end: float,
    timezone: str,
    reports: Sequence[Report],
    files: Sequence[str],
    created_at: float,
) -> str:
    """The page; `reports` grouped by building (one row per bucket), `files` the CSVs beside it."""
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start, zone)
    last = datetime.fromtimestamp(end, zone)
    made = datetime.fromtimestamp(created_at, zone)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(building)} {escape(period_label)} - officegw reports</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Building {escape(building)}: reports for {escape(period_label)}</h1>",
        f'<p class="sub">{first:%a %d %b %Y %H:%M} to {last:%a %d %b %Y %H:%M} ({escape(timezone)}); '
        f"made {made:%d %b %Y %H:%M} by officegw</p>",
    ]
    days = _days(start, end, zone)
    for report in reports:
        parts.append(_report_section(report, days))
    if files:
        parts.append("<h2>Files</h2><ul class=files>")
        parts += [f'<li><a href="{escape(name)}">{escape(name)}</a></li>' for name in files]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _report_section(report: Report, days: Sequence[datetime]) -> str:
    parts = [f"<h2>{escape(report.name.capitalize())}</h2>", "<table>"]
    parts += [
        f"<tr><th>{escape(_label(name))}</th><td class=n>{escape(_text(report.totals.get(name)))}</td></tr>"
        for name in report.columns
    ]
    parts.append("</table>")
    for figure in _headlines(report):
        # Per day of the period; a day without a row (or a value) gets no bar.
        values: dict[float, float] = {}
        for row in report.rows:
            value = row.figures.get(figure)
            if (
                row.bucket_start is not None
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                values[row.bucket_start.timestamp()] = float(value)
        if values:
            parts.append(f"<h3>{escape(_label(figure))}</h3>")
            points = [(f"{day:%a %d}", values.get(day.timestamp())) for day in days]
            parts.append(bar_chart(points, _label(figure)))
    for key, value in report.meta.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            parts.append(_list_table(META_TITLES.get(key, _label(key)), value))
    return "\n".join(parts)


def _days(start: float, end: float, zone: ZoneInfo) -> list[datetime]:
    """The local midnights from `start` to before `end` (the summary's reports are by day)."""
    day = datetime.fromtimestamp(start, zone).date()
    days = []
    while (midnight := local_midnight(day, zone)).timestamp() < end:
        days.append(midnight)
        day += timedelta(days=1)
    return days


def _headlines(report: Report) -> list[str]:
    wanted = [name for name in HEADLINES.get(report.name, ()) if name in report.columns]
    if wanted:
        return wanted
    numeric = [
        name
        for name in report.columns
        if any(isinstance(row.figures.get(name), int | float) for row in report.rows)
    ]
    return numeric[:1]


def _list_table(title: str, items: list[dict[str, object]]) -> str:
    columns = list(dict.fromkeys(name for item in items for name in item))
    parts = [f"<h3>{escape(title)}</h3>", "<table><tr>"]
    parts += [f"<th>{escape(_label(c))}</th>" for c in columns]
    parts.append("</tr>")
    for item in items[:MAX_LIST_ROWS]:
        cells = "".join(f"<td>{escape(_text(item.get(c)))}</td>" for c in columns)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    if len(items) > MAX_LIST_ROWS:
        parts.append(f"<p class=sub>and {len(items) - MAX_LIST_ROWS} more</p>")
    return "\n".join(parts)


def bar_chart(points: Sequence[tuple[str, float | None]], title: str) -> str:
    """An inline SVG bar chart of (label, value >= 0 or None: no bar) points, labelled
    every few bars."""
    top = max((value for _, value in points if value is not None), default=0.0)
    scale = top if top > 0 else 1.0
    n = len(points)
    slot = (CHART_WIDTH - AXIS) / max(n, 1)
    every = max(1, round(n / 14))
    plot = CHART_HEIGHT - 18
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="10">{escape(_text(top))}</text>',
        f'<text x="0" y="{plot}">0</text>',
        f'<line x1="{AXIS}" y1="{plot}" x2="{CHART_WIDTH}" y2="{plot}" stroke="#999"/>',
    ]
    for i, (label, value) in enumerate(points):
        x = AXIS + i * slot
        if value is not None:
            height = max(0.0, value) / scale * (plot - 4)
            tip = f"{escape(label)}: {escape(_text(value))}"
            shapes.append(
                f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{plot - height:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{height:.1f}"><title>{tip}</title></rect>'
            )
        if i % every == 0:
            y = CHART_HEIGHT - 4
            shapes.append(f'<text x="{x + slot / 2:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>')
    shapes.append("</svg>")
    return "".join(shapes)


def _label(name: str) -> str:
    return name.replace("_", " ")


def _text(value: Figure | object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    return str(value)
