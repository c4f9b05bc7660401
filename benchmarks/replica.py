"""An API replica next to its gateway: what serving the campus from the retained room
states and the owning gateway's answers costs, each figure beside its ceiling from the
same run.

One mosquitto, one `officegw run` for every room (2,000 in four buildings by default)
and one `officegw api` on the gateway's SQLite file, each a process of its own:

- **room status**, `GET /v1/rooms` (the whole campus) and `GET /v1/rooms/{id}`, closed
  loop (benchmarks/availability.py's clients): on the replica, on the gateway, and on
  the ceiling (Starlette serving the replica's very bytes from memory);
- **availability**, `GET /v1/availability` (the whole campus, now): replica and gateway;
- **staleness**: a presence message for a vacant room, until the room's status says
  occupied on the gateway's event stream and on the replica's (the replica's is the
  gateway's retained publication, one broker hop later);
- **booking writes**, `POST /v1/bookings` one after another: through the replica
  (a command to the gateway and its answer) and on the gateway itself.

Progress on stderr; one JSON line per measurement on stdout, then a summary line.
Run: `.venv/bin/python benchmarks/replica.py` (`--rooms`, `--duration`, `--samples`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.availability import load, site, start_ceiling, stop, wait_ready
from simulators.broker import BrokerProcess, free_port, start_mosquitto

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "office"


def progress(message: str) -> None:
    print(f"[replica-bench] {message}", file=sys.stderr, flush=True)


def start(workdir: Path, config: Path, command: list[str], port: int, name: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *command, "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    wait_ready(port, proc, workdir / f"{name}.log")
    return proc


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(ordered[-1], 2),
        "samples": len(ordered),
    }


class RoomWatcher:
    """GET /v1/stream?kind=room in a thread: when each room was first seen occupied."""

    def __init__(self, port: int) -> None:
        self.seen: dict[str, float] = {}
        self._client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(5.0, read=None)
        )
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("stream not ready")

    def _run(self) -> None:
        event = ""
        try:
            with self._client.stream("GET", "/v1/stream?kind=room") as response:
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        if event == "ready":
                            self.ready.set()
                    elif line.startswith("data:") and event == "room":
                        room = json.loads(line[5:])
                        if room["occupancy"]["state"] == "occupied" and room["id"] not in self.seen:
                            self.seen[room["id"]] = time.perf_counter()
        except httpx.HTTPError:
            return

    def close(self) -> None:
        self._client.close()


def staleness(
    broker: BrokerProcess, gateway: int, replica: int, rooms: list[str], places: dict[str, str]
) -> dict[str, Any]:
    on_gateway, on_replica = RoomWatcher(gateway), RoomWatcher(replica)
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    sent: dict[str, float] = {}
    try:
        for room in rooms:
            sent[room] = time.perf_counter()
            client.publish(f"{PREFIX}/{places[room]}/{room}/{room}-pir", b'{"occupancy": true}', qos=1)
            deadline = time.monotonic() + 10
            while room not in on_replica.seen or room not in on_gateway.seen:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{room}: not seen occupied within 10 s")
                time.sleep(0.002)
    finally:
        client.loop_stop()
        client.disconnect()
        on_gateway.close()
        on_replica.close()
    return {
        "gateway_stream": percentiles([(on_gateway.seen[r] - sent[r]) * 1000 for r in rooms]),
        "replica_stream": percentiles([(on_replica.seen[r] - sent[r]) * 1000 for r in rooms]),
    }


def booking_writes(port: int, rooms: list[str], day: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=day)
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for n, room in enumerate(rooms):
            begin = start + timedelta(minutes=30 * (n % 16))
            body = {
                "room_id": room,
                "start": begin.isoformat(),
                "end": (begin + timedelta(minutes=30)).isoformat(),
                "title": f"bench {n}",
            }
            t0 = time.perf_counter()
            response = http.post("/v1/bookings", json=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"booking refused: {response.status_code} {response.text}")
    return percentiles(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per closed-loop measurement")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--samples", type=int, default=100, help="rooms for staleness, bookings per side")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="officegw-replica-bench-"))
    broker = start_mosquitto()
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    results: dict[str, Any] = {}
    try:
        gateway_port, replica_port = free_port(), free_port()
        campus = site(args.rooms)
        for room in campus["rooms"]:
            room["floor"] = str(room["floor"])
        campus["devices"] = [
            {"id": f"{r['id']}-pir", "room": r["id"], "power_source": "battery"} for r in campus["rooms"]
        ]
        config = workdir / "campus.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "gateway": {"id": f"bench-replica-{os.getpid()}", "log_level": "WARNING"},
                    "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                    "api": {"host": "127.0.0.1", "port": gateway_port},
                    "storage": {"path": str(workdir / "campus.db")},
                    "site": campus,
                    # Long enough that no room turns vacant again during the run.
                    "occupancy": {"vacancy_timeout": 3600},
                    "push": {"state": {"min_interval": 0.1}},
                }
            )
        )
        progress(f"starting a gateway with {args.rooms} rooms and a replica ({workdir})")
        procs.append((start(workdir, config, ["run"], gateway_port, "gateway"), workdir / "gateway.log"))
        procs.append(
            (
                start(
                    workdir,
                    config,
                    ["api", "--port", str(replica_port), "--id", "bench"],
                    replica_port,
                    "replica",
                ),
                workdir / "replica.log",
            )
        )
        replica = httpx.Client(base_url=f"http://127.0.0.1:{replica_port}", timeout=30)
        deadline = time.monotonic() + 60
        while replica.get("/v1/rooms").json()["count"] < args.rooms:
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not get every room")
            time.sleep(0.2)
        campus_bytes = replica.get("/v1/rooms").content
        room_bytes = replica.get("/v1/rooms/r0001").content
        ceiling, ceiling_port = start_ceiling(
            {"/v1/rooms": campus_bytes, "/v1/rooms/r0001": room_bytes}, workdir
        )
        procs.append((ceiling, workdir / "ceiling.log"))

        for path, label in (
            ("/v1/rooms", "rooms_campus"),
            ("/v1/rooms/r0001", "room_one"),
            ("/v1/availability", "availability_campus"),
        ):
            for side, port in (
                ("replica", replica_port),
                ("gateway", gateway_port),
                ("ceiling", ceiling_port),
            ):
                if side == "ceiling" and label == "availability_campus":
                    continue
                progress(f"{label} on the {side}")
                figure = load(port, [path], args.clients, args.duration)
                results[f"{label}.{side}"] = figure
                print(json.dumps({"measure": label, "side": side, "path": path, **figure}), flush=True)

        places = {r["id"]: f"{r['building']}/{r['floor']}" for r in campus["rooms"]}
        sample = [r["id"] for r in campus["rooms"][: args.samples]]
        progress(f"staleness over {len(sample)} rooms")
        stale = staleness(broker, gateway_port, replica_port, sample, places)
        results["staleness"] = stale
        print(json.dumps({"measure": "staleness", **stale}), flush=True)

        bookable = [r["id"] for r in campus["rooms"]][-args.samples :]
        progress("booking writes")
        writes = {
            "replica": booking_writes(replica_port, bookable, day=2),
            "gateway": booking_writes(gateway_port, bookable, day=3),
        }
        results["booking_writes"] = writes
        print(json.dumps({"measure": "booking_writes", **writes}), flush=True)
        replica.close()
    finally:
        for proc, log in reversed(procs):
            stop(proc, log)
        broker.stop()

    def ratio(label: str) -> float:
        return round(
            results[f"{label}.replica"]["requests_per_s"] / results[f"{label}.ceiling"]["requests_per_s"], 3
        )

    summary = {
        "summary": "replica",
        "rooms": args.rooms,
        "load_average": os.getloadavg(),
        "rooms_campus_replica_vs_ceiling": ratio("rooms_campus"),
        "rooms_campus_replica_vs_gateway": round(
            results["rooms_campus.replica"]["requests_per_s"]
            / results["rooms_campus.gateway"]["requests_per_s"],
            3,
        ),
        "room_one_replica_vs_ceiling": ratio("room_one"),
        "staleness_p99_ms": {k: v["p99_ms"] for k, v in results["staleness"].items()},
        "booking_write_p50_ms": {k: v["p50_ms"] for k, v in results["booking_writes"].items()},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
