"""Scheduled reports: at each period's run time, every building's reports as files.

A thread looks every `interval` seconds (real time) at the gateway's clock (virtual in
tests) and writes what `gateway.reports.schedule.due` says is due and the archive
does not hold yet, then announces it (`announce`: the event log, MQTT, webhooks).
When the schedule was first switched on is kept in the store's snapshot
(`report_schedule`), so a restart neither writes a period twice (the archive has it)
nor skips one whose run time passed while the gateway was down.

The reports come as (name, build) pairs, `build` taking a window (the building, the
period, a grouping and bucket) and giving the `Report`: whatever report the gateway
can build is archived the same way. Each is built for each configured grouping (a
CSV each), and once per building and day for the HTML summary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from datetime import time as time_of_day
from typing import get_args
from zoneinfo import ZoneInfo

from gateway.clock import Clock
from gateway.config import Settings
from gateway.logs import kv
from gateway.reports.archive import SUMMARY, ArchiveEntry, ReportArchive
from gateway.reports.schedule import Period, PeriodKind, due
from gateway.reports.summary_html import render_summary
from gateway.reports.table import Bucket, GroupBy, Report, ReportWindow
from gateway.runtime.periodic import PeriodicThread
from gateway.storage.open_stores import StateStore

log = logging.getLogger("officegw.reports")

# (report name, the report over a window), in the order the summary shows them.
ScheduledReport = tuple[str, Callable[[ReportWindow], Report]]

SINCE_KEY = "report_schedule"
# Of a longer backlog (a gateway down for months), the newest this many periods of each kind.
MAX_CATCH_UP = 12
# A building and period whose reports failed to build are tried again after this long.
RETRY_AFTER = 300.0


class ReportScheduler:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        archive: ReportArchive,
        reports: Sequence[ScheduledReport],
        *,
        clock: Clock,
        buildings: Callable[[], Sequence[str]],
        announce: Callable[[ArchiveEntry], None],
        interval: float = 1.0,
    ) -> None:
        self._settings = settings
        self._schedule = settings.reports.schedule
        self._zone = ZoneInfo(settings.site.timezone)
        self._at = time_of_day.fromisoformat(self._schedule.at)
        self._store = store
        self._archive = archive
        self._reports = tuple(reports)
        self._clock = clock
        self._buildings = buildings
        self._announce = announce
        # (building, period label) -> when (monotonic) building it last failed.
        self._failed: dict[tuple[str, str], float] = {}
        # One pass at a time (the thread's, or a caller's): each period is announced once.
        self._lock = threading.Lock()
        self._loop = PeriodicThread("reports", interval, self._tick)

    @property
    def enabled(self) -> bool:
        return bool(self._schedule.periods)

    def start(self) -> None:
        if self.enabled:
            self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _tick(self) -> None:
        self.run_due()

    def run_due(self) -> list[ArchiveEntry]:
        """Writes and announces every due period's reports the archive lacks; returns them."""
        with self._lock:
            return self._run_due()

    def _run_due(self) -> list[ArchiveEntry]:
        now = self._clock.now()
        since = self._since(now)
        written = []
        for kind in self._schedule.periods:
            for period in due(kind, since[kind], now, self._zone, self._at, MAX_CATCH_UP):
                for building in self._buildings():
                    if self._archive.has(building, period.label) or self._waiting(building, period):
                        continue
                    try:
                        entry = self._write(building, period, now)
                    except FileExistsError:
                        continue  # another gateway sharing the archive wrote it
                    except Exception:
                        # Isolation point: one building's failing report must not stop the others'.
                        self._failed[(building, period.label)] = time.monotonic()
                        log.exception(kv("report archive failed", building=building, period=period.label))
                        continue
                    self._failed.pop((building, period.label), None)
                    log.info(kv("reports archived", building=building, period=period.label))
                    self._announce(entry)
                    written.append(entry)
        return written

    def _waiting(self, building: str, period: Period) -> bool:
        failed = self._failed.get((building, period.label))
        return failed is not None and time.monotonic() - failed < RETRY_AFTER

    def _since(self, now: float) -> dict[PeriodKind, float]:
        """When each period kind was first scheduled (now, for one scheduled from now on)."""
        saved = self._store.snapshot_entry(SINCE_KEY)
        since: dict[PeriodKind, float] = {}
        for kind in get_args(PeriodKind):
            value = saved.get(kind) if isinstance(saved, dict) else None
            if isinstance(value, int | float):
                since[kind] = float(value)
        missing = [kind for kind in self._schedule.periods if kind not in since]
        if missing:
            since |= dict.fromkeys(missing, now)
            self._store.save_snapshot({SINCE_KEY: since}, now)
        return since

    def _write(self, building: str, period: Period, now: float) -> ArchiveEntry:
        start, end = period.start(self._zone), period.end(self._zone)
        bucket = Bucket(self._schedule.bucket)
        files: list[tuple[str, str]] = []
        for name, build in self._reports:
            for group_by in self._schedule.group_by:
                report = build(self._window(building, start, end, GroupBy(group_by), bucket))
                files.append((f"{name}-{group_by}.csv", report.as_csv()))
        summaries = [
            build(self._window(building, start, end, GroupBy.BUILDING, Bucket.DAY))
            for _, build in self._reports
        ]
        page = render_summary(
            building,
            period.label,
            start,
            end,
            self._settings.site.timezone,
            summaries,
            [name for name, _ in files],
            now,
        )
        files.append((SUMMARY, page))
        return self._archive.write(building, period.kind, period.label, start, end, now, files)

    def _window(
        self, building: str, start: float, end: float, group_by: GroupBy, bucket: Bucket
    ) -> ReportWindow:
        return ReportWindow(
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
            timezone=self._settings.site.timezone,
            group_by=group_by,
            bucket=bucket,
            building=building,
        )
