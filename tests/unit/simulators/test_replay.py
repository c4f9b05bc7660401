"""Dataset replay: slices of the real files, a hand-made file with known figures, the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from rules.occupancy import FusionParams
from simulators.replay import PARAMS, ROOM_ESTIMATION, UCI, Confusion, replay
from simulators.replay_cli import main
from simulators.replay_tuning import DEFAULTS, candidates, choose, leave_one_day_out

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"
UCI_TEST = DATA / "occupancy-uci" / "datatest.txt"
ROOM_FILE = DATA / "room-occupancy-estimation-uci" / "Occupancy_Estimation.csv"

FIGURES = {"format", "file", "rows", "accuracy", "precision", "recall", "f1", "tp", "fp", "tn", "fn"}


def _slice(source: Path, target: Path, *ranges: range) -> Path:
    """The header and the given data rows (0-based) of `source`, in order."""
    lines = source.read_text().splitlines(keepends=True)
    rows = [lines[1 + i] for r in ranges for i in r]
    target.write_text(lines[0] + "".join(rows))
    return target


def test_uci_slice(tmp_path: Path) -> None:
    # Afternoon, evening and the next morning's arrival: both classes, both transitions.
    result = replay(UCI, _slice(UCI_TEST, tmp_path / "slice.txt", range(0, 1200)))
    assert result.keys() >= FIGURES
    assert result["rows"] == 1200
    assert result["tp"] + result["fp"] + result["tn"] + result["fn"] == 1200
    assert result["tp"] > 0 and result["tn"] > 0
    assert result["accuracy"] >= 0.95
    assert result["params"]["lights_on_lux"] == PARAMS[UCI].lights_on_lux


def test_room_estimation_slice_reports_tuning_and_held_out(tmp_path: Path) -> None:
    # The first session (tuning day) and the start of the held-out recording after
    # the file's 24 h gap (2017-12-25, row 5305 on).
    sliced = _slice(ROOM_FILE, tmp_path / "slice.csv", range(0, 500), range(5305, 5605))
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
    # Lights decide (375 lux); the last row is a miss: lights left on in an empty room.
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


# Choosing the parameters: leave one day out, ties to the defaults


def _right(correct: int, rows: int = 1000) -> Confusion:
    """Counts of `rows` occupied rows, `correct` of them seen."""
    return Confusion(tp=correct, fn=rows - correct)


SHORT = FusionParams(vacancy_timeout=30.0)
SHORT_LIT = FusionParams(vacancy_timeout=30.0, lights_on_lux=100.0)


@pytest.mark.parametrize(
    ("short", "short_lit", "chosen"),
    [
        (996, 900, DEFAULTS),  # 0.1 pp better: a tie, and ties go to the defaults
        (997, 900, SHORT),  # 0.2 pp better: the better candidate
        (997, 998, SHORT),  # within 0.1 pp of the best, fewer changes from the defaults win
        (997, 999, SHORT_LIT),  # 0.2 pp better than the rest
    ],
)
def test_choose_prefers_the_defaults_on_a_tie(short: int, short_lit: int, chosen: FusionParams) -> None:
    table = {
        DEFAULTS: {"d1": _right(995), "d2": _right(995)},
        SHORT: {"d1": _right(short), "d2": _right(short)},
        SHORT_LIT: {"d1": _right(short_lit), "d2": _right(short_lit)},
    }
    assert choose(table, ["d1", "d2"]) == chosen


def test_leave_one_day_out_scores_each_choice_on_the_day_left_out() -> None:
    # SHORT is perfect on d1 and d2 but loses d3; over all days it ties with the defaults.
    table = {
        DEFAULTS: {"d1": _right(900), "d2": _right(900), "d3": _right(1000)},
        SHORT: {"d1": _right(1000), "d2": _right(1000), "d3": _right(800)},
    }
    folds = leave_one_day_out(table, ["d1", "d2", "d3"])
    assert [(fold.day, fold.chosen) for fold in folds] == [
        ("d1", DEFAULTS),
        ("d2", DEFAULTS),
        ("d3", SHORT),  # chosen on d1 and d2 only
    ]
    assert [fold.held_out.tp for fold in folds] == [900, 900, 800]
    assert [fold.defaults.tp for fold in folds] == [900, 900, 1000]
    assert choose(table, ["d1", "d2", "d3"]) == DEFAULTS


def test_candidates_put_the_defaults_first_once() -> None:
    grid = {"vacancy_timeout": (30.0, DEFAULTS.vacancy_timeout), "lights_on_lux": (None, 100.0)}
    found = candidates(grid)
    assert found[0] == DEFAULTS and len(found) == len(set(found)) == 4


def _uci_day(day: int, rows: list[tuple[float, int]]) -> str:
    return "".join(
        f'"{i}","2015-02-{day:02d} {9 + i // 60:02d}:{i % 60:02d}:00",21,30,{lux},600,0.004,{y}\n'
        for i, (lux, y) in enumerate(rows)
    )


def test_tune_on_a_hand_made_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Three days: dark and empty, lit (450 lux) and occupied; on one day daylight
    # reaches 300 lux in the empty room. Every threshold from 325 to 425 lux is
    # right: a tie, and among equals the grid's first.
    day = [(0.0, 0)] * 3 + [(450.0, 1)] * 4 + [(0.0, 0)] * 3
    sunny = [(300.0, 0)] * 3 + [(450.0, 1)] * 4 + [(0.0, 0)] * 3
    (tmp_path / "datatraining.txt").write_text(
        UCI_HEADER + _uci_day(5, day) + _uci_day(6, sunny) + _uci_day(9, day)
    )
    (tmp_path / "datatest.txt").write_text(UCI_HEADER + _uci_day(3, sunny))
    code, report, _ = _run(["--tune", "--format", "uci-occupancy", str(tmp_path)], capsys)
    assert code == 0
    assert report["tuning_days"] == ["2015-02-05", "2015-02-06", "2015-02-09"]
    assert [fold["held_out_day"] for fold in report["folds"]] == report["tuning_days"]
    # Held out, the sunny day gets what the two dark days chose: there 250 lux is
    # right already, and the grid's first of the tie.
    assert [fold["chosen_on_other_days"]["lights_on_lux"] for fold in report["folds"]] == [325, 250, 325]
    assert [fold["held_out"]["accuracy"] for fold in report["folds"]] == [1.0, 0.7, 1.0]
    assert report["held_out_days"]["accuracy"] == {"mean": 0.9, "min": 0.7, "max": 1.0}
    # The defaults (lights no evidence, no motion sensor) never see anyone.
    assert [fold["defaults"]["accuracy"] for fold in report["folds"]] == [0.6, 0.6, 0.6]
    assert report["chosen"] == {"lights_on_lux": 325.0, "co2_rise": 5.0}
    assert report["test"]["datatest.txt"]["chosen"]["accuracy"] == 1.0
    assert report["test"]["datatest.txt"]["defaults"]["accuracy"] == 0.6


def test_tune_takes_no_set(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--tune", "--format", "uci-occupancy", "x", "--set", "co2_rise=off"])
    assert exit_.value.code == 2
    assert "--tune" in capsys.readouterr().err


# What `officegw replay --tune` measured on the held-out parts with the chosen
# parameters (README); the margin only absorbs small changes to the fusion.
HELD_OUT_ACCURACY = {UCI: 0.9786, ROOM_ESTIMATION: 0.9975}
MARGIN = 0.002


def test_chosen_params_on_the_held_out_parts() -> None:
    assert replay(UCI, UCI_TEST)["accuracy"] >= HELD_OUT_ACCURACY[UCI] - MARGIN
    held_out = replay(ROOM_ESTIMATION, ROOM_FILE)["parts"]["held_out"]
    assert held_out["accuracy"] >= HELD_OUT_ACCURACY[ROOM_ESTIMATION] - MARGIN
