"""What the shared store (PostgreSQL, `storage.url`) adds to each history commit.

With a shared store, the history writer commits each batch's events, room states
and device states to PostgreSQL after the SQLite file and before acknowledging
(gateway/storage/shared_sink.py). This measures that second commit, on a private
PostgreSQL (tests/postgres.py: loopback, fsync off, as a PostgreSQL on a
battery-backed or replicated disk behaves; a local fsync adds the disk's flush
time), in batches as the writer makes them under load: per 50 ms commit interval,
`--events` events, `--rooms` room states and `--devices` device states. Next to it
in the same run:

- the same batches committed to the gateway's SQLite file (`Store.commit`, no
  readings): what every batch already costs;
- the floor: an empty transaction on the same pooled connection (one round trip
  and a commit), what any PostgreSQL write per batch costs at least.

Prints one JSON line. Run: `.venv/bin/python benchmarks/shared_store.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.storage.postgres_store import PostgresStore
from gateway.storage.records import StoredEvent
from gateway.storage.sqlite_store import Store
from tests.postgres import PostgresServer

Batch = tuple[list[tuple[int, StoredEvent]], list[tuple[str, bytes]], list[tuple[str, str, bytes]]]


def batches(count: int, events: int, rooms: int, devices: int) -> list[Batch]:
    made: list[Batch] = []
    seq = 0
    t0 = time.time()
    for b in range(count):
        logged = []
        for _ in range(events):
            seq += 1
            room = f"room-{seq % 2000}"
            logged.append((seq, StoredEvent("occupancy", room, "hq", "2", t0 + seq, {"new": "occupied"})))
        state = orjson.dumps({"room_id": "x", "occupancy": {"state": "occupied"}})
        states = [(f"room-{(b * rooms + i) % 2000}", state) for i in range(rooms)]
        device = orjson.dumps({"ts": t0 + b, "digest": "x"})
        device_states = [
            (f"dev-{(b * devices + i) % 20000}", f"room-{i % 2000}", device) for i in range(devices)
        ]
        made.append((logged, states, device_states))
    return made


def per_second(commit: object, work: list[Batch]) -> tuple[float, float]:
    """(batches a second, p99 of one commit in ms)."""
    assert callable(commit)
    took: list[float] = []
    started = time.perf_counter()
    for events, rooms, devices in work:
        t = time.perf_counter()
        commit(events, rooms, devices)
        took.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    took.sort()
    return len(work) / elapsed, took[int(len(took) * 0.99)] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20, help="events a batch (default 20)")
    parser.add_argument("--rooms", type=int, default=20, help="room states a batch (default 20)")
    parser.add_argument("--devices", type=int, default=100, help="device states a batch (default 100)")
    args = parser.parse_args()
    work = batches(args.batches, args.events, args.rooms, args.devices)
    with PostgresServer() as server, tempfile.TemporaryDirectory() as scratch:
        shared = PostgresStore(server.url_for("officegw"), "gw-bench", pool_size=1)
        local = Store(Path(scratch) / "officegw.db")
        try:
            pg_rate, pg_p99 = per_second(lambda e, r, d: shared.commit((), e, r, 0.0, d), work)
            file_rate, file_p99 = per_second(lambda e, r, d: local.commit((), e, r, 0.0, d), work)

            def empty(*_: object) -> None:
                with shared.sql_transaction() as db:
                    db.execute("SELECT 1")

            floor_rate, floor_p99 = per_second(empty, work)
        finally:
            shared.close()
            local.close()
    print(
        json.dumps(
            {
                "benchmark": "shared_store_commit",
                "batches": args.batches,
                "events_per_batch": args.events,
                "rooms_per_batch": args.rooms,
                "devices_per_batch": args.devices,
                "postgresql_batches_per_s": round(pg_rate),
                "postgresql_p99_ms": round(pg_p99, 2),
                "sqlite_file_batches_per_s": round(file_rate),
                "sqlite_file_p99_ms": round(file_p99, 2),
                "floor_empty_transaction_per_s": round(floor_rate),
                "floor_p99_ms": round(floor_p99, 2),
                "ratio_to_floor": round(pg_rate / floor_rate, 3),
                "ratio_to_file": round(pg_rate / file_rate, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
