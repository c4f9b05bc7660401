"""`officegw simulate`: run a scenario (or replay a labelled dataset) against a gateway.

Exit status: 0 done; 1 the run could not go on (gateway or broker unreachable, a
restart command failed); 2 a bad scenario file or bad options. The last line on
stdout is one JSON object; the summary before it and the progress (stderr) are for
people.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import orjson
import yaml

from simulators.replay import FORMATS
from simulators.simulate import score
from simulators.simulate.library import load_scenario, shipped
from simulators.simulate.plan import SitePlan
from simulators.simulate.runner import Hooks, RunConfig, Simulation, SimulationError
from simulators.simulate.schema import ScenarioError


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a number of simulated seconds per second, or max"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: an ISO 8601 time with a zone (2030-01-07T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone (Z or +01:00)")
    return moment.timestamp()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="officegw simulate",
        description="Run a simulated building (a scenario: people, devices in five dialects, physics, "
        "faults) against a gateway over MQTT and HTTP, in virtual time, and score the gateway against "
        "the simulation's ground truth. Shipped scenarios: " + ", ".join(shipped()) + ".",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", metavar="NAME|FILE", help="a shipped scenario's name, or a scenario file")
    what.add_argument(
        "--replay",
        nargs=2,
        metavar=("FORMAT", "FILE"),
        help=f"replay a labelled dataset over MQTT instead ({', '.join(FORMATS)}) and score the "
        "gateway's occupancy",
    )
    what.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    p.add_argument(
        "--speed",
        type=_speed,
        default=_speed("max"),
        metavar="N|max",
        help="simulated seconds per real second, or max: as fast as the gateway keeps up (default)",
    )
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours to run (default 24)")
    p.add_argument(
        "--seed", type=int, default=1, help="random seed: the same scenario and seed give the same run"
    )
    p.add_argument("--start", type=_time, metavar="ISO", help="simulated start (default: the scenario's)")
    p.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883", metavar="URL", help="MQTT broker (mqtt://HOST:PORT)"
    )
    p.add_argument("--gateway", default="http://127.0.0.1:8000", metavar="URL", help="the gateway's HTTP API")
    p.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get("OFFICEGW_API_KEY"),
        help="bearer key for the API: role booking or above, without a building scope (it reads "
        "/metrics and /v1/clock); default $OFFICEGW_API_KEY",
    )
    p.add_argument("--score", action="store_true", help="score the gateway against the ground truth")
    p.add_argument("--truth", type=Path, metavar="FILE", help="write the ground truth as JSONL to FILE")
    p.add_argument(
        "--restart-broker",
        metavar="CMD",
        help="shell command that restarts the broker and returns when it is back (fault broker_restart)",
    )
    p.add_argument(
        "--restart-gateway",
        metavar="CMD",
        help="shell command that restarts the gateway and returns (fault gateway_restart)",
    )
    p.add_argument(
        "--step",
        type=float,
        default=10.0,
        help="--speed max: simulated seconds between two waits for the gateway while people are "
        "about (default 10; 300 while the building is empty)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print a gateway config (YAML) for the scenario: device time, its rooms, its "
        "devices of other dialects mapped; and exit",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for name in shipped():
            scenario = load_scenario(name)
            print(f"{name:<14} {scenario.description}")
        return 0
    if args.hours <= 0 or args.step <= 0:
        parser.error("--hours and --step must be above 0")
    progress = None if args.quiet else _progress
    try:
        if args.replay is not None:
            return _replay(args, progress)
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"officegw simulate: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:  # a dataset file that cannot be read as its format
        print(f"officegw simulate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        site = SitePlan(scenario).site_config()
        header = f"# officegw config for the {scenario.name} scenario (officegw simulate --print-config)\n"
        sys.stdout.write(header + yaml.safe_dump(site, sort_keys=False, width=200, default_flow_style=None))
        return 0
    run = RunConfig(
        scenario=scenario,
        seed=args.seed,
        hours=args.hours,
        speed=args.speed,
        broker=args.broker,
        gateway=args.gateway,
        start=args.start,
        api_key=args.api_key,
        hooks=Hooks(_shell(args.restart_broker), _shell(args.restart_gateway)),
        truth_path=args.truth,
        progress=progress,
        step=args.step,
    )
    try:
        figures = Simulation(run).run()
    except SimulationError as exc:
        print(f"officegw simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not args.score:
        keep = (
            "scenario",
            "seed",
            "start",
            "hours",
            "speed",
            "messages",
            "wall_s",
            "faults_injected",
            "gateway",
        )
        figures = {key: figures[key] for key in keep}
        print(
            f"officegw simulate: {figures['scenario']}: {figures['messages']:,} messages"
            f" in {figures['wall_s']} s"
            " (--score compares the gateway with the ground truth)"
        )
    else:
        print("\n".join(score.summary(figures)))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    return 0


def _replay(args: argparse.Namespace, progress: Callable[[str], None] | None) -> int:
    from simulators.simulate.dataset import replay_over_mqtt

    format_, path = args.replay
    result = replay_over_mqtt(
        format_,
        Path(path),
        broker=args.broker,
        gateway=args.gateway,
        speed=args.speed,
        api_key=args.api_key,
        progress=progress,
    )
    print(
        f"officegw simulate --replay {format_}: {result['rows']:,} rows,"
        f" accuracy {100 * (result['accuracy'] or 0):.2f} % (the fusion alone with the gateway's"
        f" defaults: {100 * (result['fusion_defaults']['accuracy'] or 0):.2f} %)"
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def _shell(command: str | None) -> Callable[[], None] | None:
    if command is None:
        return None

    def run() -> None:
        done = subprocess.run(command, shell=True, check=False)
        if done.returncode != 0:
            raise SimulationError(
                f"restart command failed (exit status {done.returncode}): {shlex.quote(command)}"
            )

    return run


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
