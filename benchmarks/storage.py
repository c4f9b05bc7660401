"""What durable history costs.

Two measurements, each next to its ceiling in the same run:

1. History write throughput: realistic readings committed by `gateway.storage.sqlite_store.Store`
   as the history writer commits them under load (a batch per 50 ms commit
   interval at 15,000 readings/s: the actuation benchmark's 5,000 msgs/s) and
   merged into their series once a second's worth is in (the clustered key that
   makes redelivery idempotent), against the same rows appended in the same
   batches to a bare table with the same SQLite file settings (no key, no
   index): the ceiling.
2. Ingest with storage on: `officegw run` draining the same backlog (see
   benchmarks/ingest.py) three times: history off (messages acknowledged on
   arrival), history on (every reading committed before its message is
   acknowledged), and history on plus the InfluxDB export into a private
   VictoriaMetrics (Debian's `victoria-metrics`, as in the tests).
   Target: storage and export cost < 20 % of ingest throughput (ratio >= 0.8).

Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import measure_gateway, progress
from gateway.storage.records import Reading
from gateway.storage.sqlite_store import Store
from simulators.broker import start_mosquitto
from simulators.loadgen import mixed_messages
from tests.victoria import VictoriaMetrics

PREFIX = "office"
BATCH = 750  # 50 ms at 15,000 readings/s
MERGE_EVERY = 20  # batches: the writer merges about once a second


def readings(count: int) -> list[Reading]:
    rng = random.Random(7)
    t0 = time.time() - 86_400
    metrics = ("co2", "temperature", "humidity", "illuminance", "occupancy", "power")
    return [
        Reading(
            f"dev-{i % 2000}",
            f"room-{i % 500}",
            "hq",
            str(i % 5),
            metrics[i % len(metrics)],
            rng.uniform(0, 1000),
            t0 + i * 0.01,
            t0 + i * 0.01,
            "environment",
        )
        for i in range(count)
    ]


def history_write(rows: list[Reading], workdir: Path) -> dict[str, float]:
    store = Store(workdir / "history.db")
    started = time.perf_counter()
    for n, i in enumerate(range(0, len(rows), BATCH), start=1):
        store.commit(rows[i : i + BATCH], [], [], time.time())
        if n % MERGE_EVERY == 0:
            store.merge_recent()
    store.merge_recent()
    elapsed = time.perf_counter() - started
    store.close()

    bare = sqlite3.connect(workdir / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=NORMAL")
    bare.execute("CREATE TABLE readings (device, metric, ts, value, room, received_at)")
    values = [(r.device_id, r.metric, r.ts, r.value, r.room_id, r.received_at) for r in rows]
    started = time.perf_counter()
    for i in range(0, len(values), BATCH):
        bare.execute("BEGIN")
        bare.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)", values[i : i + BATCH])
        bare.execute("COMMIT")
    ceiling = time.perf_counter() - started
    bare.close()
    return {"rows_per_s": len(rows) / elapsed, "ceiling_rows_per_s": len(rows) / ceiling}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=500_000, help="readings written in part 1 (default 500000)"
    )
    parser.add_argument(
        "--messages", type=int, default=200_000, help="backlog per ingest phase (default 200000)"
    )
    parser.add_argument("--rooms", type=int, default=500, help="rooms (default 500)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="officegw-storage-") as tmp:
        progress(f"history write: {args.rows} readings in batches of {BATCH}, merged every {MERGE_EVERY}")
        write = history_write(readings(args.rows), Path(tmp))
        print(
            json.dumps(
                {
                    "benchmark": "history_write",
                    "rows": args.rows,
                    "batch": BATCH,
                    "merge_every_batches": MERGE_EVERY,
                    "rows_per_s": round(write["rows_per_s"]),
                    "ceiling_rows_per_s": round(write["ceiling_rows_per_s"]),
                    "ratio": round(write["rows_per_s"] / write["ceiling_rows_per_s"], 3),
                }
            ),
            flush=True,
        )

        progress(f"generating {args.messages} mixed payloads over {args.rooms} rooms")
        messages = mixed_messages(args.messages, rooms=args.rooms, prefix=PREFIX, start_ts=time.time() - 3600)
        rates: dict[str, float] = {}
        with start_mosquitto() as broker, VictoriaMetrics() as victoria:
            influx = {"url": victoria.url, "token": "t", "org": "o", "bucket": "b"}
            modes: tuple[tuple[str, dict[str, object]], ...] = (
                ("off", {"storage": {"history": False}}),
                ("on", {"storage": {"history": True}}),
                ("on_influx", {"storage": {"history": True}, "influxdb": influx}),
            )
            for mode, extra in modes:
                progress(f"ingest, storage {mode}")
                workdir = Path(tmp) / f"storage-{mode}"
                workdir.mkdir()
                result = measure_gateway(broker, messages, args.publishers, workdir, args.rooms, extra)
                rates[mode] = result["msgs_per_s"]
                progress(f"storage {mode}: {result['msgs_per_s']:.0f} msgs/s")
                if mode == "on":
                    stored = Store(workdir / "officegw.db")
                    rates["stored_readings"] = stored.count_readings()
                    stored.close()
        print(
            json.dumps(
                {
                    "benchmark": "ingest_with_storage",
                    "messages": args.messages,
                    "storage_off_msgs_per_s": round(rates["off"]),
                    "history_on_msgs_per_s": round(rates["on"]),
                    "history_and_influx_on_msgs_per_s": round(rates["on_influx"]),
                    "ratio_history": round(rates["on"] / rates["off"], 3),
                    "ratio_history_and_influx": round(rates["on_influx"] / rates["off"], 3),
                    "readings_stored": int(rates["stored_readings"]),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
