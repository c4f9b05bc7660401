"""The report archive on a real directory: written once and whole, listed from what is
there, and serving only the files it lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reports.archive import ReportArchive

FILES = [("service-building.csv", "building,total\n"), ("summary.html", "<!doctype html><p>hi</p>")]


def write(archive: ReportArchive, building: str = "hq", label: str = "2026-W48", end: float = 2.0) -> None:
    archive.write(building, "weekly", label, end - 1.0, end, 3.0, FILES)


def test_an_archive_lists_its_files_with_their_sizes(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path / "reports")
    write(archive)
    (entry,) = archive.entries()
    assert (entry.id, entry.period, entry.label, entry.start, entry.end) == (
        "hq/2026-W48",
        "weekly",
        "2026-W48",
        1.0,
        2.0,
    )
    assert [(f.name, f.format, f.bytes) for f in entry.files] == [
        ("service-building.csv", "csv", 15),
        ("summary.html", "html", 24),
    ]
    found = archive.file("hq", "2026-W48", "summary.html")
    assert found is not None and found[0].read_text() == "<!doctype html><p>hi</p>"


def test_newest_period_first_and_filtered_by_building(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path)
    write(archive, "hq", "2026-W47", end=1.0)
    write(archive, "hq", "2026-W48", end=2.0)
    write(archive, "annex", "2026-W48", end=2.0)
    assert [e.id for e in archive.entries()] == ["annex/2026-W48", "hq/2026-W48", "hq/2026-W47"]
    assert [e.id for e in archive.entries(frozenset({"annex"}))] == ["annex/2026-W48"]


def test_a_period_is_written_once(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path)
    write(archive)
    with pytest.raises(FileExistsError):
        write(archive)
    assert len(archive.entries()) == 1
    # No staging directory is left behind.
    assert [p.name for p in (tmp_path / "hq").iterdir()] == ["2026-W48"]


def test_a_directory_without_a_manifest_is_not_an_archive(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path)
    (tmp_path / "hq" / "2026-W48").mkdir(parents=True)
    (tmp_path / "hq" / "2026-W48" / "summary.html").write_text("half written")
    assert archive.entries() == []
    assert archive.file("hq", "2026-W48", "summary.html") is None
    assert not archive.has("hq", "2026-W48")


@pytest.mark.parametrize(
    ("building", "label", "name"),
    [
        ("hq", "2026-W48", "manifest.json"),
        ("hq", "2026-W48", "../../../etc/passwd"),
        ("hq", "2026-W48", "..%2f..%2fsecret.csv"),
        ("..", "hq", "secret.csv"),
        ("hq", "..", "secret.csv"),
        ("hq", "2026-W48/../../secret", "secret.csv"),
        ("hq", "2026-W48", "other.csv"),
        ("annex", "2026-W48", "summary.html"),
    ],
)
def test_only_listed_files_are_served(tmp_path: Path, building: str, label: str, name: str) -> None:
    root = tmp_path / "reports"
    archive = ReportArchive(root)
    write(archive)
    (tmp_path / "secret.csv").write_text("secret")
    (root / "hq" / "2026-W48" / "other.csv").write_text("not listed")
    assert archive.file(building, label, name) is None


def test_file_names_outside_the_pattern_are_refused(tmp_path: Path) -> None:
    archive = ReportArchive(tmp_path)
    with pytest.raises(ValueError, match="not an archive file name"):
        archive.write("hq", "weekly", "2026-W48", 0.0, 1.0, 1.0, [("../x.csv", "")])
    with pytest.raises(ValueError, match="not a period label"):
        archive.write("hq", "weekly", "../x", 0.0, 1.0, 1.0, FILES)
