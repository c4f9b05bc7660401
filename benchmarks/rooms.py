"""Campus room status under load: whole-campus `GET /v1/rooms` and `GET /v1/rooms/{id}`
against 2,000 rooms and 20,000 devices that reported (issue 17, point 7).

The gateway runs as `officegw run` (its own process, its own mosquitto), with the
campus of `benchmarks/availability.py` (4 buildings, 10 floors, 2,000 rooms); every
room's 10 native devices report once (lights and plugs drawing power, so every room's
energy figures move by themselves, as on a lit campus), and bookings are imported as
iCalendar (every fourth room booked now). Each query is measured against the gateway
and against a ceiling in the same run: Starlette + orjson under the same uvicorn
settings serving the very bytes the gateway answered, from memory. Clients are
processes with one keep-alive connection each (`benchmarks.availability.load`):

- closed loop: each client sends its next request when the last one is answered,
  for `--duration` seconds: requests/s, p50, p99, max;
- `campus_live`: the campus again while a publisher sends `--live-rate` readings a
  second (a 20,000-device campus reporting every 40 s), so rooms change between
  requests.

`--gateway-root DIR` runs the gateway from another checkout (the same benchmark
against the code before a change). Progress on stderr; one JSON line per
measurement on stdout, then a summary line. Goal: campus >= 100 requests/s with
p99 < 50 ms from four clients.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.availability import booking_calendars, load, progress, site, start_ceiling, stop, wait_ready
from benchmarks.ingest import _metric, _wait, publish_backlog
from benchmarks.memory import KINDS, payload
from simulators.broker import BrokerProcess, free_port, start_mosquitto

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "office"


def readings(rooms: list[dict[str, Any]], per_room: int, n: int = 0) -> list[tuple[str, bytes]]:
    """One message from each of every room's `per_room` native devices."""
    ts = time.time()
    return [
        (
            f"{PREFIX}/{room['building']}/{room['floor']}/{room['id']}/{room['id']}-{kind}{k}",
            orjson.dumps(payload(kind, n, round(ts + index * 0.0001, 4))),
        )
        for index, room in enumerate(rooms)
        for k, kind in ((k, KINDS[k % len(KINDS)]) for k in range(per_room))
    ]


def start_gateway(
    broker: BrokerProcess, workdir: Path, rooms: list[dict[str, Any]], devices: int, root: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"bench-rooms-{os.getpid()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(workdir / "officegw.db")},
                "registry": {"max_auto_devices": max(devices, 10_000)},
                "quality": {"max_rate": 1_000, "burst": 1_000},
                "site": {"rooms": rooms},
            }
        )
    )
    log = (workdir / "gateway.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    wait_ready(port, proc, workdir / "gateway.log")
    return proc, port


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process used so far (less sensitive to a busy machine than
    wall-clock figures)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, port: int, paths: list[str], clients: int, duration: float) -> dict[str, Any]:
    """`load`, with the gateway's CPU time per answer."""
    before = cpu_seconds(pid)
    result = load(port, paths, clients, duration)
    used = cpu_seconds(pid) - before
    result["gateway_cpu_ms_per_request"] = round(used * 1000 / max(1, result["requests"]), 3)
    return result


def _publish_live(host: str, port: int, messages: list[tuple[str, bytes]], rate: float, until: float) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    due = time.monotonic()
    n = 0
    while time.monotonic() < until:
        topic, body = messages[n % len(messages)]
        client.publish(topic, body, qos=0)
        n += 1
        due += 1 / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    client.loop_stop()
    client.disconnect()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms (default 2000)")
    parser.add_argument("--devices-per-room", type=int, default=10, help="native devices a room (default 10)")
    parser.add_argument("--bookings", type=int, default=2_000, help="bookings over 30 days (default 2000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument(
        "--live-rate", type=float, default=500.0, help="readings/s during campus_live (default 500)"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of campus load first (default 3)")
    parser.add_argument(
        "--gateway-root", type=Path, default=ROOT, help="checkout to run the gateway from (default: this one)"
    )
    args = parser.parse_args()
    rooms = site(args.rooms)["rooms"]
    devices = args.rooms * args.devices_per_room
    measured: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="officegw-rooms-") as tmp, start_mosquitto() as broker:
        workdir = Path(tmp)
        progress(f"gateway ({args.gateway_root}) with {args.rooms} rooms")
        gateway, port = start_gateway(broker, workdir, rooms, devices, args.gateway_root)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                messages = readings(rooms, args.devices_per_room)
                progress(f"{len(messages)} readings from {devices} devices")
                publish_backlog(broker, messages, 2)
                _wait(
                    lambda: _metric(http, "officegw_messages_received_total") >= len(messages),
                    600,
                    "every reading received",
                )
                created = 0
                for body in booking_calendars(args.rooms, args.bookings, datetime.now(UTC)):
                    response = http.post(
                        "/v1/bookings/import", content=body, headers={"Content-Type": "text/calendar"}
                    )
                    response.raise_for_status()
                    created += response.json()["created"]
                progress(f"{created} bookings")
                room_paths = [f"/v1/rooms/r{n:04d}" for n in range(0, args.rooms, max(1, args.rooms // 200))]
                queries = {"campus": ["/v1/rooms"], "room": room_paths}
                documents = {path: http.get(path).content for paths in queries.values() for path in paths}
                campus = orjson.loads(documents["/v1/rooms"])
                lit = sum(1 for room in campus["rooms"] if room["lighting"]["power_w"])
                progress(
                    f"campus: {campus['count']} rooms, {lit} drawing power, {len(documents['/v1/rooms'])} B"
                )
            sizes = {name: len(documents[paths[0]]) for name, paths in queries.items()}
            progress(f"warming up: campus for {args.warmup:g} s")
            load(port, queries["campus"], args.clients, args.warmup)
            for name, paths in queries.items():
                progress(f"gateway: {name}, closed loop, {args.clients} clients")
                measured[name] = {"gateway": measure(gateway.pid, port, paths, args.clients, args.duration)}
                progress(f"  {measured[name]['gateway']}")
            progress(f"gateway: campus with {args.live_rate:g} readings/s arriving")
            until = time.monotonic() + args.duration + 1.0
            publisher = mp.get_context("fork").Process(
                target=_publish_live, args=(broker.host, broker.port, messages, args.live_rate, until)
            )
            publisher.start()
            received = _metric_or_none(port, "officegw_messages_received_total")
            live = measure(gateway.pid, port, queries["campus"], args.clients, args.duration)
            measured["campus_live"] = {"gateway": live}
            publisher.join(timeout=args.duration + 30)
            arrived = _metric_or_none(port, "officegw_messages_received_total")
            if received is not None and arrived is not None:
                measured["campus_live"]["readings_received"] = int(arrived - received)
            progress(f"  {measured['campus_live']['gateway']}")
        finally:
            stop(gateway, workdir / "gateway.log")
        ceiling, ceiling_port = start_ceiling(documents, workdir)
        try:
            for name, paths in queries.items():
                progress(f"ceiling: {name}, closed loop")
                measured[name]["ceiling"] = load(ceiling_port, paths, args.clients, args.duration)
        finally:
            stop(ceiling, workdir / "ceiling.log")
    measured["campus_live"]["ceiling"] = measured["campus"]["ceiling"]
    sizes["campus_live"] = sizes["campus"]
    for name, result in measured.items():
        line = {
            "benchmark": "rooms",
            "query": name,
            "clients": args.clients,
            "response_bytes": sizes[name],
            **result,
            "ratio": round(result["gateway"]["requests_per_s"] / result["ceiling"]["requests_per_s"], 3),
        }
        print(json.dumps(line), flush=True)
    campus = measured["campus"]["gateway"]
    live = measured["campus_live"]["gateway"]
    summary = {
        "benchmark": "rooms",
        "rooms": args.rooms,
        "devices": devices,
        "bookings": created,
        "lit_rooms": lit,
        "campus_requests_per_s": campus["requests_per_s"],
        "campus_p99_ms": campus["p99_ms"],
        "campus_cpu_ms_per_request": campus["gateway_cpu_ms_per_request"],
        "campus_live_requests_per_s": live["requests_per_s"],
        "campus_live_p99_ms": live["p99_ms"],
        "campus_live_cpu_ms_per_request": live["gateway_cpu_ms_per_request"],
        "room_ratio": round(
            measured["room"]["gateway"]["requests_per_s"] / measured["room"]["ceiling"]["requests_per_s"], 3
        ),
        "target_met": all(m["requests_per_s"] >= 100 and m["p99_ms"] < 50 for m in (campus, live)),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(summary), flush=True)
    return 0


def _metric_or_none(port: int, name: str) -> float | None:
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            return _metric(http, name)
    except (httpx.HTTPError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
