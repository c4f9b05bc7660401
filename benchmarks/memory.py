"""Memory per device: one gateway, 2,000 rooms and 20,000 native devices.

`officegw run` starts with the rooms in its site config and no device yet; its
resident memory (RSS) is read once it is ready. Then every device reports twice
(a multi-sensor's fields: motion, light level, temperature, humidity, CO2, battery;
power and energy for lights) through a private mosquitto; once all of them are
registered and every message is committed, RSS is read again. The figure is the
growth divided by the devices: registry entries, last states, data-quality
trackers, room evidence, ingest's caches and the allocator's share, everything a
device costs while the gateway runs.

The reference it is judged against (issue 17): 2 KB a device. For scale the JSON
also gives the size of what the devices said last (their last states as compact
JSON), the least any gateway keeping them must hold.

SQLite's page cache (up to 64 MiB) and the writer's buffers grow with the history
written, not with the devices, so `kb_per_device` is measured against a reference
run in the same benchmark: the same rooms and the same number of messages from
the devices of 10 rooms only. `kb_per_device_all_growth` is the plain growth over
the devices, caches included.

Prints one JSON line: kb_per_device, rss_ready_mb, rss_loaded_mb, ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import GatewayProcess, _metric, _wait, progress, publish_backlog
from simulators.broker import free_port, start_mosquitto
from simulators.loadgen import rooms_for

PREFIX = "office"
KINDS = ("pir", "env", "light", "counter", "door", "co2", "radar", "plug", "desk", "lux")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def payload(kind: str, n: int, ts: float) -> dict[str, Any]:
    if kind == "light" or kind == "plug":
        return {
            "state": "ON" if n % 2 else "OFF",
            "brightness": 200,
            "power": 9.5 + n,
            "energy": 1.25 + n,
            "ts": ts,
        }
    if kind in ("pir", "radar"):
        return {"occupancy": bool(n % 2), "illuminance": 300 + n, "battery": 87, "ts": ts}
    if kind == "counter":
        return {"people": n % 4, "entered": 1, "exited": 0, "ts": ts}
    if kind == "door":
        return {"contact": bool(n % 2), "battery": 91, "ts": ts}
    return {
        "temperature": 21.5,
        "humidity": 41.0,
        "co2": 612 + n,
        "illuminance": 350,
        "battery": 77,
        "ts": ts,
    }


def device_messages(rooms: list[dict[str, Any]], per_room: int, rounds: int) -> list[tuple[str, bytes]]:
    start = time.time() - rounds * 60 - 60
    out = []
    for n in range(rounds):
        for index, room in enumerate(rooms):
            for k in range(per_room):
                kind = KINDS[k % len(KINDS)]
                topic = f"{PREFIX}/hq/{room['floor']}/{room['id']}/{room['id']}-{kind}{k}"
                ts = round(start + n * 60 + index * 0.001 + k * 0.0001, 4)
                out.append((topic, orjson.dumps(payload(kind, n, ts))))
    return out


def loaded_rss(
    rooms: list[dict[str, Any]], messages: list[tuple[str, bytes]], devices: int, publishers: int
) -> tuple[float, float, int]:
    """(RSS when ready, RSS once every message is committed, devices listed) of a
    gateway with `rooms` configured, fed `messages`."""
    with tempfile.TemporaryDirectory(prefix="officegw-memory-") as tmp, start_mosquitto() as broker:
        port = free_port()
        config = Path(tmp) / "officegw.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "gateway": {"id": f"memory-{os.getpid()}", "log_level": "WARNING"},
                    "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                    "api": {"host": "127.0.0.1", "port": port},
                    "storage": {"path": str(Path(tmp) / "officegw.db")},
                    "registry": {"max_auto_devices": max(devices, 10_000)},
                    "quality": {"max_rate": 1_000, "burst": 1_000},
                    "site": {"rooms": rooms},
                }
            )
        )
        gateway = GatewayProcess(config, port)
        # A loaded machine answers /metrics slowly while 40,000 messages go in; what is
        # measured is memory, not how fast it answers.
        gateway.http.timeout = httpx.Timeout(120)
        gateway.start()
        try:
            gateway.wait_http(timeout=900)  # start-up with 2,000 rooms, on a busy machine
            _wait(lambda: gateway.http.get("/readyz").status_code == 200, 600, "gateway ready")
            time.sleep(2.0)  # let start-up garbage settle before the first reading
            ready = rss_mb(gateway.pid)
            progress(f"ready at {ready:.1f} MB RSS; {len(messages)} messages from {devices} devices")
            publish_backlog(broker, messages, publishers)

            def all_in() -> bool:
                received = _metric(gateway.http, "officegw_messages_received_total")
                pending = _metric(gateway.http, "officegw_ingest_uncommitted_messages")
                return received >= len(messages) and pending == 0

            _wait(all_in, 600, "every message received and committed")
            # At rest after the burst: the writer gives memory back once it has been
            # quiet for a moment (RELEASE_AFTER_ROWS); measuring before that, as a
            # fixed sleep sometimes did, counted the burst's transient memory.
            _wait(
                lambda: _metric(gateway.http, "officegw_history_memory_releases_total") >= 1,
                60,
                "the history writer giving memory back after the burst",
            )
            time.sleep(1.0)
            loaded = rss_mb(gateway.pid)
            # After the reading: the listing itself allocates.
            listed = int(gateway.http.get("/v1/devices", timeout=60).json()["count"])
        finally:
            gateway.stop()
    progress(f"loaded: {loaded:.1f} MB RSS, {listed} devices listed")
    return ready, loaded, listed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms (default 2000)")
    parser.add_argument("--devices-per-room", type=int, default=10, help="native devices a room (default 10)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    args = parser.parse_args()
    devices = args.rooms * args.devices_per_room
    rooms = rooms_for(args.rooms)
    messages = device_messages(rooms, args.devices_per_room, rounds=2)
    last_said = sum(len(body) for _, body in messages[-devices:])
    # The reference: the same rooms and the same number of messages (so the same
    # history writes, SQLite page cache and buffers) from 10 rooms' devices only.
    few_rooms = 10
    few = few_rooms * args.devices_per_room
    reference = device_messages(rooms[:few_rooms], args.devices_per_room, rounds=len(messages) // few)
    progress(f"reference: {len(reference)} messages from {few} devices")
    ref_ready, ref_loaded, _ = loaded_rss(rooms, reference, few, args.publishers)
    progress(f"campus: {len(messages)} messages from {devices} devices")
    ready, loaded, listed = loaded_rss(rooms, messages, devices, args.publishers)
    result = {
        "benchmark": "memory",
        "rooms": args.rooms,
        "devices": devices,
        "devices_listed": listed,
        "messages": len(messages),
        "rss_ready_mb": round(ready, 1),
        "rss_loaded_mb": round(loaded, 1),
        "reference_devices": few,
        "reference_rss_ready_mb": round(ref_ready, 1),
        "reference_rss_loaded_mb": round(ref_loaded, 1),
        # What the devices themselves cost: against the same messages from few devices.
        "kb_per_device": round((loaded - ref_loaded) * 1024 / (devices - few), 2),
        # Everything the loading added, bounded caches (SQLite's page cache) included.
        "kb_per_device_all_growth": round((loaded - ready) * 1024 / devices, 2),
        "goal_kb_per_device": 2.0,
        "last_state_json_bytes_per_device": round(last_said / devices, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
