"""Issue 16 point 4: a standby takes over its shard (real processes, real broker, real PostgreSQL).

Every gateway here is `officegw run` in a process of its own, with `storage.url` on
the session's private PostgreSQL (a fresh database per test) and the shard's
SQLite history on a file both processes can reach (one machine: the same path).

- SIGKILL of the active while QoS 1 readings arrive: the standby takes the lock,
  resumes the same persistent session and every reading is in the history once.
- A second active for the shard is refused (it touches neither broker nor file).
- A waiting standby neither connects to the broker nor opens its history; after a
  clean stop of the active it takes over.
- The active whose lock session is ended by the server exits with status 4 and the
  standby takes over.

The takeover runs on each broker kind (`shard_broker`): mosquitto over MQTT 5 and
3.1.1, and RabbitMQ's MQTT plugin (3.1.1 only; marked `rabbitmq`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from gateway.cli.main import main
from gateway.cli.shard import EXIT_LOCK_LOST, EXIT_SHARD_HELD
from gateway.runtime.shard_lock import PROOF_DEADLINE, SERVER_GIVES_UP_AFTER, ShardLock
from simulators.broker import free_port, port_is_free
from tests.postgres import PostgresServer
from tests.support import (
    ROOT,
    GatewayProcess,
    SteadyFleet,
    get_or_none,
    is_ready,
    metric_or_none,
    unique_prefix,
    wait_until,
)

ROOMS = 5
DEVICES = 20
T0 = time.time() - 3600
RATE = 400  # QoS 1 readings a second, before, during and after the switch


@dataclass(frozen=True)
class ShardBroker:
    """Where the shard's gateways and devices connect, and the MQTT version they speak."""

    kind: str
    host: str
    port: int
    protocol: str  # mqtt.protocol of the gateways: "5" or "3.1.1"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@pytest.fixture(
    params=["mosquitto-5", "mosquitto-3.1.1", pytest.param("rabbitmq-3.1.1", marks=pytest.mark.rabbitmq)]
)
def shard_broker(request: pytest.FixtureRequest) -> ShardBroker:
    """The session's broker of each kind, and the MQTT version the gateways speak to it
    (RabbitMQ's MQTT plugin: 3.1.1 only)."""
    kind, protocol = request.param.split("-", 1)
    if kind == "rabbitmq":
        node = request.getfixturevalue("rabbitmq_broker")
        if not node.is_running():  # a test before stopped it
            node.start()
        return ShardBroker(kind, node.host, node.port, protocol)
    broker = request.getfixturevalue("mosquitto_broker")
    return ShardBroker(kind, broker.host, broker.port, protocol)


@pytest.fixture
def mosquitto(mqtt_broker: Any) -> ShardBroker:
    """The one broker of tests whose point is not the broker."""
    return ShardBroker("mosquitto", mqtt_broker.host, mqtt_broker.port, "5")


def api_port() -> int:
    """A free port below the kernel's ephemeral range. `free_port()`'s (from that range)
    was seen taken by the time a standby bound it: any process's outgoing connection
    may be given it as its source port, and a standby binds its port twice (its probes,
    then the API)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(10_000, max(low, 10_001))
        if port < low and port_is_free("127.0.0.1", port):
            return port
    return free_port()


@dataclass
class Shard:
    config: Path
    db: Path
    prefix: str
    gateway_id: str
    postgres_url: str
    logs: Path

    def process(self, name: str, *, standby: bool = False, env: dict[str, str] | None = None) -> Node:
        port = api_port()
        args = ["--port", str(port), *(["--standby"] if standby else [])]
        return Node(name, GatewayProcess(self.config, self.logs / f"{name}.log", port, args, env))


class Node:
    """One `officegw run` of the shard."""

    def __init__(self, name: str, process: GatewayProcess) -> None:
        self.name = name
        self.process = process
        self.log_path = process._log

    def start(self, *, wait_ready: bool = True) -> Node:
        self.process.start(wait_ready=wait_ready)
        return self

    def get(self, path: str) -> httpx.Response | None:
        return get_or_none(self.process.http, path)

    def ready(self) -> bool:
        return is_ready(self.process.http)

    def metric(self, name: str) -> float | None:
        return metric_or_none(self.process.http, name)

    def waiting(self) -> bool:
        return self.metric("officegw_shard_active") == 0.0

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def state(self) -> str:
        """For a failed wait: whether it still runs and how its log ends."""
        return f"{self.name}: exit status {self.exit_status()}, log ends:\n{self.log()[-1500:]}"

    def wait_waiting(self) -> None:
        wait_until(self.waiting, 30, f"{self.name} waiting for the lock", progress=self.state)

    def wait_ready(self) -> None:
        wait_until(self.ready, 30, f"{self.name} active and connected", progress=self.state)

    def exit_status(self) -> int | None:
        assert self.process.proc is not None
        return self.process.proc.poll()

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def shard(tmp_path: Path, postgres_url: str, request: pytest.FixtureRequest) -> Iterator[Shard]:
    broker: ShardBroker = (
        request.getfixturevalue("shard_broker")
        if "shard_broker" in request.fixturenames
        else request.getfixturevalue("mosquitto")
    )
    prefix = unique_prefix()
    gateway_id = f"shard-{prefix}"
    db = tmp_path / "shard.db"
    rooms = [{"id": f"r{i}", "building": "hq", "floor": 1, "type": "office"} for i in range(ROOMS)]
    config = tmp_path / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": gateway_id, "log_level": "INFO"},
                "mqtt": {
                    "url": broker.url,
                    "topic_prefix": prefix,
                    "protocol": broker.protocol,
                    "reconnect_max_delay": 2,
                },
                "api": {"host": "127.0.0.1"},
                "storage": {"path": str(db), "url": postgres_url},
                "occupancy": {"vacancy_timeout": 3600},
                "site": {"rooms": rooms},
            }
        )
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    yield Shard(config, db, prefix, gateway_id, postgres_url, logs)
    for log in logs.glob("*.log"):
        assert "Traceback" not in log.read_text(), f"{log.name}:\n{log.read_text()[-3000:]}"


def history(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read straight from the shard's file (WAL: readers never block its writer)."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []  # not created yet


def stored(db: Path) -> int:
    rows = history(db, "SELECT count(*) FROM readings_all")
    return int(rows[0][0]) if rows else 0


def fleet_reading(prefix: str) -> Callable[[int], tuple[str, bytes]]:
    """Reading n: co2 = n of device env<n % DEVICES> in room r<n % ROOMS>, with a device
    time of its own (each reading is one row)."""

    def reading(n: int) -> tuple[str, bytes]:
        room, device = n % ROOMS, n % DEVICES
        return f"{prefix}/hq/1/r{room}/r{room}-env{device}", orjson.dumps({"co2": n, "ts": T0 + n * 0.001})

    return reading


@pytest.fixture
def fleet(shard: Shard, request: pytest.FixtureRequest) -> Iterator[SteadyFleet]:
    broker: ShardBroker = (
        request.getfixturevalue("shard_broker")
        if "shard_broker" in request.fixturenames
        else request.getfixturevalue("mosquitto")
    )
    devices = SteadyFleet(broker.host, broker.port, fleet_reading(shard.prefix))
    try:
        yield devices
    finally:
        devices.close()


def retained(broker: ShardBroker, topic: str) -> bytes | None:
    """The broker's retained message on `topic` (None when it has none within 5 s)."""
    got: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = lambda _c, _u, message: got.put(message.payload)
    client.connect(broker.host, broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        return got.get(timeout=5)
    except queue.Empty:
        return None
    finally:
        client.disconnect()
        client.loop_stop()


def assert_each_stored_once(db: Path, sent: int, marks: dict[str, int]) -> None:
    """Every reading 0..sent-1 is one row; a failure says which phase lost or doubled what."""
    counts = dict(history(db, "SELECT value, count(*) FROM readings_all WHERE metric = 'co2' GROUP BY value"))
    missing = [n for n in range(sent) if n not in counts]
    doubled = {n: c for n, c in counts.items() if c != 1}
    if missing or doubled:
        bounds = sorted(marks.items(), key=lambda item: item[1])

        def phase(n: int) -> str:
            name = "before"
            for label, start in bounds:
                if n >= start:
                    name = label
            return name

        by_phase: dict[str, list[int]] = {}
        for n in missing:
            by_phase.setdefault(phase(n), []).append(n)
        phases = {k: (len(v), v[:10]) for k, v in by_phase.items()}
        first_doubled = dict(list(doubled.items())[:10])
        pytest.fail(f"of {sent} readings: missing {len(missing)} {phases}, doubled {first_doubled}")
    assert len(counts) == sent


def test_sigkill_of_the_active_the_standby_takes_over_and_every_reading_is_stored_once(
    shard: Shard, fleet: SteadyFleet, shard_broker: ShardBroker
) -> None:
    active = shard.process("active").start()
    standby = shard.process("standby", standby=True).start(wait_ready=False)
    try:
        standby.wait_waiting()
        fleet.start(RATE)
        wait_until(
            lambda: stored(shard.db) >= RATE, 20, "a second of readings committed", progress=active.state
        )
        marks = {"during": fleet.sent}
        killed, killed_wall = time.monotonic(), time.time()
        active.kill()
        standby.wait_ready()
        ready_after = time.monotonic() - killed
        marks["after"] = fleet.sent
        # Readings published after the takeover reach the standby's history too.
        up_to_takeover = marks["after"]
        wait_until(
            lambda: stored(shard.db) >= up_to_takeover, 30, "the takeover's readings", progress=standby.state
        )
        after = fleet.sent
        wait_until(lambda: fleet.sent >= after + RATE, 10, "a second more of readings")
        sent = fleet.stop()
        wait_until(
            lambda: stored(shard.db) >= sent,
            30,
            f"all {sent} readings committed",
            progress=lambda: (stored(shard.db), standby.state()),
        )
        assert_each_stored_once(shard.db, sent, marks)

        assert standby.metric("officegw_shard_active") == 1.0
        # The dead active's last will (offline) came before the new one said online.
        availability = f"officegw/gateway/{shard.gateway_id}/availability"
        assert retained(shard_broker, availability) == b"online"
        takeover = standby.metric("officegw_shard_takeover_seconds")
        waited = standby.metric("officegw_shard_lock_wait_seconds")
        since = standby.metric("officegw_shard_active_since_seconds")
        assert takeover is not None and waited is not None and since is not None
        log = standby.log()
        assert log.count("standby waiting for the shard lock") == 1
        assert log.count("shard lock taken; this gateway is active") == 1
        print(
            json.dumps(
                {
                    "broker": f"{shard_broker.kind} mqtt {shard_broker.protocol}",
                    "readings": sent,
                    "published_during_takeover": marks["after"] - marks["during"],
                    "kill_to_lock_s": round(since - killed_wall, 3),
                    "kill_to_ready_s": round(ready_after, 3),
                    "lock_to_session_s": round(takeover, 3),
                }
            )
        )
    finally:
        standby.stop()
        active.stop()


def test_a_second_active_is_refused_and_touches_neither_broker_nor_history(
    shard: Shard, tmp_path: Path
) -> None:
    active = shard.process("active").start()
    other_db = tmp_path / "second.db"
    try:
        second = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(shard.config), "--port", "0"],
            env={**os.environ, "OFFICEGW_STORAGE__PATH": str(other_db)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == EXIT_SHARD_HELD, second.stderr
        assert f"shard {shard.gateway_id} already has an active gateway" in second.stderr
        assert "--standby" in second.stderr
        # Who holds it: the active's session, by its process id.
        assert f"pid {active.pid}" in second.stderr
        assert not other_db.exists()
        # A standby on the active's host needs an API port of its own: said, not a traceback.
        argv = [sys.executable, "-m", "gateway.cli", "run", "--config", str(shard.config), "--standby"]
        same_port = subprocess.run(
            [*argv, "--port", str(active.process.port)],
            env={**os.environ, "OFFICEGW_STORAGE__PATH": str(other_db)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert same_port.returncode == 1, same_port.stderr
        assert "standby cannot serve its probes; is api.port in use?" in same_port.stderr
        assert "Traceback" not in same_port.stderr
        assert not other_db.exists()
        # Its session was never taken from the active (same client id).
        assert active.metric("officegw_mqtt_connects_total") == 1.0
        assert active.ready()
    finally:
        active.stop()


def test_a_waiting_standby_stays_off_the_broker_and_its_history_then_takes_over_a_clean_stop(
    shard: Shard, fleet: SteadyFleet, tmp_path: Path
) -> None:
    active = shard.process("active").start()
    standby_db = tmp_path / "standby.db"
    standby = shard.process("standby", standby=True, env={"OFFICEGW_STORAGE__PATH": str(standby_db)})
    standby.start(wait_ready=False)
    try:
        standby.wait_waiting()
        fleet.publish(200)
        wait_until(lambda: stored(shard.db) == 200, 20, "the active storing every reading")
        readyz = standby.get("/readyz")
        assert readyz is not None and readyz.status_code == 503
        assert readyz.json() == {"status": "standby", "checks": {"shard_lock": False}}
        assert standby.metric("officegw_messages_received_total") is None
        assert not standby_db.exists()
        assert active.metric("officegw_mqtt_connects_total") == 1.0

        active.stop()  # SIGTERM: commits, acknowledges, disconnects, then releases the lock
        assert active.exit_status() == 0
        assert "shard lock released" in active.log()
        standby.wait_ready()
        fleet.publish(100)
        wait_until(lambda: stored(standby_db) == 100, 20, "the new active storing what came after")
        assert stored(shard.db) == 200
    finally:
        standby.stop()
        active.stop()


def test_an_active_that_loses_its_lock_session_exits_and_the_standby_takes_over(
    shard: Shard, fleet: SteadyFleet
) -> None:
    active = shard.process("active").start()
    standby = shard.process("standby", standby=True).start(wait_ready=False)
    try:
        standby.wait_waiting()

        def sessions_of(node: Node, select: str = "count(*)", where: str = "true") -> list[tuple[Any, ...]]:
            with psycopg.connect(shard.postgres_url, autocommit=True) as conn:
                return conn.execute(
                    f"SELECT {select} FROM pg_stat_activity WHERE application_name LIKE %s AND {where}",
                    (f"officegw {shard.gateway_id} pid {node.pid} on %",),
                ).fetchall()

        def end_session_of(node: Node) -> list[tuple[Any, ...]]:
            return sessions_of(node, "pg_terminate_backend(pid)")

        def blocked_on_the_lock(node: Node) -> bool:
            return sessions_of(node, where="wait_event_type = 'Lock' AND wait_event = 'advisory'") == [(1,)]

        # A standby whose wait is cut off connects again and goes on waiting.
        wait_until(lambda: blocked_on_the_lock(standby), 10, "the standby blocked on the lock")
        assert end_session_of(standby) == [(True,)]
        wait_until(
            lambda: "shard lock connection failed; retrying" in standby.log(), 10, "the standby retrying"
        )
        wait_until(lambda: blocked_on_the_lock(standby), 10, "the standby waiting again")
        assert "shard lock connection back; waiting again" in standby.log()
        assert standby.waiting()
        assert standby.log().count("standby waiting for the shard lock") == 1
        # The server ends the active's lock session (as a restart or a failover would).
        assert end_session_of(active) == [(True,)]
        wait_until(lambda: active.exit_status() is not None, 15, "the active exiting")
        assert active.exit_status() == EXIT_LOCK_LOST
        assert "shard lock lost; exiting at once" in active.log()
        standby.wait_ready()
        fleet.publish(50)
        wait_until(lambda: stored(shard.db) == 50, 20, "the standby ingesting")
    finally:
        standby.stop()
        active.stop()


class StallingProxy:
    """A TCP relay to PostgreSQL that can stop relaying while keeping every connection
    open: a stalled link, pooler or NAT box, where nothing fails and nothing answers
    (the kernels on both sides still acknowledge, so keepalives see nothing wrong)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data or self._stalled.is_set():
                self._closed.wait()  # hold it: nothing relayed, nothing closed
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def stall(self) -> None:
        self._stalled.set()

    def close(self) -> None:
        self._closed.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_an_active_that_cannot_prove_its_lock_stops_before_the_server_could_grant_it(
    shard: Shard, postgres_server: PostgresServer
) -> None:
    proxy = StallingProxy((postgres_server.host, postgres_server.port))
    through_proxy = shard.postgres_url.replace(f":{postgres_server.port}/", f":{proxy.port}/")
    active = shard.process("active", env={"OFFICEGW_STORAGE__URL": through_proxy}).start()
    standby = shard.process("standby", standby=True).start(wait_ready=False)
    try:
        standby.wait_waiting()
        stalled = time.monotonic()
        proxy.stall()
        wait_until(lambda: active.exit_status() is not None, PROOF_DEADLINE + 10, "the active exiting")
        fenced_after = time.monotonic() - stalled
        assert active.exit_status() == EXIT_LOCK_LOST
        assert "no answer from PostgreSQL" in active.log()
        # The server still sees the session (the relay keeps it open), so the lock
        # is still the dead active's: the standby waits, never two actives.
        assert standby.waiting()
        proxy.close()  # the link goes down for good: the server ends the session
        standby.wait_ready()
        print(json.dumps({"stall_to_fenced_s": round(fenced_after, 2), "proof_deadline_s": PROOF_DEADLINE}))
        assert fenced_after < SERVER_GIVES_UP_AFTER
    finally:
        proxy.close()
        standby.stop()
        active.stop()


def test_the_lock_is_one_per_shard_and_a_waiter_gets_it_when_the_holder_goes(postgres_url: str) -> None:
    first = ShardLock(postgres_url, "hq", application_name="first")
    second = ShardLock(postgres_url, "hq", application_name="second")
    other_shard = ShardLock(postgres_url, "annex")
    try:
        first.connect()
        assert first.try_take()
        second.connect()
        assert not second.try_take()
        assert second.holder() == "first (127.0.0.1)"
        other_shard.connect()
        assert other_shard.try_take()
        told: list[str | None] = []
        waited: list[float] = []
        waiter = threading.Thread(target=lambda: waited.append(second.wait(told.append)))
        waiter.start()
        wait_until(lambda: told == ["first (127.0.0.1)"], 5, "the waiter told who holds the lock")
        assert not waited
        first.release()
        waiter.join(5)
        assert waited and waited[0] > 0
    finally:
        for lock in (first, second, other_shard):
            lock.release()


HUNG_ACTIVE = """
import sys, time
from gateway.config import settings_from_dict
from gateway.cli.shard import run_shard

storage = {"path": sys.argv[2], "url": sys.argv[3]}
settings = settings_from_dict({"gateway": {"id": sys.argv[1]}, "storage": storage})

def hang(role, on_hung):
    print("active", flush=True)
    time.sleep(float(sys.argv[4]))  # the standby starts waiting meanwhile
    on_hung("ticker has not come round for 31 s")

sys.exit(run_shard(settings, standby=False, run=hang))
"""


def test_an_active_found_hung_exits_with_6_and_the_standby_takes_over(shard: Shard, tmp_path: Path) -> None:
    """What the CLI does once its watchdog finds the gateway hung while it holds the lock
    (the finding: tests/unit/gateway/runtime/test_service_watchdog.py): exit at once,
    with 6, so the lock its live session held goes to the standby."""
    active = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HUNG_ACTIVE,
            shard.gateway_id,
            str(tmp_path / "a.db"),
            shard.postgres_url,
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    standby = shard.process("standby", standby=True)
    try:
        assert active.stdout is not None and active.stdout.readline() == "active\n"
        standby.start(wait_ready=False)
        standby.wait_waiting()
        _, err = active.communicate(timeout=30)
        assert active.returncode == 6, err
        assert "gateway hung while holding the shard lock" in err and "ticker has not come round" in err
        standby.wait_ready()
    finally:
        if active.poll() is None:
            active.kill()
            active.wait()
        standby.stop()


def test_standby_needs_storage_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "officegw.yaml"
    config.write_text("gateway: {id: hq}\n")
    assert main(["run", "--config", str(config), "--standby"]) == 2
    assert "--standby needs storage.url" in capsys.readouterr().err


def test_sigterm_ends_a_waiting_standby_cleanly(shard: Shard) -> None:
    active = shard.process("active").start()
    standby = shard.process("standby", standby=True).start(wait_ready=False)
    try:
        standby.wait_waiting()
        assert standby.process.proc is not None
        standby.process.proc.send_signal(signal.SIGTERM)
        assert standby.process.proc.wait(10) == 0
        assert "stopped while waiting for the shard lock" in standby.log()
        assert active.ready()
    finally:
        standby.stop()
        active.stop()
