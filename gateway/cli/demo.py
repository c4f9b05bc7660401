"""`officegw demo`: broker, simulated floor, gateway and API in one command, nothing to set up."""

from __future__ import annotations

import argparse
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
from gateway.cli.assembly import build_gateway
from gateway.cli.server import ServerThread
from gateway.config import settings_from_dict
from simulators.broker import BrokerKind, BrokerProcess, BrokerStartError, mosquitto_executable, port_is_free
from simulators.broker import free_port as any_free_port
from simulators.floor import VirtualFloor
from simulators.publisher import run_floor

HOST = "127.0.0.1"
STATUS_EVERY = 10.0
DEMO_LUX_TARGET = 400.0
# The demo floor's plan on the dashboard: rows of this many grid cells.
PLAN_WIDTH = 8


def plan_cells(rooms: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """A floor plan for the simulated rooms (site config x, y, w, h): meeting rooms
    first, sized by seats, then offices, the open area and the restroom; a room that
    does not fit in its row starts the next one."""
    kinds = ("meeting", "office", "open", "restroom")
    ordered = sorted(rooms, key=lambda r: kinds.index(r["type"]) if r["type"] in kinds else len(kinds))
    cells: dict[str, dict[str, int]] = {}
    x = y = 0
    for room in ordered:
        if room["type"] == "meeting":
            w = 3 if room["capacity"] >= 10 else 2
        else:
            w = 4 if room["type"] == "open" else 2
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


def run_demo(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    broker = start_broker(args.broker, pick_port(args.mqtt_port, "MQTT broker"))
    # A demo starts from a clean slate every time: its state lives in a scratch dir.
    scratch = Path(tempfile.mkdtemp(prefix="officegw-demo-"))
    server: ServerThread | None = None
    publisher: threading.Thread | None = None
    try:
        floor = VirtualFloor(
            rooms=args.rooms, seed=args.seed, time_scale=args.time_scale, dialects=args.dialects
        )
        # Ten simulated minutes without motion, as in a real office, in demo time.
        vacancy_timeout = max(3.0, 600.0 / args.time_scale)
        plan = plan_cells(floor.site_rooms())
        settings = settings_from_dict(
            {
                "gateway": {"id": "demo"},
                "mqtt": {"url": broker.url, "protocol": "5" if broker.mqtt5 else "3.1.1"},
                "occupancy": {"vacancy_timeout": vacancy_timeout},
                "storage": {"path": str(scratch / "officegw.db")},
                # A lux target per room so daylight dimming has something to aim at.
                "site": {
                    "rooms": [
                        {**room, **plan[room["id"]], "lux_target": DEMO_LUX_TARGET}
                        for room in floor.site_rooms()
                    ],
                    "devices": floor.site_devices(),
                },
                # The baseline the energy report's savings are counted against: each
                # room's lamps on through business hours (README "Reports").
                "reports": {
                    "baseline_w": {"rooms": {r.id: r.lamp_watts for r in floor.rooms if r.lamp_watts > 0}}
                },
                # A mixed floor has a device that announces itself (Home Assistant discovery).
                "discovery": {"homeassistant": {"prefix": floor.discovery_prefix}}
                if floor.announced_devices()
                else {},
            }
        )
        gateway = build_gateway(settings, manage_gc=True)
        server = ServerThread(create_app(settings, gateway), HOST, pick_port(args.api_port, "API")).start()
        publisher = threading.Thread(
            target=run_floor,
            args=(floor, broker.host, broker.port),
            kwargs={"mqtt5": broker.mqtt5, "stop": stop},
            name="officegw-simulator",
            daemon=True,
        )
        publisher.start()

        say(f"dashboard {server.url}/  (the floor live: rooms, lights, energy, alerts)")
        say(f"broker   {broker.url} ({broker.kind})")
        say(f"API      {server.url}/v1/rooms")
        say(f"         {server.url}/v1/availability")
        say(f"docs     {server.url}/docs")
        say(f"metrics  {server.url}/metrics")
        dialects = Counter(d.get("dialect", "native") for d in floor.site_devices())
        announced = len(floor.announced_devices())
        listed = ", ".join(f"{n} {name}" for name, n in sorted(dialects.items()))
        say(
            f"devices  {listed}"
            + (f", {announced} announced (Home Assistant discovery)" if announced else "")
        )
        say(
            f"simulating {len(floor.rooms)} rooms at {args.time_scale:g}x "
            f"(vacancy timeout {vacancy_timeout:g} s); Ctrl-C to stop"
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
