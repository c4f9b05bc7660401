"""The HTML summary: one self-contained page (nothing fetched from elsewhere), every
report's totals and a chart per headline figure, data escaped."""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from gateway.reports.summary_html import render_summary
from gateway.reports.table import Bucket, GroupBy, Report, ReportRow, ReportWindow

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = ReportWindow(
    datetime(2026, 11, 23, tzinfo=BERLIN),
    datetime(2026, 11, 30, tzinfo=BERLIN),
    "Europe/Berlin",
    GroupBy.BUILDING,
    Bucket.DAY,
)


def day(n: int) -> datetime:
    return datetime(2026, 11, 23 + n, tzinfo=BERLIN)


SERVICE = Report(
    "service",
    WINDOW,
    ("commands", "confirm_p95_ms", "alerts"),
    [
        ReportRow({"building": "hq"}, day(0), {"commands": 4, "confirm_p95_ms": 250.0, "alerts": 2}),
        ReportRow({"building": "hq"}, day(1), {"commands": 1, "confirm_p95_ms": None, "alerts": 0}),
    ],
    {"commands": 5, "confirm_p95_ms": 250.0, "alerts": 2},
    {"repeated": [{"room": "<script>alert(1)</script>", "rule": "co2", "alerts": 2}]},
)
# A report the page knows nothing about: its first numeric column is charted.
OTHER = Report(
    "occupancy_minutes",
    WINDOW,
    ("label", "minutes"),
    [ReportRow({"building": "hq"}, day(0), {"label": "x", "minutes": 30})],
    {"label": None, "minutes": 30},
)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def page() -> str:
    return render_summary(
        "hq",
        "2026-W48",
        WINDOW.start.timestamp(),
        WINDOW.end.timestamp(),
        "Europe/Berlin",
        [SERVICE, OTHER],
        ["service-building.csv"],
        WINDOW.end.timestamp() + 6 * 3600,
    )


def test_the_page_needs_nothing_from_elsewhere() -> None:
    html = page()
    parsed = Elements()
    parsed.feed(html)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object"}
    # Links go to the files beside it; the only URL is the SVG namespace.
    assert [a["href"] for tag, a in parsed.tags if tag == "a"] == ["service-building.csv"]
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}


def test_charts_per_headline_figure_with_a_bar_per_day_that_has_a_value() -> None:
    html = page()
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    # service: confirm p95 (one day has a value) and alerts (two days); other: minutes.
    assert [chart.count("<rect") for chart in charts] == [1, 2, 1]
    assert 'aria-label="confirm p95 ms"' in charts[0]
    assert "Mon 23: 250" in charts[0]
    # Every day of the week on the axis, with a bar or without.
    assert re.findall(r">((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d)</text>", charts[1]) == [
        "Mon 23", "Tue 24", "Wed 25", "Thu 26", "Fri 27", "Sat 28", "Sun 29",
    ]  # fmt: skip
    assert "Rooms with repeated alerts" in html


def test_totals_and_meta_lists_are_shown_and_data_is_escaped() -> None:
    html = page()
    assert "<th>commands</th><td class=n>5</td>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "Mon 23 Nov 2026 00:00 to Mon 30 Nov 2026 00:00 (Europe/Berlin)" in html
