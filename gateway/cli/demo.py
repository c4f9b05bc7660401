"""`officegw demo`: broker, simulated floor, gateway and API in one command, nothing to set up."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from api.app import create_app
from api.room_documents import RoomDocuments
from gateway.cli.assembly import build_gateway
from gateway.cli.server import ServerThread
from gateway.config import settings_from_dict
from simulators.broker import BrokerKind, BrokerProcess, BrokerStartError, mosquitto_executable, port_is_free
from simulators.broker import free_port as any_free_port
from simulators.floor import VirtualFloor
from simulators.publisher import run_floor
from simulators.simulate.library import load_scenario
from simulators.simulate.plan import SitePlan
from simulators.simulate.runner import RunConfig, Simulation

HOST = "127.0.0.1"
STATUS_EVERY = 10.0
DEMO_LUX_TARGET = 400.0
DEMO_SCENARIO = "small-office"
# The scenario's day from 08:00, a week of it at most.
SCENARIO_FROM_HOUR = 8.0
SCENARIO_HOURS = 7 * 24.0
# The demo floor's plan on the dashboard: rows of this many grid cells.
PLAN_WIDTH = 8


def plan_cells(rooms: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """A floor plan for the simulated rooms (site config x, y, w, h): meeting rooms
    first, sized by seats, then offices, the open area and the restroom; a room that
    does not fit in its row starts the next one."""
    kinds = ("meeting", "office", "open", "restroom")
    ordered = sorted(rooms, key=lambda r: kinds.index(r["type"]) if r.get("type") in kinds else len(kinds))
    cells: dict[str, dict[str, int]] = {}
    x = y = 0
    for room in ordered:
        if room.get("type") == "meeting":
            w = 3 if room.get("capacity", 0) >= 10 else 2
        else:
            w = 4 if room.get("type") == "open" else 2
        if x + w > PLAN_WIDTH:
            x, y = 0, y + 1
        cells[room["id"]] = {"x": x, "y": y, "w": w, "h": 1}
        x += w
    return cells


def say(message: str) -> None:
    print(f"officegw demo: {message}", flush=True)


def pick_port(preferred: int, what: str) -> int:
    if port_is_free(HOST, preferred):
        return preferred
    port = any_free_port(HOST)
    say(f"port {preferred} is taken (is another {what} running?); using {port} for the {what}")
    return port


def start_broker(choice: str, port: int) -> BrokerProcess:
    if choice == "mosquitto" and mosquitto_executable() is None:
        raise BrokerStartError("mosquitto", "not installed; use --broker amqtt or install mosquitto")
    kind: BrokerKind = (
        "mosquitto" if choice == "mosquitto" or (choice == "auto" and mosquitto_executable()) else "amqtt"
    )
    broker = BrokerProcess(kind, port, HOST)
    broker.start()
    return broker


def _simulate(simulation: Simulation, stop: threading.Event) -> None:
    """The scenario's run; the demo ends when it cannot go on."""
    try:
        simulation.run()
    except Exception as exc:
        say(f"the simulation stopped: {type(exc).__name__}: {exc}")
        stop.set()


def run_demo(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # The simulator asks the gateway over HTTP all the time: not one log line each.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    broker = start_broker(args.broker, pick_port(args.mqtt_port, "MQTT broker"))
    # A demo starts from a clean slate every time: its state lives in a scratch dir.
    scratch = Path(tempfile.mkdtemp(prefix="officegw-demo-"))
    server: ServerThread | None = None
    publisher: threading.Thread | None = None
    # The small-office scenario (officegw simulate) unless a floor of other size or
    # dialects is asked for: then the floor of simulators/floor.py.
    scenario = load_scenario(DEMO_SCENARIO) if args.rooms is None and args.dialects == "native" else None
    try:
        floor = VirtualFloor(
            rooms=args.rooms or 14, seed=args.seed, time_scale=args.time_scale, dialects=args.dialects
        )
        config: dict[str, object] = {
            "gateway": {"id": "demo"},
            "mqtt": {"url": broker.url, "protocol": "5" if broker.mqtt5 else "3.1.1"},
            "storage": {"path": str(scratch / "officegw.db")},
        }
        if scenario is None:
            # Ten simulated minutes without motion, as in a real office, in demo time.
            config["occupancy"] = {"vacancy_timeout": max(3.0, 600.0 / args.time_scale)}
            site = {"rooms": floor.site_rooms(), "devices": floor.site_devices()}
            # The baseline the energy report's savings are counted against: each
            # room's lamps on through business hours (README "Reports").
            config["reports"] = {
                "baseline_w": {"rooms": {r.id: r.lamp_watts for r in floor.rooms if r.lamp_watts > 0}}
            }
            # A mixed floor has a device that announces itself (Home Assistant discovery).
            if floor.announced_devices():
                config["discovery"] = {"homeassistant": {"prefix": floor.discovery_prefix}}
        else:
            # The gateway follows the scenario's simulated time: its own timeouts then.
            config["clock"] = {"mode": "device"}
            site = SitePlan(scenario).site_config()["site"]
        # A lux target per room so daylight dimming has something to aim at.
        # Where the dashboard draws each room (site config x, y, w, h).
        plan = plan_cells(site["rooms"])
        site["rooms"] = [
            {**room, **plan[room["id"]], "lux_target": DEMO_LUX_TARGET} for room in site["rooms"]
        ]
        settings = settings_from_dict({**config, "site": site})
        documents = RoomDocuments()
        gateway = build_gateway(settings, manage_gc=True, room_documents=documents)
        app = create_app(settings, gateway, room_documents=documents)
        server = ServerThread(app, HOST, pick_port(args.api_port, "API")).start()
        if scenario is None:
            publisher = threading.Thread(
                target=run_floor,
                args=(floor, broker.host, broker.port),
                kwargs={"mqtt5": broker.mqtt5, "stop": stop},
                name="officegw-simulator",
                daemon=True,
            )
        else:
            assert scenario.start is not None
            run = RunConfig(
                scenario=scenario,
                seed=args.seed,
                hours=SCENARIO_HOURS,
                speed=args.time_scale,
                broker=broker.url,
                gateway=server.url,
                start=scenario.start.timestamp() + SCENARIO_FROM_HOUR * 3600,
                mqtt5=broker.mqtt5,
                stop=stop,
            )
            publisher = threading.Thread(
                target=_simulate, args=(Simulation(run), stop), name="officegw-simulator", daemon=True
            )
        publisher.start()

        say(f"dashboard {server.url}/  (the floor live: rooms, lights, energy, alerts)")
        say(f"broker   {broker.url} ({broker.kind})")
        say(f"API      {server.url}/v1/rooms")
        say(f"         {server.url}/v1/availability")
        say(f"docs     {server.url}/docs")
        say(f"metrics  {server.url}/metrics")
        if scenario is None:
            dialects = Counter(d.get("dialect", "native") for d in floor.site_devices())
        else:
            dialects = Counter(d.dialect for d in SitePlan(scenario).devices.values())
        announced = len(floor.announced_devices()) if scenario is None else 0
        listed = ", ".join(f"{n} {name}" for name, n in sorted(dialects.items()))
        say(
            f"devices  {listed}"
            + (f", {announced} announced (Home Assistant discovery)" if announced else "")
        )
        if scenario is None:
            say(f"simulating {len(floor.rooms)} rooms at {args.time_scale:g}x; Ctrl-C to stop")
        else:
            say(
                f"simulating the {scenario.name} scenario ({len(site['rooms'])} rooms) from 08:00 at "
                f"{args.time_scale:g}x, the gateway on its time (officegw simulate); Ctrl-C to stop"
            )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while True:
            wait = STATUS_EVERY if deadline is None else min(STATUS_EVERY, deadline - time.monotonic())
            if wait <= 0 or stop.wait(wait):
                break
            rooms, occupied, devices = gateway.counts()
            commands, alerts, _ = gateway.automation_counts()
            say(
                f"{occupied}/{rooms} rooms occupied, {devices} devices, "
                f"{gateway.stats.accepted} messages accepted, {gateway.stats.rejected_total} rejected, "
                f"{commands} commands sent, {alerts} alerts"
            )
    finally:
        stop.set()
        if publisher is not None:
            publisher.join(timeout=10)
        if server is not None:
            server.stop()
        broker.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        say("stopped")
    return 0
