"""Scheduled reports on a manual clock, a real SQLite store and a real directory: the
weekly run happens once, at 06:00 site time on the Monday after the week, and a
restart neither repeats a week nor skips one whose run time passed while it was down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.clock import ManualClock
from gateway.config import Settings, settings_from_dict
from gateway.reports.archive import ArchiveEntry, ReportArchive
from gateway.reports.service import build_service
from gateway.reports.table import Report, ReportRow, ReportWindow
from gateway.runtime.report_scheduler import ReportScheduler
from gateway.storage.records import StoredEvent
from gateway.storage.sqlite_store import Store

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


def windows_built(store: Store, window: ReportWindow, settings: Settings) -> Report:
    """A trivial report: one row saying which window and grouping it was asked for."""
    row = ReportRow({"building": window.building or ""}, None, {"group_by": window.group_by.value})
    return Report("windows", window, ("group_by",), [row], {"group_by": None})


SETTINGS = settings_from_dict(
    {
        "site": {"timezone": "Europe/Berlin", "rooms": [{"id": "orion", "building": "hq", "floor": 2}]},
        "reports": {"schedule": {"periods": ["weekly"], "at": "06:00", "group_by": ["building", "room"]}},
    }
)


@contextmanager
def scheduler(tmp_path: Path, clock: ManualClock, announced: list[ArchiveEntry]) -> Iterator[ReportScheduler]:
    """A scheduler as a gateway start makes it (no thread: the test runs each pass)."""
    store = Store(tmp_path / "officegw.db")
    try:
        yield ReportScheduler(
            SETTINGS,
            store,
            ReportArchive(tmp_path / "reports"),
            [
                ("service", lambda window: build_service(store, window, SETTINGS)),
                ("windows", lambda window: windows_built(store, window, SETTINGS)),
            ],
            clock=clock,
            buildings=lambda: ["hq"],
            announce=announced.append,
        )
    finally:
        store.close()


def labels(entries: list[ArchiveEntry]) -> list[str]:
    return [e.label for e in entries]


def test_the_weekly_run_happens_once_at_six_local_also_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock(at("2026-11-25T15:00"))  # Wednesday of week 48
    announced: list[ArchiveEntry] = []
    with scheduler(tmp_path, clock, announced) as first:
        assert first.run_due() == []
        clock.advance(at("2026-11-30T05:59:59") - clock.now())
        assert first.run_due() == []
    # Restarted just before the run time: still nothing, and the week is still due.
    with scheduler(tmp_path, clock, announced) as second:
        clock.advance(1)
        assert labels(second.run_due()) == ["2026-W48"]
        assert second.run_due() == []
    with scheduler(tmp_path, clock, announced) as third:
        clock.advance(5)
        assert third.run_due() == []
        # Down from Sunday to Tuesday: the run time of week 49 passed meanwhile.
        clock.advance(at("2026-12-08T10:00") - clock.now())
    with scheduler(tmp_path, clock, announced) as fourth:
        assert labels(fourth.run_due()) == ["2026-W49"]
        assert fourth.run_due() == []
    assert labels(announced) == ["2026-W48", "2026-W49"]
    (week,) = [e for e in ReportArchive(tmp_path / "reports").entries() if e.label == "2026-W48"]
    assert (week.start, week.end, week.created_at) == (
        at("2026-11-23T00:00"),
        at("2026-11-30T00:00"),
        at("2026-11-30T06:00"),
    )


def test_every_builder_and_grouping_gets_a_file_and_the_summary_has_every_report(tmp_path: Path) -> None:
    clock = ManualClock(at("2026-11-25T15:00"))
    announced: list[ArchiveEntry] = []
    with scheduler(tmp_path, clock, announced) as run:
        run.run_due()
        store = Store(tmp_path / "officegw.db")
        raised = at("2026-11-26T10:00")
        store.commit([], [(1, StoredEvent("alert", "orion", "hq", "2", raised, {"rule": "co2"}))], [], raised)
        store.close()
        clock.advance(at("2026-11-30T06:00") - clock.now())
        (entry,) = run.run_due()
    assert [f.name for f in entry.files] == [
        "service-building.csv",
        "service-room.csv",
        "windows-building.csv",
        "windows-room.csv",
        "summary.html",
    ]
    folder = tmp_path / "reports" / "hq" / "2026-W48"
    assert (folder / "windows-room.csv").read_text().splitlines()[1] == "hq,,,,room"
    service = (folder / "service-room.csv").read_text().splitlines()
    assert service[1].startswith("hq,2,orion,2026-11-26T00:00:00+01:00,0,0,,,1,0,")
    summary = (folder / "summary.html").read_text()
    assert "<h2>Service</h2>" in summary and "<h2>Windows</h2>" in summary
    assert "Building hq: reports for 2026-W48" in summary


def test_a_failing_report_is_retried_later_and_stops_no_other_building(tmp_path: Path) -> None:
    clock = ManualClock(at("2026-11-25T15:00"))
    announced: list[ArchiveEntry] = []
    calls: list[Any] = []

    def broken_for_annex(store: Store, window: ReportWindow, settings: Settings) -> Report:
        calls.append(window.building)
        if window.building == "annex":
            raise RuntimeError("disk on fire")
        return windows_built(store, window, settings)

    store = Store(tmp_path / "officegw.db")
    run = ReportScheduler(
        SETTINGS,
        store,
        ReportArchive(tmp_path / "reports"),
        [("windows", lambda window: broken_for_annex(store, window, SETTINGS))],
        clock=clock,
        buildings=lambda: ["annex", "hq"],
        announce=announced.append,
    )
    run.run_due()
    clock.advance(at("2026-11-30T06:00") - clock.now())
    assert [e.id for e in run.run_due()] == ["hq/2026-W48"]
    tried = len(calls)
    # Not again at once (it would fail every second), and hq is not written twice.
    assert run.run_due() == [] and len(calls) == tried
    store.close()
