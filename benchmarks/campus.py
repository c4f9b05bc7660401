"""Campus scale-out: three shards (one gateway per building) against one gateway for all.

A campus of `--rooms` rooms (2,000) with `--devices-per-room` native devices each
(10: 20,000 devices) in `--buildings` buildings (3), room ids unique across the
campus (`<building>-<room>`). Everything runs on this machine: a private mosquitto,
a private PostgreSQL (`simulators/postgres.py`: initdb + pg_ctl, random loopback
port, fsync off) holding the shared stores (`storage.url`), and `officegw`
processes. Each part compares the campus split over shards (one `officegw run` per
building, `gateway.buildings: [<building>]`, the whole campus in every site config,
as one site file is) with one gateway for all of it (the ceiling or reference the
shards are judged against, measured in the same run):

- `ingest`: a QoS 1 backlog of `--rounds` reports from every device is published
  while the gateways are away; then they drain it. Messages per second counted
  once committed (each process's `/metrics`: received less still uncommitted,
  summed). The broker is stopped (SIGSTOP) while the gateways start and goes on
  (SIGCONT) once every one answers, so the time runs from the moment they can all
  read to the last message committed, whatever their starts cost.
- `memory`: RSS of the processes once ready (rooms, no device yet) and once every
  device has reported twice and everything is committed; per device the growth
  over the devices, and the whole RSS over the devices. Goal 2 KB a device.
- `replica`: with `--bookings-per-room` bookings of every bookable room made
  through the shard that owns it, and while live readings are ingested by the shards at `--live-rate`, an
  API replica (`officegw api`) answers `GET /v1/availability` (whole campus) and
  `GET /v1/rooms/{id}` (rooms of all buildings in turn) to `--clients` (4)
  closed-loop clients for `--duration` s each: p50, p99, requests/s; the ceiling
  is the replica's very answers served from memory by Starlette
  (`benchmarks/availability.py`), under the same ingest load; the one gateway for
  all answering the same, under the same load, is given too.
- `takeover`: one shard with a standby (`officegw run --standby`, same config and
  history file); readings arrive at `--live-rate`; SIGKILL of the active, timed
  until the standby answers `/readyz` 200 and until it has committed readings.
  `--takeovers` times, alternating (the killed one comes back as the standby).
  Reference: the same shard started cold after a SIGKILL (what a process manager's
  restart costs without a standby).

Progress on stderr; one JSON line on stdout. `uptime`'s load average is part of it.

    .venv/bin/python benchmarks/campus.py                 # every part, 2,000 rooms, 20,000 devices
    .venv/bin/python benchmarks/campus.py --part ingest --part memory
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.availability import EVENTS_PER_IMPORT, load, stamp, start_ceiling
from benchmarks.availability import stop as stop_server
from benchmarks.ingest import publish_backlog
from benchmarks.memory import KINDS, payload
from simulators.broker import BrokerProcess, free_port, start_mosquitto
from simulators.loadgen import rooms_for
from simulators.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "office"
PARTS = ("ingest", "memory", "replica", "takeover")


def progress(message: str) -> None:
    print(f"[campus-bench] {message}", file=sys.stderr, flush=True)


# The campus


@dataclass(frozen=True, slots=True)
class Campus:
    buildings: tuple[str, ...]
    rooms: tuple[dict[str, Any], ...]  # DESIGN.md §3 site.rooms entries
    per_room: int

    @property
    def devices(self) -> int:
        return len(self.rooms) * self.per_room

    def rooms_of(self, building: str) -> list[dict[str, Any]]:
        return [room for room in self.rooms if room["building"] == building]


def make_campus(rooms: int, buildings: int, per_room: int) -> Campus:
    """`rooms` split evenly over buildings b1..bN, each laid out as `simulators.loadgen`
    lays out a building; room ids carry the building (`b2-orion`): site room ids are
    unique across the site, and every building has an `orion`."""
    names = tuple(f"b{n}" for n in range(1, buildings + 1))
    out: list[dict[str, Any]] = []
    for index, building in enumerate(names):
        count = rooms // buildings + (1 if index < rooms % buildings else 0)
        for room in rooms_for(count, seed=index + 1, building=building):
            out.append({**room, "id": f"{building}-{room['id']}"})
    return Campus(names, tuple(out), per_room)


def campus_messages(
    campus: Campus, rounds: int, buildings: tuple[str, ...] | None = None
) -> list[tuple[str, bytes]]:
    """Every device of `buildings` (all) reporting `rounds` times, a minute of device
    time apart, ending a minute ago; device ids `<room>-<kind><k>`."""
    start = time.time() - rounds * 60 - 60
    rooms = [r for r in campus.rooms if buildings is None or r["building"] in buildings]
    out = []
    for n in range(rounds):
        for index, room in enumerate(rooms):
            for k in range(campus.per_room):
                kind = KINDS[k % len(KINDS)]
                topic = f"{PREFIX}/{room['building']}/{room['floor']}/{room['id']}/{room['id']}-{kind}{k}"
                ts = round(start + n * 60 + index * 0.001 + k * 0.0001, 4)
                out.append((topic, orjson.dumps(payload(kind, n, ts))))
    return out


# Processes


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def metrics(http: httpx.Client) -> dict[str, float]:
    """Unlabelled samples of a /metrics page (labelled ones summed under their name)."""
    out: dict[str, float] = {}
    for line in http.get("/metrics").text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            out[name] = out.get(name, 0.0) + float(value)
    return out


@dataclass
class Node:
    """One officegw process: `run`, `run --standby` or `api`."""

    name: str
    config: Path
    command: tuple[str, ...] = ("run",)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    http: httpx.Client = field(default_factory=httpx.Client)

    @property
    def log(self) -> Path:
        return self.config.with_name(f"{self.name}.log")

    def start(self, *extra: str) -> Node:
        # A port picked just before the start (`--port`): one picked earlier may since
        # have become the source port of some client's connection.
        self.port = free_port()
        self.http.close()
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        argv = [*self.command, "--config", str(self.config), "--port", str(self.port), *extra]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *argv],
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} not running")
        return self.proc.pid

    def status(self, path: str) -> int:
        try:
            return self.http.get(path).status_code
        except httpx.TransportError:
            return 0

    def wait(self, path: str = "/readyz", timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.status(path) != 200:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {path} not 200 within {timeout} s; see {self.log}")
            time.sleep(0.05)

    def committed(self) -> float:
        """Messages whose readings are committed: received less still uncommitted (0
        while the process has no such metrics, e.g. a standby waiting)."""
        try:
            found = metrics(self.http)
        except httpx.TransportError:
            return 0.0
        return found.get("officegw_messages_received_total", 0.0) - found.get(
            "officegw_ingest_uncommitted_messages", 0.0
        )

    def rss(self) -> float:
        return rss_mb(self.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""


@contextlib.contextmanager
def running(nodes: list[Node]) -> Iterator[list[Node]]:
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@dataclass(frozen=True, slots=True)
class Setup:
    """Where this run's gateways live: the broker, the store and a work directory."""

    broker: BrokerProcess
    postgres: PostgresServer | None
    workdir: Path
    campus: Campus
    own_site: bool = False  # a shard's site config: its own buildings' rooms only
    serial: Iterator[int] = field(default_factory=itertools.count)

    def database(self, name: str) -> str | None:
        """A fresh shared-store database (None without PostgreSQL: SQLite files only)."""
        if self.postgres is None:
            return None
        return self.postgres.create_database(f"{name}_{next(self.serial)}")

    def gateway(
        self, name: str, buildings: tuple[str, ...], store_url: str | None, db: str | None = None
    ) -> Node:
        """An `officegw run` config for `buildings` (empty: the whole campus); `db`
        names its shard and SQLite file (a standby shares the active's)."""
        config = self.workdir / f"{name}.yaml"
        rooms = [
            r for r in self.campus.rooms if not (self.own_site and buildings) or r["building"] in buildings
        ]
        storage: dict[str, Any] = {"path": str(self.workdir / f"{db or name}.db")}
        if store_url is not None:
            storage["url"] = store_url
        config.write_text(
            yaml.safe_dump(
                {
                    "gateway": {
                        "id": f"campus-{db or name}",
                        "buildings": list(buildings),
                        "log_level": "WARNING",
                    },
                    "mqtt": {"url": self.broker.url, "topic_prefix": PREFIX},
                    "api": {"host": "127.0.0.1"},
                    "storage": storage,
                    "registry": {"max_auto_devices": max(self.campus.devices, 10_000)},
                    "quality": {"max_rate": 1_000, "burst": 1_000},
                    "site": {"rooms": rooms},
                }
            )
        )
        return Node(name, config)

    def topology(self, shards: bool, label: str) -> list[Node]:
        """The shards (one a building, one database) or one gateway for all."""
        url = self.database(label)
        if shards:
            return [self.gateway(f"{label}-{b}", (b,), url) for b in self.campus.buildings]
        return [self.gateway(f"{label}-all", (), url)]


# Ingest and memory


def drain(
    setup: Setup, nodes: list[Node], messages: list[tuple[str, bytes]], publishers: int
) -> dict[str, Any]:
    """Creates the gateways' sessions (first start, RSS once ready), publishes the
    backlog while they are away, starts them again and times the drain; RSS once
    everything is committed."""
    with running(nodes):
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait()
        time.sleep(2.0)  # start-up garbage settles before the first reading
        ready = sum(node.rss() for node in nodes)
    publish_rate = publish_backlog(setup.broker, messages, publishers)
    total = len(messages)
    broker_pid = setup.broker.pid
    assert broker_pid is not None
    with running(nodes):
        # The broker is stopped while the gateways start, so that they all begin the
        # drain together, when it goes on: the time is the drain's, not the starts'.
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            for node in nodes:
                node.start()
            for node in nodes:
                node.wait("/healthz")
            if sum(node.committed() for node in nodes):
                raise RuntimeError("a gateway committed while the broker was stopped")
        finally:
            began = time.perf_counter()
            os.kill(broker_pid, signal.SIGCONT)
        deadline = time.monotonic() + 900
        while (done := sum(node.committed() for node in nodes)) < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done:.0f} of {total} committed within 900 s")
            time.sleep(0.05)
        took = time.perf_counter() - began
        time.sleep(2.0)
        loaded = sum(node.rss() for node in nodes)
        listed = sum(int(node.http.get("/v1/devices", timeout=120).json()["count"]) for node in nodes)
    return {
        "msgs_per_s": total / took,
        "publish_msgs_per_s": publish_rate,
        "rss_ready_mb": ready,
        "rss_loaded_mb": loaded,
        "devices_listed": listed,
    }


def part_ingest(setup: Setup, rounds: int, publishers: int) -> dict[str, Any]:
    messages = campus_messages(setup.campus, rounds)
    progress(f"ingest: {len(messages)} messages, one gateway for all")
    one = drain(setup, setup.topology(False, "ingest_one"), messages, publishers)
    progress(f"  one gateway {one['msgs_per_s']:.0f} msgs/s; {len(setup.campus.buildings)} shards")
    shards = drain(setup, setup.topology(True, "ingest_shards"), messages, publishers)
    progress(f"  shards {shards['msgs_per_s']:.0f} msgs/s")
    return {
        "messages": len(messages),
        "shards_msgs_per_s": round(shards["msgs_per_s"]),
        "one_gateway_msgs_per_s": round(one["msgs_per_s"]),
        "ratio": round(shards["msgs_per_s"] / one["msgs_per_s"], 3),
        "publish_msgs_per_s": round(one["publish_msgs_per_s"]),
    }


def part_memory(setup: Setup, publishers: int) -> dict[str, Any]:
    devices = setup.campus.devices
    messages = campus_messages(setup.campus, 2)
    out: dict[str, Any] = {"devices": devices, "goal_kb_per_device": 2.0}
    for label, shards in (("one_gateway", False), ("shards", True)):
        progress(f"memory: {label}, {len(messages)} messages from {devices} devices")
        found = drain(setup, setup.topology(shards, f"memory_{label}"), messages, publishers)
        if found["devices_listed"] != devices:
            raise RuntimeError(f"{label}: {found['devices_listed']} devices listed, not {devices}")
        out[label] = {
            "rss_ready_mb": round(found["rss_ready_mb"], 1),
            "rss_loaded_mb": round(found["rss_loaded_mb"], 1),
            "kb_per_device_growth": round(
                (found["rss_loaded_mb"] - found["rss_ready_mb"]) * 1024 / devices, 2
            ),
            "kb_per_device_all": round(found["rss_loaded_mb"] * 1024 / devices, 2),
        }
        progress(f"  {out[label]}")
    return out


# Live readings (replica and takeover parts)


def _publish_live(host: str, port: int, messages: list[tuple[str, bytes]], rate: float, stop: Any) -> None:
    """QoS 1 at `rate` msgs/s, cycling over `messages` with fresh device times, until `stop`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    began = time.monotonic()
    for n, (topic, body) in enumerate(itertools.cycle(messages)):
        if stop.is_set():
            break
        due = began + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        reading = orjson.loads(body)
        reading["ts"] = round(time.time(), 4)
        client.publish(topic, orjson.dumps(reading), qos=1)
    client.disconnect()
    client.loop_stop()


@contextlib.contextmanager
def live_readings(
    broker: BrokerProcess, messages: list[tuple[str, bytes]], rate: float, publishers: int = 2
) -> Iterator[None]:
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    parts: list[list[tuple[str, bytes]]] = [[] for _ in range(publishers)]
    for topic, body in messages:
        parts[zlib.crc32(topic.encode()) % publishers].append((topic, body))
    procs = [
        ctx.Process(target=_publish_live, args=(broker.host, broker.port, part, rate / publishers, stop))
        for part in parts
    ]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


# Replica


def replica_node(setup: Setup, shard: Node) -> Node:
    """An `officegw api` replica reading the shards' site config and shared store."""
    data = yaml.safe_load(shard.config.read_text())
    data["gateway"] = {"id": "campus-replica", "log_level": "WARNING"}
    data["site"] = {"rooms": list(setup.campus.rooms)}  # the whole campus, whatever the shards have
    data["replica"] = {"id": f"bench-{os.getpid()}"}
    config = setup.workdir / "replica.yaml"
    config.write_text(yaml.safe_dump(data))
    return Node("replica", config, command=("api",))


def wait_rooms(node: Node, rooms: int, timeout: float = 120) -> None:
    """Until `node` lists `rooms` rooms (a replica: once every shard has published them)."""

    def listed() -> bool:
        with contextlib.suppress(httpx.TransportError, KeyError, ValueError):
            return len(node.http.get("/v1/rooms", timeout=60).json()["rooms"]) >= rooms
        return False

    wait_for(listed, timeout, f"{node.name} listing {rooms} rooms", step=0.5)


def measure_queries(port: int, rooms: list[str], clients: int, duration: float) -> dict[str, Any]:
    room_paths = [f"/v1/rooms/{room}" for room in rooms]
    return {
        "availability": load(port, ["/v1/availability"], clients, duration),
        "room": load(port, room_paths, clients, duration),
    }


def calendar(rooms: list[dict[str, Any]], per_room: int, now: datetime) -> bytes:
    """`per_room` one-off bookings of each bookable room over the next 30 days, one a
    day at most, as an iCalendar file; every fourth room is booked now."""
    day0 = now.replace(hour=0, minute=0, second=0, microsecond=0)
    events = []
    for n, room in enumerate(r for r in rooms if r["bookable"]):
        for k in range(per_room):
            if k == 0 and n % 4 == 0:
                # From a minute ago: the live readings let the rooms see, and a shard
                # releases a booking nobody showed up for checkin_window (10 min) after
                # its start, which must not fall within the measurement.
                start = now - timedelta(minutes=1)
            else:
                start = day0 + timedelta(days=1 + (k * 3 + n) % 30, hours=8 + (n + k) % 9)
            end = start + timedelta(minutes=30 if (n + k) % 2 else 60)
            events.append(
                f"BEGIN:VEVENT\r\nUID:campus-{room['id']}-{k}\r\nDTSTART:{stamp(start)}\r\n"
                f"DTEND:{stamp(end)}\r\nSUMMARY:Meeting {k}\r\nLOCATION:{room['id']}\r\nEND:VEVENT\r\n"
            )
    body = "".join(events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//campus-bench//EN\r\n{body}END:VCALENDAR\r\n".encode()


def seed_bookings(node: Node, rooms: list[dict[str, Any]], per_room: int) -> int:
    """Books `rooms` through `node`'s calendar import, in files the import takes."""
    created = 0
    now = datetime.now(UTC)
    for first in range(0, len(rooms), max(1, EVENTS_PER_IMPORT // max(1, per_room))):
        body = calendar(rooms[first : first + EVENTS_PER_IMPORT // max(1, per_room)], per_room, now)
        response = node.http.post(
            "/v1/bookings/import", content=body, headers={"Content-Type": "text/calendar"}, timeout=300
        )
        response.raise_for_status()
        created += int(response.json()["created"])
    return created


def booked_now(availability: bytes) -> int:
    """Rooms an availability answer calls booked: the replica's and the gateway's must agree."""
    return sum("booked" in room["reasons"] for room in orjson.loads(availability)["rooms"])


def part_replica(
    setup: Setup, clients: int, duration: float, rate: float, bookings_per_room: int
) -> dict[str, Any]:
    campus = setup.campus
    sample = [room["id"] for room in campus.rooms[:: max(1, len(campus.rooms) // 200)]]
    live = campus_messages(campus, 1)
    out: dict[str, Any] = {"clients": clients, "duration_s": duration, "live_msgs_per_s": rate}
    progress(f"replica: shards ingesting {rate:g} msgs/s; a replica answering {clients} clients")
    shards = setup.topology(True, "replica_shards")
    with running(shards):
        for node in shards:
            node.start()
        for node in shards:
            node.wait()
        # Each building's bookings through its own shard (the shard owns its rooms' bookings).
        booked = sum(
            seed_bookings(node, campus.rooms_of(building), bookings_per_room)
            for node, building in zip(shards, campus.buildings, strict=True)
        )
        out["bookings"] = booked
        progress(f"  {booked} bookings made through the shards")
        with live_readings(setup.broker, live, rate):
            replica = replica_node(setup, shards[0])
            with running([replica]):
                replica.start()
                replica.wait()
                wait_rooms(replica, len(campus.rooms))
                before, began = sum(node.committed() for node in shards), time.perf_counter()
                out["replica"] = measure_queries(replica.port, sample, clients, duration)
                ingested = sum(node.committed() for node in shards) - before
                out["ingested_msgs_per_s_during"] = round(ingested / (time.perf_counter() - began))
                progress(f"  replica {out['replica']}; ingesting {out['ingested_msgs_per_s_during']} msgs/s")
                paths = ["/v1/availability", *(f"/v1/rooms/{room}" for room in sample)]
                documents = {path: replica.http.get(path, timeout=60).content for path in paths}
                out["replica_booked_now"] = booked_now(documents["/v1/availability"])
            # The ceiling, under the same ingest load: the replica's very answers served
            # from memory by Starlette (benchmarks/availability.py).
            ceiling, port = start_ceiling(documents, setup.workdir)
            try:
                out["ceiling"] = measure_queries(port, sample, clients, duration)
            finally:
                stop_server(ceiling, setup.workdir / "ceiling.log")
            progress(f"  ceiling {out['ceiling']}")
    progress(f"replica: one gateway for all ingesting {rate:g} msgs/s, answering the same")
    one = setup.topology(False, "replica_one")
    with running(one):
        one[0].start()
        one[0].wait()
        seed_bookings(one[0], list(campus.rooms), bookings_per_room)
        with live_readings(setup.broker, live, rate):
            wait_rooms(one[0], len(campus.rooms))
            out["one_gateway_booked_now"] = booked_now(
                one[0].http.get("/v1/availability", timeout=60).content
            )
            out["one_gateway"] = measure_queries(one[0].port, sample, clients, duration)
            progress(f"  one gateway {out['one_gateway']}")
    for query in ("availability", "room"):
        rate_of = {
            source: out[source][query]["requests_per_s"] for source in ("replica", "one_gateway", "ceiling")
        }
        out[f"{query}_p99_ms"] = out["replica"][query]["p99_ms"]
        out[f"{query}_ratio_to_ceiling"] = round(rate_of["replica"] / rate_of["ceiling"], 3)
        out[f"{query}_ratio_to_one_gateway"] = round(rate_of["replica"] / rate_of["one_gateway"], 3)
    return out


# Takeover


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> float:
    """Seconds until `check()` is true."""
    began = time.perf_counter()
    while not check():
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(step)
    return time.perf_counter() - began


def time_takeover(active: Node, standby: Node) -> tuple[float, float]:
    """SIGKILL of `active`: (seconds until `standby` is ready, until it has committed)."""
    active.kill()
    began = time.perf_counter()
    wait_for(lambda: standby.status("/readyz") == 200, 120, "standby ready")
    ready = time.perf_counter() - began
    wait_for(lambda: standby.committed() > 0, 120, "standby committing")
    return ready, time.perf_counter() - began


def time_cold_restart(active: Node) -> tuple[float, float]:
    """SIGKILL of `active` and its start at once: (seconds until ready, until committing)."""
    active.kill()
    began = time.perf_counter()
    active.start()
    wait_for(lambda: active.status("/readyz") == 200, 120, "cold start ready")
    ready = time.perf_counter() - began
    wait_for(lambda: active.committed() > 0, 120, "cold start committing")
    return ready, time.perf_counter() - began


def part_takeover(setup: Setup, takeovers: int, rate: float) -> dict[str, Any]:
    if setup.postgres is None:
        raise RuntimeError("the takeover part needs the shared store (PostgreSQL): --store postgresql")
    campus = setup.campus
    building = campus.buildings[0]
    # Two processes of one shard: the same config (gateway.id, history file), own ports.
    a = setup.gateway(
        f"takeover-{building}-a", (building,), setup.database("takeover"), db=f"shard-{building}"
    )
    b = Node(f"takeover-{building}-b", a.config)
    live = campus_messages(campus, 1, (building,))
    progress(f"takeover: shard {building} ({len(campus.rooms_of(building))} rooms), {rate:g} msgs/s")
    takeover: list[tuple[float, float]] = []
    cold: list[tuple[float, float]] = []
    with running([a, b]), live_readings(setup.broker, live, rate):
        a.start("--standby")
        a.wait()
        b.start("--standby")
        b.wait("/healthz")
        active, standby = a, b
        for run in range(takeovers):
            time.sleep(3.0)  # the standby waiting, readings flowing
            takeover.append(time_takeover(active, standby))
            progress(
                f"  takeover {run + 1}: ready {takeover[-1][0]:.2f} s, committing {takeover[-1][1]:.2f} s"
            )
            active.start("--standby")  # the killed one comes back as the standby
            active.wait("/healthz")
            active, standby = standby, active
        # Reference: no standby; the killed shard is started again at once, cold.
        standby.stop()
        for run in range(takeovers):
            time.sleep(3.0)
            cold.append(time_cold_restart(active))
            progress(f"  cold restart {run + 1}: ready {cold[-1][0]:.2f} s, committing {cold[-1][1]:.2f} s")
    return {
        "rooms": len(campus.rooms_of(building)),
        "live_msgs_per_s": rate,
        "takeovers": takeovers,
        "ready_s": round(statistics.median(t[0] for t in takeover), 3),
        "ready_s_max": round(max(t[0] for t in takeover), 3),
        "committing_s": round(statistics.median(t[1] for t in takeover), 3),
        "committing_s_max": round(max(t[1] for t in takeover), 3),
        "cold_restart_ready_s": round(statistics.median(t[0] for t in cold), 3),
        "cold_restart_committing_s": round(statistics.median(t[1] for t in cold), 3),
    }


# Main


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part", action="append", choices=PARTS, help="run only this part (repeatable; default all)"
    )
    parser.add_argument("--rooms", type=int, default=2_000, help="rooms of the campus (default 2000)")
    parser.add_argument("--devices-per-room", type=int, default=10, help="native devices a room (default 10)")
    parser.add_argument("--buildings", type=int, default=3, help="buildings, one shard each (default 3)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="ingest: reports per device in the backlog (default 5)"
    )
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="replica: client processes (default 4)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="replica: seconds per query (default 10)"
    )
    parser.add_argument(
        "--live-rate",
        type=float,
        default=2_000.0,
        help="replica, takeover: readings/s ingested meanwhile (default 2000)",
    )
    parser.add_argument(
        "--bookings-per-room",
        type=int,
        default=10,
        help="replica: bookings of each bookable room over the next 30 days (default 10)",
    )
    parser.add_argument("--takeovers", type=int, default=3, help="takeover: kills timed (default 3)")
    parser.add_argument(
        "--store",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="shared stores in a private PostgreSQL (default) or each gateway's SQLite file only",
    )
    parser.add_argument(
        "--shard-site",
        choices=("campus", "own"),
        default="campus",
        help="a shard's site config: the whole campus (default, one site file) or its building's rooms",
    )
    args = parser.parse_args()
    parts = args.part or list(PARTS)
    campus = make_campus(args.rooms, args.buildings, args.devices_per_room)
    result: dict[str, Any] = {
        "benchmark": "campus",
        "rooms": len(campus.rooms),
        "devices": campus.devices,
        "buildings": len(campus.buildings),
        "store": args.store,
        "shard_site": args.shard_site,
        "load_average_start": load_average(),
    }
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="officegw-campus-")))
        broker = stack.enter_context(start_mosquitto())
        postgres = stack.enter_context(PostgresServer()) if args.store == "postgresql" else None
        progress(f"mosquitto {broker.url}" + (f", PostgreSQL {postgres.url}" if postgres else ""))
        setup = Setup(broker, postgres, workdir, campus, own_site=args.shard_site == "own")
        if "ingest" in parts:
            result["ingest"] = part_ingest(setup, args.rounds, args.publishers)
        if "memory" in parts:
            result["memory"] = part_memory(setup, args.publishers)
        if "replica" in parts:
            result["replica"] = part_replica(
                setup, args.clients, args.duration, args.live_rate, args.bookings_per_room
            )
        if "takeover" in parts:
            result["takeover"] = part_takeover(setup, args.takeovers, args.live_rate)
    result["load_average_end"] = load_average()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
