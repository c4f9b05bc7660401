"""Availability under load: whole-campus and filtered `GET /v1/availability` and
`GET /v1/rooms/{id}` against 2,000 rooms with 20,000 bookings over a month.

The gateway runs as `officegw run` (its own process, its own mosquitto); the
bookings are seeded through the API, as iCalendar imports (`POST
/v1/bookings/import`, 2,500 events a file). Each query is measured twice, against
the gateway and against a ceiling measured in the same run: Starlette under the same
uvicorn settings (no access log, same host) serving the very bytes the gateway
answered, from memory (serialised once with orjson). Clients are processes with one
keep-alive connection each (http.client, cheaper than httpx):

- closed loop: each client sends its next request when the last one is answered,
  for `--duration` seconds: requests/s, p50, p99;
- fixed rate (`--rate`, 200 requests/s) of whole-campus queries: latency counted
  from when each request was due, so a slow answer also delays the ones behind it.

Progress on stderr; one JSON line per measurement on stdout, then a summary line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.broker import BrokerProcess, free_port, start_mosquitto

ROOT = Path(__file__).resolve().parents[1]
BUILDINGS = 4
FLOORS = 10
CAPACITIES = (2, 4, 6, 8, 12, 20)
FEATURES = ((), ("display",), ("display", "vc"), ("whiteboard",), ("display", "vc", "whiteboard"))
FILTERED = "/v1/availability?building=b1&floor=3&min_capacity=6&features=display"
EVENTS_PER_IMPORT = 2_500


def progress(message: str) -> None:
    print(f"[availability-bench] {message}", file=sys.stderr, flush=True)


def site(rooms: int) -> dict[str, Any]:
    per_floor = max(1, rooms // (BUILDINGS * FLOORS))
    return {
        "rooms": [
            {
                "id": f"r{n:04d}",
                "name": f"Room {n}",
                "building": f"b{n // (per_floor * FLOORS) % BUILDINGS}",
                "floor": n // per_floor % FLOORS + 1,
                "type": "meeting",
                "capacity": CAPACITIES[n % len(CAPACITIES)],
                "features": list(FEATURES[n % len(FEATURES)]),
                "bookable": True,
            }
            for n in range(rooms)
        ]
    }


def stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def booking_calendars(rooms: int, bookings: int, now: datetime) -> list[bytes]:
    """`bookings` one-off events over the next 30 days, spread over the rooms without
    overlaps; every fourth room is booked now. As iCalendar files of EVENTS_PER_IMPORT."""
    day0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
    per_room = max(1, bookings // rooms)
    events = []
    for n in range(rooms):
        for k in range(per_room):
            if k == 0 and n % 4 == 0:
                start = now - timedelta(minutes=10)
            else:
                # One booking a day per room at most, on days 1..30, between 08:00 and 17:00.
                start = day0 + timedelta(days=1 + (k * 3 + n) % 30, hours=8 + (n + k) % 9)
            end = start + timedelta(minutes=30 if (n + k) % 2 else 60)
            events.append(
                f"BEGIN:VEVENT\r\nUID:bench-{n}-{k}\r\nDTSTART:{stamp(start)}\r\nDTEND:{stamp(end)}\r\n"
                f"SUMMARY:Meeting {k}\r\nLOCATION:r{n:04d}\r\nEND:VEVENT\r\n"
            )
    files = []
    for first in range(0, len(events), EVENTS_PER_IMPORT):
        body = "".join(events[first : first + EVENTS_PER_IMPORT])
        files.append(
            f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n{body}END:VCALENDAR\r\n".encode()
        )
    return files


def start_gateway(broker: BrokerProcess, workdir: Path, rooms: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"bench-avail-{os.getpid()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(workdir / "officegw.db")},
                "site": site(rooms),
            }
        )
    )
    log = (workdir / "gateway.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    wait_ready(port, proc, workdir / "gateway.log")
    return proc, port


def start_ceiling(documents: dict[str, bytes], workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (workdir / "ceiling").mkdir(exist_ok=True)
    index = {}
    for n, (path, body) in enumerate(documents.items()):
        file = workdir / "ceiling" / f"{n}.json"
        file.write_bytes(body)
        index[path] = str(file)
    (workdir / "ceiling.json").write_text(json.dumps(index))
    log = (workdir / "ceiling.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-ceiling", str(workdir / "ceiling.json"), "--port", str(port)],
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    wait_ready(port, proc, workdir / "ceiling.log")
    return proc, port


def serve_ceiling(index_file: str, port: int) -> None:
    """Starlette + orjson: the gateway's answers, parsed and serialised once, served from memory."""
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    bodies = {path: orjson.dumps(orjson.loads(Path(file).read_bytes())) for path, file in json.loads(
        Path(index_file).read_text()).items()}  # fmt: skip
    room = next(body for path, body in bodies.items() if path.startswith("/v1/rooms/"))

    async def answer(request: Request) -> Response:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = bodies.get(path)
        if body is None and request.url.path.startswith("/v1/rooms/"):
            body = room
        if body is None and request.url.path == "/readyz":
            body = b'{"status": "ready"}'
        return Response(body, media_type="application/json") if body else Response(status_code=404)

    app = Starlette(routes=[Route("/{path:path}", answer)])
    # The gateway's settings (gateway.cli.server.uvicorn_config): no access log, own logging.
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)).run()


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server did not become ready; see {log}")
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        progress(f"exited early ({proc.returncode}): {log.read_text()[-2000:]}")
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# Clients


def _client(
    port: int, paths: list[str], start_at: float, until: float, interval: float | None, out: Any
) -> None:
    """One keep-alive connection. Closed loop (interval None): back to back; else one
    request every `interval` s, latency counted from when it was due."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors = 0
    n = 0
    while time.perf_counter() < start_at:
        time.sleep(0.001)
    due = start_at
    while True:
        now = time.perf_counter()
        if interval is not None:
            if due > now:
                time.sleep(due - now)
            sent = due
            due += interval
        else:
            sent = now
        if sent >= until:
            break
        try:
            connection.request("GET", paths[n % len(paths)])
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            # Counted, not timed; a new connection for the next request.
            errors += 1
            connection.close()
            time.sleep(0.01)
            continue
        finally:
            n += 1
        if response.status != 200:
            errors += 1
        latencies.append(time.perf_counter() - sent)
    connection.close()
    out.put((latencies, errors, time.perf_counter()))


def load(
    port: int, paths: list[str], clients: int, duration: float, rate: float | None = None
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.perf_counter() + 0.5
    until = start_at + duration
    interval = clients / rate if rate else None
    workers = []
    for c in range(clients):
        # Clients of a fixed rate start staggered, so the requests are evenly spaced.
        offset = c * interval / clients if interval else 0.0
        mine = paths[c::clients] if len(paths) >= clients else paths
        worker = ctx.Process(target=_client, args=(port, mine, start_at + offset, until, interval, out))
        worker.start()
        workers.append(worker)
    results = [out.get(timeout=duration + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    latencies = sorted(v * 1000 for found, _, _ in results for v in found) or [float("nan")]
    errors = sum(e for _, e, _ in results)
    # Until the last answer: a server that falls behind a fixed rate answers it more slowly.
    elapsed = max(duration, max(finished for _, _, finished in results) - start_at)
    return {
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
        "max_ms": round(latencies[-1], 2),
        "requests": len(latencies),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms, all bookable (default 2000)")
    parser.add_argument("--bookings", type=int, default=20_000, help="bookings over 30 days (default 20000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="fixed rate of campus queries (default 200/s)"
    )
    parser.add_argument("--serve-ceiling", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling, args.port)
        return 0

    lines = []
    with tempfile.TemporaryDirectory(prefix="officegw-avail-") as tmp, start_mosquitto() as broker:
        workdir = Path(tmp)
        progress(f"gateway with {args.rooms} rooms")
        gateway, port = start_gateway(broker, workdir, args.rooms)
        try:
            files = booking_calendars(args.rooms, args.bookings, datetime.now(UTC))
            progress(f"seeding {args.bookings} bookings: {len(files)} calendar imports")
            began = time.perf_counter()
            created = 0
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                for body in files:
                    response = http.post(
                        "/v1/bookings/import", content=body, headers={"Content-Type": "text/calendar"}
                    )
                    response.raise_for_status()
                    report = response.json()
                    created += report["created"]
                    if report["skipped_count"]:
                        progress(f"skipped: {report['skipped'][:3]}")
                seeded_in = time.perf_counter() - began
                progress(f"{created} bookings in {seeded_in:.1f} s")
                room_paths = [f"/v1/rooms/r{n:04d}" for n in range(0, args.rooms, max(1, args.rooms // 200))]
                queries = {"campus": ["/v1/availability"], "filtered": [FILTERED], "room": room_paths}
                documents = {path: http.get(path).content for paths in queries.values() for path in paths}
            sizes = {name: len(documents[paths[0]]) for name, paths in queries.items()}
            measured: dict[str, dict[str, Any]] = {}
            for name, paths in queries.items():
                progress(f"gateway: {name}, closed loop, {args.clients} clients")
                measured[name] = {"gateway": load(port, paths, args.clients, args.duration)}
                progress(f"  {measured[name]['gateway']}")
            progress(f"gateway: campus at {args.rate:g} requests/s")
            campus_rate = {"gateway": load(port, queries["campus"], args.clients, args.duration, args.rate)}
            progress(f"  {campus_rate['gateway']}")
        finally:
            stop(gateway, workdir / "gateway.log")
        ceiling, ceiling_port = start_ceiling(documents, workdir)
        try:
            for name, paths in queries.items():
                progress(f"ceiling: {name}, closed loop")
                measured[name]["ceiling"] = load(ceiling_port, paths, args.clients, args.duration)
            progress(f"ceiling: campus at {args.rate:g} requests/s")
            campus_rate["ceiling"] = load(
                ceiling_port, queries["campus"], args.clients, args.duration, args.rate
            )
        finally:
            stop(ceiling, workdir / "ceiling.log")
    for name, result in measured.items():
        line = {
            "benchmark": "availability",
            "query": name,
            "mode": "closed_loop",
            "clients": args.clients,
            "response_bytes": sizes[name],
            **result,
            "ratio": round(result["gateway"]["requests_per_s"] / result["ceiling"]["requests_per_s"], 3),
        }
        lines.append(line)
        print(json.dumps(line), flush=True)
    rate_line = {
        "benchmark": "availability",
        "query": "campus",
        "mode": "fixed_rate",
        "rate": args.rate,
        "clients": args.clients,
        **campus_rate,
    }
    print(json.dumps(rate_line), flush=True)
    summary = {
        "benchmark": "availability",
        "rooms": args.rooms,
        "bookings": created,
        "seed_bookings_per_s": round(created / seeded_in),
        "campus_p99_ms_at_rate": campus_rate["gateway"]["p99_ms"],
        "campus_ratio": lines[0]["ratio"],
        "target_met": campus_rate["gateway"]["p99_ms"] < 20 and lines[0]["ratio"] >= 0.5,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
