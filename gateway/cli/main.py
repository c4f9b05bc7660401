"""`officegw`: run the gateway, run the demo, check a config.

A config or rules file that cannot be used ends the command with exit status 2 and
every problem printed (`ProblemsError.render()`), never a traceback."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config import ConfigError, Settings, environment_keys, load_settings
from gateway.logs import configure_logging, kv
from rules.engine import RulesError, load_rules_file
from rules.problems import ProblemsError
from simulators.dialect_devices import MIXES

if TYPE_CHECKING:
    from gateway.runtime.shard_role import ShardRole

log = logging.getLogger("officegw")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="officegw",
        description="Smart-office IoT controller: MQTT devices in, live room model, REST out.",
    )
    parser.add_argument("--version", action="version", version=f"officegw {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the gateway and the REST API against a broker",
        description="Run the gateway and the REST API in one process until SIGINT/SIGTERM. "
        "Settings come from the YAML file; OFFICEGW_* variables override it "
        "(nesting with __, e.g. OFFICEGW_MQTT__URL=mqtt://broker:1883).",
    )
    run.add_argument("--config", "-c", metavar="FILE", help="site config (YAML); defaults apply without one")
    run.add_argument("--host", help="override api.host")
    run.add_argument("--port", type=int, help="override api.port")
    run.add_argument(
        "--standby",
        action="store_true",
        help="with storage.url: when another gateway holds this shard's lock, wait for it and "
        "take over when that one stops, instead of refusing to start (README: Standby takeover)",
    )

    api = commands.add_parser(
        "api",
        help="run an API replica: the REST API for the whole campus from the gateways' retained "
        "room states and the shared store, without ingesting devices",
        description="Serve the REST API, the event stream and the dashboard for every building "
        "until SIGINT/SIGTERM: room status from the retained officegw/state/... topics the gateways "
        "publish, bookings and events from the shared store (storage.path), booking writes and "
        "manual control sent to the gateway of the room's building (officegw/command/<building>). "
        "Any number of replicas may run behind a load balancer; give each its own replica.id "
        "(default <host name>-<port>). Same config file and OFFICEGW_* overrides as `run`.",
    )
    api.add_argument("--config", "-c", metavar="FILE", help="site config (YAML); defaults apply without one")
    api.add_argument("--host", help="override api.host")
    api.add_argument("--port", type=int, help="override api.port")
    api.add_argument("--id", help="override replica.id (the replica's name on the broker)")

    check = commands.add_parser(
        "check-config",
        help="validate a config file and its rules file and report every problem",
        description="Validate a site config (and the environment overrides in force) and the "
        "rules file it names; exit 0 when valid, 2 with one line per problem otherwise "
        "(values from the environment name their OFFICEGW_* variable).",
    )
    check.add_argument("file", metavar="FILE")

    demo = commands.add_parser(
        "demo",
        help="run a simulated office floor end to end (broker, devices, gateway, API)",
        description="Start an embedded MQTT broker (mosquitto when installed, else amqtt), "
        "the small-office scenario of `officegw simulate` (virtual people coming and going), "
        "the gateway and the API, "
        "and print the URLs. Ports 1883/8000 are used when free; otherwise free ports are "
        "picked and printed.",
    )
    demo.add_argument(
        "--rooms",
        type=int,
        help="a simulated floor of this many rooms instead of the small-office scenario (12 rooms)",
    )
    demo.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="simulated seconds per real second (default 60: an office hour a minute)",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed of the simulation")
    demo.add_argument(
        "--dialects",
        choices=MIXES,
        default="native",
        help="native: every simulated device on officegw's own topics (default); mixed: a quarter of "
        "the rooms stay native, the others get Zigbee2MQTT sensors and locks and a Zigbee2MQTT, "
        "Tasmota or Shelly light (with a Shelly H&T next to the air sensor), mapped by the site "
        "config; the rooms look the same either way",
    )
    demo.add_argument("--mqtt-port", type=int, default=1883, help="preferred broker port (default 1883)")
    demo.add_argument("--api-port", type=int, default=8000, help="preferred API port (default 8000)")
    demo.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)"
    )
    demo.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "amqtt"],
        default="auto",
        help="embedded broker: mosquitto when installed (auto), or force one",
    )
    commands.add_parser(
        "replay",
        help="run a labelled occupancy dataset through the occupancy fusion (accuracy JSON)",
        add_help=False,
    )
    commands.add_parser(
        "simulate",
        help="run a simulated building (scenario) against a gateway in virtual time and score it",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["replay"]:
        # The replay tool has its own parser (and --help); it runs the same fusion.
        from simulators.replay_cli import main as replay

        return replay(argv[1:])
    if argv[:1] == ["simulate"]:
        # The simulator has its own parser (and --help); it reaches the gateway over MQTT and HTTP.
        from simulators.simulate.cli import main as simulate

        return simulate(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return _check_config(args.file)
        if args.command == "run":
            return _run(args)
        if args.command == "api":
            return _api(args)
        if args.command == "demo":
            from gateway.cli.demo import run_demo

            configure_logging("INFO")
            return run_demo(args)
    except ProblemsError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


def version() -> str:
    """The installed package's version; `unknown` when running from a source tree never installed."""
    try:
        return metadata.version("officegw")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _settings(path: str | None, overrides: dict[str, Any] | None = None) -> Settings | None:
    """The settings, or None once every problem is printed: the config's and, as far
    as the config can be read, those of the rules file it names."""
    try:
        return load_settings(path, overrides)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        rules = _rules_problems(exc.data)
        if rules is not None:
            print(rules.render(), file=sys.stderr)
        return None


def _rules_problems(data: Mapping[str, Any]) -> RulesError | None:
    """The problems of the rules file named by a config that is not valid."""
    path = data.get("rules")
    if not isinstance(path, str):
        return None  # the built-in rules (always valid), or a problem of the config itself
    site = data.get("site")
    zone = site.get("timezone") if isinstance(site, dict) else None
    try:
        load_rules_file(path, tz=zone if isinstance(zone, str) and _known_zone(zone) else "UTC")
    except RulesError as exc:
        return exc
    return None


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_config(path: str) -> int:
    from gateway.automation.runner import load_rule_set

    settings = _settings(path)
    if settings is None:
        return 2
    try:
        rules = load_rule_set(settings)
    except OSError as exc:
        raise ConfigError(path, [f"rules: cannot read {settings.rules}: {exc.strerror or exc}"]) from None
    print(
        f"{path}: ok ({len(settings.site.rooms)} rooms, {len(settings.site.devices)} devices, "
        f"{len(rules.rules)} rules from {rules.source}, "
        f"broker {settings.mqtt.url}, API {settings.api.host}:{settings.api.port})"
    )
    return 0


def _api_overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    overrides: dict[str, dict[str, object]] = {}
    if args.host is not None:
        overrides.setdefault("api", {})["host"] = args.host
    if args.port is not None:
        overrides.setdefault("api", {})["port"] = args.port
    return overrides


def _api(args: argparse.Namespace) -> int:
    overrides = _api_overrides(args)
    if args.id is not None:
        overrides.setdefault("replica", {})["id"] = args.id
    settings = _settings(args.config, overrides)
    if settings is None:
        return 2
    configure_logging(settings.gateway.log_level)

    from gateway.cli.assembly import build_replica_app
    from gateway.cli.server import serve
    from gateway.replica.replica import Replica
    from gateway.runtime.service_watchdog import ServiceWatchdog

    app = build_replica_app(settings, source=args.config or "(defaults)")
    replica: Replica = app.state.replica
    log.info(
        kv(
            "officegw api replica starting",
            config=args.config or "(defaults)",
            id=replica.name,
            api=f"http://{settings.api.host}:{settings.api.port}",
        )
    )
    # systemd's READY=1 and watchdog (deploy/officegw-api@.service), as for a gateway.
    watchdog = ServiceWatchdog.from_environment()
    watchdog.watch(lambda: replica.running, replica.hung)
    watchdog.start()
    try:
        serve(app, settings.api.host, settings.api.port)
    finally:
        watchdog.stop()
    return 0


def _run(args: argparse.Namespace) -> int:
    # No garbage collections while starting up: reading a campus's config and stored
    # state makes a great many objects that all stay, and CPython's full collections
    # over them were a third of the time to ready. The gateway turns the collector on
    # again when it starts (gateway.runtime.gc_schedule.FullCollections).
    gc.disable()
    overrides = _api_overrides(args)
    settings = _settings(args.config, overrides)
    if settings is None:
        return 2
    if args.standby and settings.storage.url is None:
        print(
            "--standby needs storage.url: the shard's lock lives in PostgreSQL (README: Standby takeover)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.gateway.log_level)

    from gateway.cli.assembly import build_app
    from gateway.cli.server import serve
    from gateway.runtime.gateway import Gateway
    from gateway.runtime.service_watchdog import ServiceWatchdog

    log.info(
        kv(
            "officegw starting",
            config=args.config or "(defaults)",
            env_overrides=",".join(environment_keys()) or "none",
            api=f"http://{settings.api.host}:{settings.api.port}",
        )
    )
    # systemd's READY=1 and watchdog (deploy/officegw.service), and what a hang does.
    watchdog = ServiceWatchdog.from_environment()
    watchdog.start()

    def run(role: ShardRole | None, on_hung: Callable[[str], None] | None = None) -> None:
        app = build_app(settings, manage_gc=True, shard=role)
        gateway: Gateway = app.state.gateway
        watchdog.watch(lambda: gateway.running, gateway.hung, on_hung)
        serve(app, settings.api.host, settings.api.port)

    try:
        if settings.storage.url is None:
            run(None)
            return 0

        from gateway.cli.shard import run_shard

        return run_shard(settings, standby=args.standby, run=run, watchdog=watchdog)
    finally:
        watchdog.stop()


if __name__ == "__main__":
    sys.exit(main())
