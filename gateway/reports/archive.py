"""The report archive: one directory per building and period, written once, read by the API.

    <archive_dir>/<building>/<period label>/
        manifest.json              what the directory holds (written last)
        <report>-<group_by>.csv    one per report and grouping (Report.as_csv)
        summary.html               one page with every report's totals and charts

An archive is written into a hidden temporary directory and renamed into place, so
a directory with a manifest is complete and a crash leaves nothing half-written
that looks finished. Reads never follow a name they did not find in the archive:
building and period come from listing the directories, file names from the
manifest, and every path is checked to lie under the archive's root.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from gateway.reports.schedule import PeriodKind

MANIFEST = "manifest.json"
SUMMARY = "summary.html"
# What the archive writes (and so what it serves): period labels and file names.
LABEL_PATTERN = re.compile(r"^[0-9]{4}-(W[0-9]{2}|[0-9]{2})$")
FILE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(-[a-z_]+)?\.(csv|html)$")

FileFormat = Literal["csv", "html"]
# Where the API serves an archived file (api/routes/report_archive.py).
ARCHIVE_PATH = "/v1/reports/archive"


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    name: str
    format: FileFormat
    bytes: int


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    building: str
    period: PeriodKind
    label: str
    start: float
    end: float
    created_at: float
    files: tuple[ArchivedFile, ...]

    @property
    def id(self) -> str:
        return f"{self.building}/{self.label}"


class ReportArchive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def has(self, building: str, label: str) -> bool:
        return (self.root / building / label / MANIFEST).is_file()

    def write(
        self,
        building: str,
        period: PeriodKind,
        label: str,
        start: float,
        end: float,
        created_at: float,
        files: Sequence[tuple[str, str]],
    ) -> ArchiveEntry:
        """Writes the files ((name, text), names as FILE_PATTERN) for the building and
        period. Periods are written once: FileExistsError when the archive has it already."""
        for name, _ in files:
            if not FILE_PATTERN.match(name) or name == MANIFEST:
                raise ValueError(f"not an archive file name: {name!r}")
        if not LABEL_PATTERN.match(label):
            raise ValueError(f"not a period label: {label!r}")
        parent = self.root / building
        parent.mkdir(parents=True, exist_ok=True)
        final = parent / label
        staging = Path(tempfile.mkdtemp(prefix=f".{label}-", dir=parent))
        try:
            written = []
            for name, text in files:
                data = text.encode()
                (staging / name).write_bytes(data)
                written.append(ArchivedFile(name, "html" if name.endswith(".html") else "csv", len(data)))
            entry = ArchiveEntry(building, period, label, start, end, created_at, tuple(written))
            (staging / MANIFEST).write_bytes(orjson.dumps(_manifest(entry), option=orjson.OPT_INDENT_2))
            for path in (*staging.iterdir(), staging):
                _fsync(path)
            if self.has(building, label):
                raise FileExistsError(f"{building}/{label} is archived already")
            # (Onto an empty directory, rename replaces it; onto a full one it fails.)
            staging.rename(final)
            _fsync(parent)
            return entry
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def entries(self, buildings: frozenset[str] | None = None) -> list[ArchiveEntry]:
        """Every complete archive (of `buildings`, None: all), the newest period first."""
        found = []
        for building in self._buildings():
            if buildings is not None and building not in buildings:
                continue
            for directory in (self.root / building).iterdir():
                if LABEL_PATTERN.match(directory.name):
                    entry = self.entry(building, directory.name)
                    if entry is not None:
                        found.append(entry)
        found.sort(key=lambda e: (-e.end, e.period, e.building))
        return found

    def entry(self, building: str, label: str) -> ArchiveEntry | None:
        if building not in self._buildings() or not LABEL_PATTERN.match(label):
            return None
        try:
            data = orjson.loads((self.root / building / label / MANIFEST).read_bytes())
            return ArchiveEntry(
                building,
                data["period"],
                label,
                float(data["start"]),
                float(data["end"]),
                float(data["created_at"]),
                tuple(
                    ArchivedFile(str(f["name"]), f["format"], int(f["bytes"]))
                    for f in data["files"]
                    if FILE_PATTERN.match(str(f["name"]))
                ),
            )
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def file(self, building: str, label: str, name: str) -> tuple[Path, ArchivedFile] | None:
        """An archived file's path, if the archive lists it; None otherwise."""
        entry = self.entry(building, label)
        if entry is None:
            return None
        for archived in entry.files:
            if archived.name == name:
                path = (self.root / building / label / name).resolve()
                if path.is_relative_to(self.root.resolve()) and path.is_file():
                    return path, archived
        return None

    def _buildings(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            return []


def archive_url(entry: ArchiveEntry, name: str) -> str:
    return f"{ARCHIVE_PATH}/{entry.building}/{entry.label}/{name}"


def _manifest(entry: ArchiveEntry) -> dict[str, object]:
    return {
        "building": entry.building,
        "period": entry.period,
        "label": entry.label,
        "start": entry.start,
        "end": entry.end,
        "created_at": entry.created_at,
        "files": [{"name": f.name, "format": f.format, "bytes": f.bytes} for f in entry.files],
    }


def _fsync(path: Path) -> None:
    # The files, then the directories that name them: a power loss after the rename
    # leaves either no archive or a whole one.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
