"""Standby takeover: SIGKILL of a shard's active gateway to the standby serving it.

Set-up: a private PostgreSQL (`tests/postgres.py`: initdb + pg_ctl) and mosquitto,
a shard of `--rooms` rooms, `officegw run` as the active and `officegw run
--standby` on the same SQLite file (`storage.url` on the PostgreSQL), devices
publishing QoS 1 readings at `--rate` a second throughout.

Each round SIGKILLs the active and times, from the kill: the standby holding the
lock (its `officegw_shard_active_since_seconds`), its `/readyz` answering 200, and
(`officegw_shard_takeover_seconds`) from the lock to the broker session resumed.
The killed one then starts again as the next round's standby.

The reference, in the same run: what a service manager does without a standby,
SIGKILL and start `officegw run` again, to `/readyz` 200. `ratio` is the takeover
(kill to ready) over that restart. At the end every reading published must be
stored once (`readings_lost` 0).

    .venv/bin/python benchmarks/takeover.py [--rounds 5] [--rooms 200] [--rate 500]

Prints one JSON line per round and a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.broker import BrokerProcess, free_port, start_mosquitto
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "office"
T0 = time.time() - 3600


class Node:
    """One `officegw run` of the shard, on an API port of its own."""

    def __init__(self, config: Path, name: str, log: Path) -> None:
        self.name = name
        self.port = free_port()
        self._config, self._log = config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=2)

    def start(self, *, standby: bool) -> None:
        with self._log.open("ab") as log:
            args = ["--port", str(self.port), *(["--standby"] if standby else [])]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(self._config), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def metric(self, name: str) -> float | None:
        try:
            text = self.http.get("/metrics").text
        except httpx.TransportError:
            return None
        for line in text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def waiting(self) -> bool:
        return self.metric("officegw_shard_active") == 0.0

    def ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.005)


class Fleet:
    """Devices publishing QoS 1 readings at a steady rate, one row each."""

    def __init__(self, broker: BrokerProcess, rooms: int, rate: float) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fleet-{os.getpid()}", clean_session=False
        )
        self._client.max_inflight_messages_set(100)
        self._acked = 0
        self._client.on_publish = lambda *args: self._count()
        self._lock = threading.Lock()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._rooms, self._rate = rooms, rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _count(self) -> None:
        with self._lock:
            self._acked += 1

    def _run(self) -> None:
        begun = time.perf_counter()
        while not self._stop.is_set():
            delay = begun + self.sent / self._rate - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
                continue
            n = self.sent
            room = n % self._rooms
            topic = f"{PREFIX}/hq/1/r{room}/r{room}-env"
            self._client.publish(topic, orjson.dumps({"co2": n, "ts": T0 + n * 0.001}), qos=1)
            self.sent += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        wait(lambda: self._acked >= self.sent, 60, "a PUBACK for every reading")
        self._client.disconnect()
        self._client.loop_stop()
        return self.sent


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(DISTINCT ts) FROM readings_all").fetchone()[0])
    except sqlite3.Error:
        return 0


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="takeovers, and as many plain restarts")
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500, help="QoS 1 readings a second, throughout")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="officegw-takeover-"))
    broker = start_mosquitto()
    postgres = PostgresServer().start()
    db = tmp / "shard.db"
    config = tmp / "shard.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"takeover-{os.getpid()}", "log_level": "INFO"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                "api": {"host": "127.0.0.1"},
                "storage": {"path": str(db), "url": postgres.url},
                "occupancy": {"vacancy_timeout": 3600},
                "site": {"rooms": [{"id": f"r{i}", "building": "hq", "floor": 1} for i in range(args.rooms)]},
            }
        )
    )
    nodes = [Node(config, "a", tmp / "a.log"), Node(config, "b", tmp / "b.log")]
    fleet = Fleet(broker, args.rooms, args.rate)
    takeovers: list[dict[str, float]] = []
    restarts: list[float] = []
    try:
        active, standby = nodes
        active.start(standby=False)
        wait(active.ready, 60, "the first active ready")
        fleet.start()
        for _ in range(args.rounds):
            standby.start(standby=True)
            wait(standby.waiting, 60, "the standby waiting")
            time.sleep(1.0)  # a second of readings in flight before the kill
            killed, killed_wall = time.perf_counter(), time.time()
            active.kill()
            wait(standby.ready, 60, "the standby ready")
            ready = time.perf_counter() - killed
            since = standby.metric("officegw_shard_active_since_seconds") or float("nan")
            round_ = {
                "kill_to_lock_s": round(since - killed_wall, 3),
                "kill_to_ready_s": round(ready, 3),
                "lock_to_session_s": round(standby.metric("officegw_shard_takeover_seconds") or -1, 3),
            }
            takeovers.append(round_)
            print(json.dumps({"benchmark": "takeover", **round_}), flush=True)
            active, standby = standby, active
        for _ in range(args.rounds):
            time.sleep(1.0)
            killed = time.perf_counter()
            active.kill()
            active.start(standby=False)
            wait(active.ready, 60, "the restarted gateway ready")
            restarts.append(time.perf_counter() - killed)
            print(json.dumps({"benchmark": "takeover", "restart_s": round(restarts[-1], 3)}), flush=True)
        sent = fleet.stop()
        deadline = time.monotonic() + 60
        while stored(db) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        ready_times = [t["kill_to_ready_s"] for t in takeovers]
        print(
            json.dumps(
                {
                    "benchmark": "takeover",
                    "rounds": args.rounds,
                    "rooms": args.rooms,
                    "rate": args.rate,
                    "kill_to_lock_s": summary([t["kill_to_lock_s"] for t in takeovers]),
                    "lock_to_session_s": summary([t["lock_to_session_s"] for t in takeovers]),
                    "kill_to_ready_s": summary(ready_times),
                    "restart_to_ready_s": summary(restarts),
                    "ratio": round(statistics.median(ready_times) / statistics.median(restarts), 3),
                    "readings_published": sent,
                    "readings_lost": sent - stored(db),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
            )
        )
    finally:
        for node in nodes:
            node.stop()
        postgres.close()
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
