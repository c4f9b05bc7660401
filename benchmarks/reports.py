"""Reports over a campus month: the utilisation, energy and comfort reports of 2,000 rooms
over 30 days of history, against the time SQLite takes to scan the same rows.

The history is written straight into a gateway SQLite file (the schema of
`Store`, no MQTT: 19 million readings through the broker would take longer than
the rest together), as a campus would leave it: per room, temperature, CO2 and the
light's power every `--interval` seconds, on/off and people counts when they change,
an energy meter on every fourth room, occupancy changes and the rule's OFF commands
in the event log, bookings in meeting rooms (one no-show a day). Days are the
site's (Europe/Berlin); meetings only on weekdays.

Then `officegw run` serves that file (its own process and mosquitto), and each
report is asked for over HTTP for the whole campus and window, by day:
`group_by=room` (60,000 rows) and `group_by=building`. The ceiling is measured in
the same run, in this process: SQLite scanning the rows the report reads (the
same key ranges: its metrics over its window, the window's events and bookings),
counting and summing them in C, on a connection of its own. `ratio` = answer /
ceiling, in wall time. `cpu_ratio` compares CPU seconds in this process: the
report built by room and day with the gateway's code and rendered as JSON,
against the scan: on a machine shared with other work wall times stretch with the
load, CPU seconds much less.

Progress on stderr; one JSON line per report on stdout, then a summary line.
`--db FILE` keeps the generated file for the next run (it is made again only when
its parameters differ).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import settings_from_dict
from gateway.reports.catalog import build_report
from gateway.reports.rooms import report_rooms
from gateway.reports.table import Bucket, GroupBy, ReportWindow
from gateway.storage.report_queries import SqliteReportSource
from gateway.storage.sqlite_store import Store
from rules.site_time import day_start, local_date
from simulators.broker import free_port, start_mosquitto

ZONE_NAME = "Europe/Berlin"
ZONE = ZoneInfo(ZONE_NAME)
BUILDINGS, FLOORS = 4, 10
TYPES = ("meeting", "office", "open", "phone_booth")
CAPACITIES = {"meeting": (6, 8, 12), "office": (2, 4), "open": (12, 20), "phone_booth": (1,)}
HOLD = 7_200.0
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
LIGHT_W = 40.0
PLUG_W = 100.0
OCCUPIED = '{"old":"vacant","new":"occupied"}'
VACANT = '{"old":"occupied","new":"vacant"}'
OFF = orjson.dumps(
    {
        "device": "ROOM-light",
        "payload": {"state": "OFF"},
        "rule": "lights-off-when-vacant",
        "attempt": 1,
        "status": "sent",
    }
).decode()
REPORTS = {
    # name: (metrics read, each with its reach before and after the window)
    "utilization": [("people", HOLD, 0.0)],
    "energy": [("energy", HOLD, HOLD), ("power", HOLD, 0.0), ("on", HOLD, 0.0)],
    "comfort": [("temperature", HOLD, 0.0), ("co2", HOLD, 0.0)],
}


def progress(message: str) -> None:
    print(f"[reports-bench] {message}", file=sys.stderr, flush=True)


def rooms_of(count: int) -> list[dict[str, Any]]:
    per_floor = max(1, count // (BUILDINGS * FLOORS))
    rooms = []
    for n in range(count):
        kind = TYPES[n % len(TYPES)]
        capacities = CAPACITIES[kind]
        rooms.append(
            {
                "id": f"r{n:04d}",
                "building": f"b{n // (per_floor * FLOORS) % BUILDINGS}",
                "floor": n // per_floor % FLOORS + 1,
                "type": kind,
                "capacity": capacities[n % len(capacities)],
                "bookable": kind == "meeting",
            }
        )
    return rooms


def window(days: int) -> tuple[float, float]:
    """The last `days` whole site days before today."""
    today = local_date(time.time(), ZONE)
    return day_start(today - timedelta(days=days), ZONE), day_start(today, ZONE)


def meetings(rng: random.Random, day: date) -> list[tuple[float, float]]:
    """A weekday's occupied spans of one room: 2 to 5 between 08:00 and 18:00."""
    if day.weekday() >= 5:
        return []
    opens = day_start(day, ZONE) + 8 * 3_600
    spans = []
    at = opens + rng.randrange(0, 3_600, 60)
    for _ in range(rng.randint(2, 5)):
        length = rng.randrange(1_800, 7_200, 300)
        if at + length > opens + 10 * 3_600:
            break
        spans.append((float(at), float(at + length)))
        at += length + rng.randrange(900, 5_400, 300)
    return spans


def inside(times: list[float], spans: list[tuple[float, float]]) -> list[bool]:
    """For each time (sorted), whether it falls in one of the spans (sorted, disjoint)."""
    found, k = [], 0
    for t in times:
        while k < len(spans) and spans[k][1] <= t:
            k += 1
        found.append(k < len(spans) and spans[k][0] <= t)
    return found


def event_seq(at: float, room: int, n: int) -> int:
    """Sequence numbers in time order, as the gateway's event log numbers events."""
    return (int(at) * 10_000 + room) * 4 + n


def generate(
    path: Path, rooms: list[dict[str, Any]], start: float, end: float, interval: float, seed: int
) -> dict[str, int]:
    """The history of every room over the days from `start` to `end`, written in key
    order; returns what was written."""
    Store(path).close()  # the schema, by the gateway's own migrations
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    first_day = local_date(start, ZONE)
    days = (local_date(end, ZONE) - first_day).days
    steps = int((end - start + 2 * HOLD) // interval)
    counts = {"readings": 0, "events": 0, "bookings": 0}
    began = time.perf_counter()
    times = [start - HOLD + k * interval for k in range(steps)]
    workdays = [
        (day_start(day, ZONE) + 8 * 3_600, day_start(day, ZONE) + 19 * 3_600)
        for day in (first_day + timedelta(days=d) for d in range(-1, days + 2))
        if day.weekday() < 5
    ]
    plug_on = inside(times, workdays)
    for index, room in enumerate(rooms):
        rid = room["id"]
        rng = random.Random(seed * 1_000_003 + index)
        lit: list[tuple[float, float]] = []
        for d in range(days):
            lit += meetings(rng, first_day + timedelta(days=d))
        rows: list[tuple[str, str, float, str, float, float]] = []
        # By metric, in key order (room, metric, ts, device).
        rows += [(rid, "co2", t, f"{rid}-env", 420.0 + (k * 53 % 900), t) for k, t in enumerate(times)]
        if index % 4 == 0:
            kwh, step = 1_000.0, PLUG_W * interval / 3_600_000
            for t, on in zip(times, plug_on, strict=True):
                kwh += step if on else 0.0
                rows.append((rid, "energy", t, f"{rid}-plug", round(kwh, 6), t))
        switches = sorted([(s, 1.0) for s, _ in lit] + [(e, 0.0) for _, e in lit])
        rows += [(rid, "on", t, f"{rid}-light", v, t) for t, v in switches]
        counts_in = [(s, float(rng.randint(1, room["capacity"] + 2))) for s, _ in lit]
        people = sorted(counts_in + [(e, 0.0) for _, e in lit])
        rows += [(rid, "people", t, f"{rid}-counter", v, t) for t, v in people]
        lit_at = inside(times, lit)
        power = sorted(
            [(t, LIGHT_W if on else 0.0) for t, on in zip(times, lit_at, strict=True)]
            + [(t, LIGHT_W * v) for t, v in switches]
        )
        rows += [(rid, "power", t, f"{rid}-light", v, t) for t, v in power]
        rows += [
            (rid, "temperature", t, f"{rid}-env", 20.5 + (k * 37 % 70) / 10, t) for k, t in enumerate(times)
        ]
        events = []
        bookings = []
        for s, e in lit:
            events.append((event_seq(s, index, 0), s, "occupancy", rid, OCCUPIED))
            events.append((event_seq(e, index, 1), e, "occupancy", rid, VACANT))
            events.append((event_seq(e, index, 2), e, "command", rid, OFF.replace("ROOM", rid)))
            if room["bookable"]:
                bookings.append((f"{rid}-{int(s)}", rid, s, e, "ended"))
        if room["bookable"]:
            for d in range(days):
                day = first_day + timedelta(days=d)
                if day.weekday() < 5:
                    s = day_start(day, ZONE) + 18.5 * 3_600
                    bookings.append((f"{rid}-{int(s)}", rid, s, s + 1_800, "released"))
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT OR IGNORE INTO series VALUES (?, ?)", {(rid, row[1]) for row in rows})
        db.executemany("INSERT INTO events (seq, at, kind, room, data) VALUES (?, ?, ?, ?, ?)", events)
        db.executemany(
            "INSERT INTO bookings (id, room, start_at, end_at, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, 0)",
            bookings,
        )
        db.execute("COMMIT")
        counts["readings"] += len(rows)
        counts["events"] += len(events)
        counts["bookings"] += len(bookings)
        if index % 200 == 199:
            rate = counts["readings"] / (time.perf_counter() - began)
            progress(f"  {index + 1} rooms, {counts['readings']:,} readings ({rate:,.0f}/s)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return counts


def ceiling(path: Path, name: str, room_ids: list[str], start: float, end: float) -> dict[str, Any]:
    """SQLite scanning what the report reads: each metric's key ranges of every room,
    the window's events, the bookings; counted and summed, on a fresh connection."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA cache_size=-65536")
    began, cpu = time.perf_counter(), time.process_time()
    rows = 0
    rooms = json.dumps(room_ids)
    db.execute("BEGIN")
    for metric, before, after in REPORTS[name]:
        n, _ = db.execute(
            "SELECT count(*), sum(r.value) FROM json_each(?) AS j JOIN readings AS r "
            "ON r.room = j.value AND r.metric = ? AND r.ts >= ? AND r.ts < ?",
            (rooms, metric, start - before, end + after),
        ).fetchone()
        rows += n
    n, _ = db.execute(
        "SELECT count(*), sum(length(data)) FROM events WHERE at >= ? AND at < ?", (start, end)
    ).fetchone()
    rows += n
    if name == "utilization":
        n, _ = db.execute(
            "SELECT count(*), sum(end_at - start_at) FROM bookings WHERE start_at >= ? AND start_at < ?",
            (start - 7 * 86_400, end),
        ).fetchone()
        rows += n
    db.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    db.close()
    return {"seconds": elapsed, "cpu": cpu, "rows": rows}


def gateway_config(db: Path, rooms: list[dict[str, Any]], port: int) -> dict[str, Any]:
    return {
        "gateway": {"id": f"bench-reports-{os.getpid()}", "log_level": "WARNING"},
        "api": {"host": "127.0.0.1", "port": port},
        "storage": {"path": str(db)},
        "site": {"timezone": ZONE_NAME, "rooms": rooms},
        "reports": {
            "reading_hold": HOLD,
            "tariff": {
                "currency": "EUR",
                "price_per_kwh": 0.2,
                "bands": [{"start": "08:00", "end": "18:00", "weekdays": WEEKDAYS, "price_per_kwh": 0.3}],
            },
            "baseline_w": {"room_types": {"meeting": 120, "office": 40, "open": 200, "phone_booth": 20}},
        },
    }


def start_gateway(
    broker_url: str, workdir: Path, db: Path, rooms: list[dict[str, Any]]
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = workdir / "officegw.yaml"
    config.write_text(yaml.safe_dump({**gateway_config(db, rooms, port), "mqtt": {"url": broker_url}}))
    log = (workdir / "gateway.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while True:
            try:
                if http.get("/readyz").status_code == 200:
                    return proc, port
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"gateway did not become ready; see {workdir / 'gateway.log'}")
            time.sleep(0.2)


def ask(http: httpx.Client, name: str, start: float, end: float, group_by: str) -> dict[str, Any]:
    params = {
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(end, UTC).isoformat(),
        "group_by": group_by,
        "bucket": "day",
    }
    began = time.perf_counter()
    response = http.get(f"/v1/reports/{name}", params=params)
    body = response.content
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    return {"seconds": elapsed, "bytes": len(body), "rows": len(orjson.loads(body)["rows"])}


def compute(db: Path, rooms: list[dict[str, Any]], name: str, start: float, end: float) -> float:
    """CPU seconds of building the report (by room, by day) and its JSON in this process,
    with the gateway's code and the benchmark's settings."""
    settings = settings_from_dict(gateway_config(db, rooms, 0))
    window = ReportWindow(
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
        ZONE_NAME,
        GroupBy.ROOM,
        Bucket.DAY,
    )
    found = report_rooms(settings.site.rooms, settings)
    began = time.process_time()
    report = build_report(name, SqliteReportSource(db), window, found, settings.reports)
    orjson.dumps(report.as_json())
    return time.process_time() - began


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms (default 2000)")
    parser.add_argument("--days", type=int, default=30, help="days of history (default 30)")
    parser.add_argument(
        "--interval", type=float, default=900.0, help="seconds between periodic readings (default 900)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timings per measurement; the median counts (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, help="keep the generated history in this file for later runs")
    args = parser.parse_args()
    # Stopped by a signal: still stop the broker and the gateway (the `with` and `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    rooms = rooms_of(args.rooms)
    with tempfile.TemporaryDirectory(prefix="officegw-reports-") as tmp:
        workdir = Path(tmp)
        db = args.db or workdir / "officegw.db"
        manifest = db.with_suffix(".json")
        wanted = {"rooms": args.rooms, "days": args.days, "interval": args.interval, "seed": args.seed}
        kept = json.loads(manifest.read_text()) if db.exists() and manifest.exists() else {}
        if kept.get("parameters") == wanted:
            counts = kept["counts"]
            # The window the file was written for (its days, even if today has moved on).
            start, end = kept["window"]
            progress(f"reusing {db}: {counts}")
        else:
            start, end = window(args.days)
            for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                stale.unlink(missing_ok=True)
            progress(f"writing {args.days} days of {args.rooms} rooms into {db}")
            began = time.perf_counter()
            counts = generate(db, rooms, start, end, args.interval, args.seed)
            progress(f"written in {time.perf_counter() - began:.0f} s: {counts}")
            manifest.write_text(json.dumps({"parameters": wanted, "window": [start, end], "counts": counts}))
        size = db.stat().st_size
        room_ids = [room["id"] for room in rooms]
        with start_mosquitto() as broker:
            gateway, port = start_gateway(broker.url, workdir, db, rooms)
            results = []
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                    for name in REPORTS:
                        # Warm: the file in the page cache, for both.
                        ceiling(db, name, room_ids, start, end)
                        ask(http, name, start, end, "building")
                        scans = [ceiling(db, name, room_ids, start, end) for _ in range(args.repeat)]
                        by_room = [ask(http, name, start, end, "room") for _ in range(args.repeat)]
                        by_building = [ask(http, name, start, end, "building") for _ in range(args.repeat)]
                        computed = [compute(db, rooms, name, start, end) for _ in range(args.repeat)]
                        scan_s = statistics.median(s["seconds"] for s in scans)
                        room_s = statistics.median(a["seconds"] for a in by_room)
                        building_s = statistics.median(a["seconds"] for a in by_building)
                        scan_cpu = statistics.median(s["cpu"] for s in scans)
                        room_cpu = statistics.median(computed)
                        line = {
                            "benchmark": "reports",
                            "report": name,
                            "rooms": args.rooms,
                            "days": args.days,
                            "rows_scanned": scans[0]["rows"],
                            "ceiling_scan_s": round(scan_s, 3),
                            "answer_by_room_s": round(room_s, 3),
                            "answer_by_building_s": round(building_s, 3),
                            "ratio_by_room": round(room_s / scan_s, 2),
                            "ratio_by_building": round(building_s / scan_s, 2),
                            "ceiling_scan_cpu_s": round(scan_cpu, 3),
                            "report_cpu_s": round(room_cpu, 3),
                            "cpu_ratio": round(room_cpu / scan_cpu, 2),
                            "rows_by_room": by_room[0]["rows"],
                            "bytes_by_room": by_room[0]["bytes"],
                        }
                        print(json.dumps(line), flush=True)
                        progress(json.dumps(line))
                        results.append(line)
            finally:
                gateway.terminate()
                try:
                    gateway.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    gateway.kill()
                    gateway.wait()
        summary = {
            "benchmark": "reports",
            "summary": True,
            "db_bytes": size,
            **{f"{key}_written": value for key, value in counts.items()},
            **{f"ratio_{line['report']}_by_room": line["ratio_by_room"] for line in results},
            **{f"ratio_{line['report']}_by_building": line["ratio_by_building"] for line in results},
            **{f"cpu_ratio_{line['report']}": line["cpu_ratio"] for line in results},
        }
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
