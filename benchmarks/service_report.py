"""The service report over a large store, against scanning the same window in SQLite.

Fills a fresh SQLite store (the gateway's schema) with `--rooms` rooms x `--days` days
of command events (each command sent and confirmed), occupancy events between them and
an alert in about a third of the rooms each day (half of them acknowledged), then
times, `--repeat` times each, alternating:

- `report`: `build_service` grouped by room and day (what `GET /v1/reports/service`
  computes, without HTTP): a row per room and day;
- `report_buildings`: the same grouped by building over the whole window (4 rows);
- `scan`: `SELECT count(*), sum(length(data))` over every event of the window (the
  cost of reading the same rows, the ceiling);
- `scan_kinds`: the same over the command and alert events only.

One JSON line with medians, min and max and the report/scan ratio on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import settings_from_dict
from gateway.reports.service import build_service
from gateway.reports.table import Bucket, GroupBy, ReportWindow
from gateway.storage.alert_store import AlertStore
from gateway.storage.records import StoredEvent
from gateway.storage.sqlite_store import Store

ZONE = "Europe/Berlin"


def fill(store: Store, rooms: int, days: int, per_day: int, start: float) -> int:
    rng = random.Random(1)
    seq = 0
    batch: list[tuple[int, StoredEvent]] = []
    alerts = []
    for day in range(days):
        for r in range(rooms):
            room = f"r{r}"
            for _ in range(per_day):
                at = start + day * 86_400 + rng.random() * 86_400
                ms = rng.uniform(50, 900)
                sent = {"device": f"{room}-light", "status": "sent", "attempt": 1, "device_kind": "light"}
                confirmed = {"device": f"{room}-light", "status": "confirmed", "device_kind": "light",
                             "confirm_ms": ms, "attempts": 1}  # fmt: skip
                occupancy = {"old": "vacant", "new": "occupied"}
                for data, kind, when in ((sent, "command", at), (confirmed, "command", at + ms / 1000),
                                         (occupancy, "occupancy", at)):  # fmt: skip
                    seq += 1
                    batch.append((seq, StoredEvent(kind, room, None, None, when, data)))
            if rng.random() < 0.3:
                seq += 1
                batch.append(
                    (
                        seq,
                        StoredEvent("alert", room, None, None, start + day * 86_400 + 3600, {"rule": "co2"}),
                    )
                )
                alerts.append((seq, start + day * 86_400 + 3600))
            if len(batch) >= 20_000:
                store.commit([], batch, [], 0.0)
                batch = []
    store.commit([], batch, [], 0.0)
    lifecycle = AlertStore(store)
    for alert, raised in alerts[::2]:
        lifecycle.acknowledge(alert, "ops", None, raised + rng.uniform(60, 3600))
    return seq


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=4, help="commands per room and day")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    zone = ZoneInfo(ZONE)
    start = datetime(2026, 10, 1, tzinfo=zone).timestamp()
    end = start + args.days * 86_400
    rooms = [
        {"id": f"r{i}", "building": f"b{i % 4}", "floor": i % 10, "type": "meeting"}
        for i in range(args.rooms)
    ]
    settings = settings_from_dict({"site": {"timezone": ZONE, "rooms": rooms}})
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch) / "officegw.db")
        began = time.perf_counter()
        events = fill(store, args.rooms, args.days, args.per_day, start)
        print(f"{events} events written in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        window = ReportWindow(
            datetime.fromtimestamp(start, zone),
            datetime.fromtimestamp(end, zone),
            ZONE,
            GroupBy.ROOM,
            Bucket.DAY,
        )

        def scan(kinds: str = "") -> Any:
            with store.connection() as db:
                return db.execute(
                    f"SELECT count(*), sum(length(data)) FROM events WHERE at >= ? AND at < ? {kinds}",
                    (start, end),
                ).fetchone()

        by_building = replace(window, group_by=GroupBy.BUILDING, bucket=Bucket.NONE)
        results: dict[str, list[float]] = {"report": [], "report_buildings": [], "scan": [], "scan_kinds": []}
        for _ in range(args.repeat):
            results["report"] += timed(lambda: build_service(store, window, settings), 1)
            results["report_buildings"] += timed(lambda: build_service(store, by_building, settings), 1)
            results["scan"] += timed(scan, 1)
            results["scan_kinds"] += timed(lambda: scan("AND kind IN ('command', 'alert')"), 1)
        rows = len(build_service(store, window, settings).rows)
        store.close()
    summary: dict[str, Any] = {"rooms": args.rooms, "days": args.days, "events": events, "report_rows": rows}
    for name, times in results.items():
        summary[name] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                         "max_s": round(max(times), 3)}  # fmt: skip
    for name in ("report", "report_buildings"):
        summary[f"{name}_over_scan"] = round(summary[name]["median_s"] / summary["scan"]["median_s"], 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
