"""Replay parameters chosen by leave-one-day-out validation, and judged where they were not chosen.

Parameters picked on one day of a dataset can look perfect there and lose on the
next (issue 11: a 30 s vacancy timeout picked on one day lost recall on a later
period of the same room). So the choice is made by a fixed rule and the rule
itself is judged on days it did not see:

1. Every candidate of the format's small grid (`GRIDS`) is replayed once over the
   tuning part, as one continuous run like a gateway's; its confusion counts are
   kept per day (local date). Choosing among candidates is then arithmetic.
2. `choose` takes the best accuracy over the rows of the days it is given. Every
   candidate within `TOLERANCE` (0.1 percentage point) of the best ties, and ties
   go to the product's defaults: fewest parameters changed from `DEFAULTS`, then
   the better accuracy, then grid order. A parameter moves off its default only
   when that buys more than 0.1 pp on the days at hand.
3. Leave one day out: for each day of the tuning part, `choose` on the other days
   and score that choice on the held-out day. The per-day held-out figures, and
   their mean, min and max, say what the procedure is worth on a day it has not
   seen and how much that varies; the defaults' own figures per day stand beside.
4. The final parameters are `choose` on the whole tuning part, evaluated once on
   the test part (next to the defaults there).

Parts: `uci-occupancy` tunes on datatraining.txt (2015-02-04 .. 10, seven dates)
and tests on datatest.txt, and on datatest2.txt where the directory has it.
`room-occupancy-estimation` has no split: it tunes on 2017-12-22 .. 24 and tests
on the recording after its 24 h gap, 2017-12-25 .. 26 (see `replay.HELD_OUT_FROM`).

Everything but `load` and `main` is pure: rows in, figures out, in virtual time.
`officegw replay --tune --format FORMAT PATH` prints the report.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rules.occupancy import FusionParams
from simulators.replay import HELD_OUT_FROM, READERS, ROOM_ESTIMATION, UCI, Confusion, Row, resolve, score

# Candidate values per parameter; every other parameter stays at its default.
# Kept small (a replay of a tuning part takes about a second): the whole
# `--tune` run has to stay a couple of minutes on two cores. inf: evidence off.
Grid = Mapping[str, tuple[float | None, ...]]
OFF = math.inf
GRIDS: Mapping[str, Grid] = MappingProxyType(
    {
        # No motion sensor: the lights carry the room, CO2 may hold it.
        UCI: {
            "lights_on_lux": (None, 250.0, 275.0, 300.0, 325.0, 350.0, 375.0, 400.0, 425.0, 450.0, 500.0),
            "co2_rise": (5.0, 10.0, OFF),
        },
        # Two PIRs, four light sensors, CO2: how long motion holds, and whether the
        # lights and CO2 add anything to it.
        ROOM_ESTIMATION: {
            "vacancy_timeout": (30.0, 60.0, 120.0, 300.0, 600.0, 900.0),
            "lights_on_lux": (None, 50.0, 75.0, 100.0, 125.0, 150.0),
            "co2_rise": (5.0, OFF),
        },
    }
)

# The product's defaults: what a room without a type in the site config gets
# (600 s vacancy timeout, lights no evidence, CO2 rising at 5 ppm/min holds).
DEFAULTS = FusionParams.for_room_type("unknown")

UCI_TEST_FILES = ("datatest.txt", "datatest2.txt")  # datatest2.txt: where a copy has it

TOLERANCE = 0.001  # 0.1 percentage point of accuracy
# Accuracies are ratios of row counts; this keeps an exact 0.1 pp gap a tie.
_EPSILON = 1e-9

# Per candidate, per day: its confusion counts.
Table = Mapping[FusionParams, Mapping[str, Confusion]]


@dataclass(frozen=True, slots=True)
class Fold:
    day: str  # held out
    chosen: FusionParams  # chosen on the other days
    held_out: Confusion  # the choice's counts on `day`
    defaults: Confusion  # the defaults' counts on `day`


@dataclass(frozen=True, slots=True)
class Split:
    tuning: tuple[Row, ...]
    # Name -> rows to replay; scored on their held-out part where they have one.
    tests: Mapping[str, tuple[Row, ...]]
    files: tuple[str, ...]


# The procedure (pure)


def candidates(grid: Grid, defaults: FusionParams = DEFAULTS) -> tuple[FusionParams, ...]:
    """The grid's parameter sets in grid order, the defaults first (they must always compete)."""
    base = asdict(defaults)
    found = [
        FusionParams(**{**base, **dict(zip(grid, values, strict=True))})
        for values in itertools.product(*grid.values())
    ]
    return (defaults, *(params for params in dict.fromkeys(found) if params != defaults))


def days_of(rows: Iterable[Row]) -> list[str]:
    return list(dict.fromkeys(row.day for row in rows))


def sweep(rows: Sequence[Row], choices: Sequence[FusionParams]) -> dict[FusionParams, dict[str, Confusion]]:
    """Each candidate replayed once over `rows`, its counts per day."""
    table = {}
    for params in choices:
        by_day = score(rows, params, group=_day)
        del by_day["all"]
        table[params] = by_day
    return table


def choose(
    table: Table, days: Collection[str], defaults: FusionParams = DEFAULTS, tolerance: float = TOLERANCE
) -> FusionParams:
    """The candidate to use, judged on the rows of `days` only; ties go to the defaults."""
    accuracy = {params: _accuracy(pooled(by_day, days)) for params, by_day in table.items()}
    best = max(accuracy.values())
    tied = [params for params, value in accuracy.items() if best - value <= tolerance + _EPSILON]
    order = {params: i for i, params in enumerate(table)}
    return min(tied, key=lambda params: (changes(params, defaults), -accuracy[params], order[params]))


def leave_one_day_out(
    table: Table, days: Sequence[str], defaults: FusionParams = DEFAULTS, tolerance: float = TOLERANCE
) -> list[Fold]:
    """Per day: the choice made on every other day, and how it does on the day left out."""
    folds = []
    for day in days:
        chosen = choose(table, [other for other in days if other != day], defaults, tolerance)
        folds.append(Fold(day, chosen, table[chosen][day], table[defaults][day]))
    return folds


def pooled(by_day: Mapping[str, Confusion], days: Iterable[str]) -> Confusion:
    return sum((by_day.get(day, Confusion()) for day in days), Confusion())


def changes(params: FusionParams, defaults: FusionParams) -> int:
    """How many parameters differ from the defaults."""
    return sum(getattr(params, f.name) != getattr(defaults, f.name) for f in fields(FusionParams))


def _accuracy(confusion: Confusion) -> float:
    return (confusion.tp + confusion.tn) / confusion.rows if confusion.rows else 0.0


def _day(row: Row) -> str:
    return row.day


# Loading and the report


def load(format_: str, path: Path) -> Split:
    """The tuning and test parts of a dataset (a directory, or for one-file formats the file)."""
    if format_ == UCI:
        directory = path if path.is_dir() else path.parent
        training = directory / "datatraining.txt"
        tests = [directory / name for name in UCI_TEST_FILES if (directory / name).is_file()]
        if not training.is_file() or not tests:
            raise FileNotFoundError(f"{directory} has no datatraining.txt and datatest.txt")
        return Split(
            tuple(READERS[UCI](training)),
            {test.name: tuple(READERS[UCI](test)) for test in tests},
            tuple(str(file) for file in (training, *tests)),
        )
    file = resolve(format_, path)
    rows = tuple(READERS[format_](file))
    held_out_from = HELD_OUT_FROM.replace("/", "-")
    tuning = tuple(row for row in rows if row.part == "tuning")
    if not tuning:
        raise ValueError(f"no rows before {held_out_from} to tune on")
    return Split(tuning, {f"{file.name} from {held_out_from}": rows}, (str(file),))


def tune(format_: str, split: Split, grid: Grid | None = None) -> dict[str, Any]:
    """The whole procedure on one dataset (over the format's grid unless given), as the
    JSON report `officegw replay --tune` prints."""
    grid = GRIDS[format_] if grid is None else grid
    table = sweep(split.tuning, candidates(grid))
    days = days_of(split.tuning)
    folds = leave_one_day_out(table, days)
    final = choose(table, days)
    tests = {}
    for name, rows in split.tests.items():
        tests[name] = {"chosen": _test_figures(rows, final), "defaults": _test_figures(rows, DEFAULTS)}
    return {
        "format": format_,
        "files": list(split.files),
        "rule": f"best accuracy over the rows of the days tuned on; within {TOLERANCE * 100:g} pp of it, "
        "fewest parameters changed from the defaults, then accuracy, then grid order",
        "tolerance_pp": TOLERANCE * 100,
        "grid": {name: [_value(value) for value in values] for name, values in grid.items()},
        "candidates": len(table),
        "defaults": _shown(DEFAULTS, grid),
        "tuning_days": days,
        "folds": [
            {
                "held_out_day": fold.day,
                "chosen_on_other_days": _shown(fold.chosen, grid),
                "held_out": fold.held_out.figures(),
                "defaults": fold.defaults.figures(),
            }
            for fold in folds
        ],
        "held_out_days": _spread([fold.held_out for fold in folds]),
        "defaults_per_day": _spread([fold.defaults for fold in folds]),
        "chosen": _shown(final, grid),
        "chosen_on_tuning_part": pooled(table[final], days).figures(),
        "defaults_on_tuning_part": pooled(table[DEFAULTS], days).figures(),
        "test": tests,
        "params": {name: _value(value) for name, value in asdict(final).items()},
    }


def _test_figures(rows: Sequence[Row], params: FusionParams) -> dict[str, Any]:
    # A file with a split is replayed whole (state carries over, as in a gateway)
    # and scored on its held-out part only.
    scores = score(rows, params)
    return scores.get("held_out", scores["all"]).figures()


def _spread(per_day: Sequence[Confusion]) -> dict[str, Any]:
    accuracies = [_accuracy(confusion) for confusion in per_day]
    return {
        "accuracy": {
            "mean": round(sum(accuracies) / len(accuracies), 4),
            "min": round(min(accuracies), 4),
            "max": round(max(accuracies), 4),
        },
        "pooled": sum(per_day, Confusion()).figures(),
    }


def _shown(params: FusionParams, grid: Grid) -> dict[str, float | str]:
    return {name: _value(getattr(params, name)) for name in grid}


def _value(value: float | None) -> float | str:
    # As `officegw replay --set` spells it: "off" for evidence not used.
    return "off" if value is None or value == OFF else value
