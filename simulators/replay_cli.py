"""`officegw replay`: replay a labelled dataset (simulators.replay) or choose its
parameters by leave-one-day-out validation (simulators.replay_tuning)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from rules.occupancy import FusionParams
from simulators import replay_tuning
from simulators.replay import DEFAULT_FILES, FORMATS, PARAMS, replay, resolve


def _override(params: FusionParams, assignment: str) -> FusionParams:
    name, sep, text = assignment.partition("=")
    values: dict[str, Any] = asdict(params)
    if not sep or name not in values:
        names = ", ".join(sorted(values))
        raise argparse.ArgumentTypeError(f"--set wants NAME=VALUE with NAME one of {names}")
    if text.lower() in ("none", "off"):
        # Off: no lights evidence; for anything else, a value no room reaches.
        values[name] = None if name == "lights_on_lux" else float("inf")
    else:
        try:
            values[name] = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--set {name}: {text!r} is not a number") from None
    return FusionParams(**values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="officegw replay",
        description="Replay a labelled occupancy dataset through the gateway's occupancy fusion "
        "in virtual time and print accuracy, precision, recall and F1 as one JSON line.",
    )
    parser.add_argument("--format", required=True, choices=FORMATS, help="dataset layout")
    parser.add_argument(
        "path",
        metavar="FILE",
        type=Path,
        help=f"dataset file, or a directory holding {' / '.join(DEFAULT_FILES.values())}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one fusion parameter (e.g. lights_on_lux=400, co2_rise=off)",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="choose the format's parameters by leave-one-day-out validation on the tuning part "
        "and test them on the held-out part; prints a JSON report (FILE: the dataset's directory; "
        "for room-occupancy-estimation also its file)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.tune:
        if args.set:
            parser.error("--tune chooses every parameter itself; it takes no --set")
        return _tune(args.format, args.path, parser)
    params = PARAMS[args.format]
    try:
        for assignment in args.set:
            params = _override(params, assignment)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        parser.error(str(exc))
    file = resolve(args.format, args.path)
    if not file.is_file():
        parser.error(f"no such file: {file}")
    try:
        result = replay(args.format, file, params)
    except (KeyError, ValueError) as exc:
        print(f"officegw replay: {file} is not a {args.format} file: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def _tune(format_: str, path: Path, parser: argparse.ArgumentParser) -> int:
    if not path.exists():
        parser.error(f"no such file or directory: {path}")
    try:
        split = replay_tuning.load(format_, path)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"officegw replay --tune: {path}: {exc}", file=sys.stderr)
        return 1
    report = replay_tuning.tune(format_, split)
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
