"""Dataset replay: slices of the real files, a hand-made file with known figures, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from rules.occupancy import FusionParams
from simulators.replay import PARAMS, ROOM_ESTIMATION, UCI, main, replay
from tests.paths import SHARED

DATA = SHARED / "data"
UCI_TEST = DATA / "occupancy-uci" / "datatest.txt"
ROOM_FILE = DATA / "room-occupancy-estimation-uci" / "Occupancy_Estimation.csv"

FIGURES = {"format", "file", "rows", "accuracy", "precision", "recall", "f1", "tp", "fp", "tn", "fn"}


def _slice(source: Path, target: Path, *ranges: range) -> Path:
    """The header and the given data rows (0-based) of `source`, in order."""
    lines = source.read_text().splitlines(keepends=True)
    rows = [lines[1 + i] for r in ranges for i in r]
    target.write_text(lines[0] + "".join(rows))
    return target


def _needs(path: Path) -> None:
    # The datasets live in shared/ beside the repository (CI lays a copy there too);
    # without them these tests cannot say anything, and must say so.
    assert path.is_file(), f"dataset not found: {path} (expected shared/ beside the repository)"


def test_uci_slice(tmp_path: Path) -> None:
    _needs(UCI_TEST)
    # Afternoon, evening and the next morning's arrival: both classes, both transitions.
    result = replay(UCI, _slice(UCI_TEST, tmp_path / "slice.txt", range(0, 1200)))
    assert result.keys() >= FIGURES
    assert result["rows"] == 1200
    assert result["tp"] + result["fp"] + result["tn"] + result["fn"] == 1200
    assert result["tp"] > 0 and result["tn"] > 0
    assert result["accuracy"] >= 0.95
    assert result["params"]["lights_on_lux"] == PARAMS[UCI].lights_on_lux


def test_room_estimation_slice_reports_tuning_and_held_out(tmp_path: Path) -> None:
    _needs(ROOM_FILE)
    # The first session (tuning day) and the start of a held-out session.
    sliced = _slice(ROOM_FILE, tmp_path / "slice.csv", range(0, 500), range(2700, 3000))
    result = replay(ROOM_ESTIMATION, sliced)
    assert result.keys() >= FIGURES
    assert result["rows"] == 800
    parts = result["parts"]
    assert (parts["tuning"]["rows"], parts["held_out"]["rows"]) == (500, 300)
    assert result["accuracy"] >= 0.95
    assert min(parts["tuning"]["accuracy"], parts["held_out"]["accuracy"]) >= 0.95


UCI_HEADER = '"date","Temperature","Humidity","Light","CO2","HumidityRatio","Occupancy"\n'


def _uci_row(i: int, minute: int, light: float, occupied: int) -> str:
    return f'"{i}","2015-02-02 09:{minute:02d}:00",21,30,{light},600,0.004,{occupied}\n'


def test_figures_on_a_hand_made_file(tmp_path: Path) -> None:
    # Lights decide (365 lux); the last row is a miss: lights left on in an empty room.
    rows = [(0, 0.0, 0), (1, 450.0, 1), (2, 460.0, 1), (3, 10.0, 0), (4, 450.0, 0)]
    path = tmp_path / "tiny.txt"
    path.write_text(UCI_HEADER + "".join(_uci_row(i, m, lux, y) for i, (m, lux, y) in enumerate(rows)))
    result = replay(UCI, path)
    assert {k: result[k] for k in ("rows", "tp", "fp", "tn", "fn")} == {
        "rows": 5,
        "tp": 2,
        "fp": 1,
        "tn": 2,
        "fn": 0,
    }
    assert (result["accuracy"], result["precision"], result["recall"], result["f1"]) == (
        0.8,
        0.6667,
        1.0,
        0.8,
    )
    # Same file, lights ignored: nothing is ever occupied, so precision is undefined.
    dark = replay(UCI, path, FusionParams())
    assert (dark["tp"], dark["fp"], dark["precision"]) == (0, 0, None)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, orjson.loads(out) if out else None, err


def test_main_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "datatest.txt"
    path.write_text(UCI_HEADER + _uci_row(0, 0, 450.0, 1) + _uci_row(1, 1, 0.0, 0))
    # A directory stands for the format's usual file in it.
    code, result, _ = _run(["--format", "uci-occupancy", str(tmp_path)], capsys)
    assert code == 0
    assert result.keys() >= FIGURES
    assert (result["rows"], result["accuracy"], result["file"]) == (2, 1.0, str(path))
    code, result, _ = _run(["--format", "uci-occupancy", str(path), "--set", "lights_on_lux=off"], capsys)
    assert (code, result["accuracy"], result["params"]["lights_on_lux"]) == (0, 0.5, None)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--format" in out and "room-occupancy-estimation" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "uci-occupancy", "/nonexistent/file.txt"],
        ["--format", "nope", "x"],
        ["--format", "uci-occupancy", "x", "--set", "unknown=1"],
        ["--format", "uci-occupancy", "x", "--set", "lights_on_lux=bright"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_file_of_another_format_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    code, result, err = _run(["--format", "room-occupancy-estimation", str(path)], capsys)
    assert (code, result) == (1, None)
    assert "not a room-occupancy-estimation file" in err
