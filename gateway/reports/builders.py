"""The reports the gateway can build, each a function of the store, a window and the
settings. The scheduled archive (gateway/reports/archive.py) writes each of
`ARCHIVED` for every building; a report added here is archived with the others."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config import Settings
from gateway.reports.service import build_service
from gateway.reports.table import Report, ReportWindow
from gateway.storage.sqlite_store import Store

ReportBuilder = Callable[[Store, ReportWindow, Settings], Report]

# (report name, builder), in the order the archive's summary shows them.
ARCHIVED: tuple[tuple[str, ReportBuilder], ...] = (("service", build_service),)
