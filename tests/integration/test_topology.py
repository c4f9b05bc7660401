"""Issue 16 point 6: a campus on one machine, every part a real process.

A private broker (mosquitto over MQTT 5; RabbitMQ's MQTT plugin over 3.1.1), a
private PostgreSQL (the session's, a database of this module's own) holding the
shared stores, and:

- shard *north*: `officegw run --standby` twice with one config (the first takes
  the shard's lock and is active, the second waits), `gateway.buildings: [north]`;
- shard *south*: one `officegw run`, `gateway.buildings: [south]`;
- two API replicas: `officegw api`.

Every process reads the same site (both buildings' rooms). The processes are
shared by the module's tests (one topology per broker kind); the takeover test
leaves it whole again (the killed north process comes back as the standby).

Building names carry a tag of the module's own: the state and command topics
(`officegw/state/<building>/...`) are global, and the session's RabbitMQ node is
shared with other tests.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import yaml

from simulators.broker import BrokerProcess, MqttBroker, free_port, start_mosquitto
from simulators.postgres import PostgresServer
from tests.conftest import BROKER_KINDS
from tests.rabbitmq import RabbitMQ
from tests.support import ROOT, Publisher, SteadyFleet, get_or_none, is_ready, metric_or_none, wait_until

RATE = 300  # QoS 1 readings a second into shard north, before, during and after the switch
T0 = time.time() - 3600


class Node:
    """One officegw process (`run`, `run --standby`, `api`) on an API port of its own."""

    def __init__(self, name: str, command: list[str], config: Path, logs: Path) -> None:
        self.name = name
        self.command = command
        self.config = config
        self.log_path = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.http = httpx.Client()

    def start(self) -> Node:
        # The port is picked at the start: the killed active comes back on another.
        self.port = free_port()
        self.http.close()
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        argv = [*self.command, "--config", str(self.config), "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return self

    def get(self, path: str, **params: Any) -> httpx.Response | None:
        return get_or_none(self.http, path, **params)

    def ready(self) -> bool:
        return is_ready(self.http)

    def metric(self, name: str) -> float | None:
        return metric_or_none(self.http, name)

    def active(self) -> bool:
        return self.metric("officegw_shard_active") == 1.0 and self.ready()

    def waiting(self) -> bool:
        return self.metric("officegw_shard_active") == 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, check: str = "ready", timeout: float = 60.0) -> None:
        def done() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited: {self.log()[-3000:]}")
            return bool(getattr(self, check)())

        wait_until(done, timeout, f"{self.name} {check}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()


@dataclass
class Topology:
    broker: MqttBroker
    protocol: str  # mqtt.protocol of every process: "5" or "3.1.1"
    prefix: str
    north: str  # building names
    south: str
    rooms: dict[str, tuple[str, int]]  # room id -> (building, floor)
    north_db: Path
    north_gateways: list[Node]  # the active first (after a takeover: reordered)
    south_gateway: Node
    replicas: list[Node]
    publisher: Publisher
    store: str  # the shared store's URL

    def room_of(self, building: str) -> str:
        return next(room for room, (b, _) in self.rooms.items() if b == building)

    def presence(self, room: str, occupied: bool = True) -> None:
        building, floor = self.rooms[room]
        self.publisher.publish(f"{self.prefix}/{building}/{floor}/{room}/{room}-pir", {"occupancy": occupied})


def site_rooms(north: str, south: str) -> list[dict[str, Any]]:
    def room(building: str, name: str, floor: int, capacity: int) -> dict[str, Any]:
        return {
            "id": f"{building}-{name}",
            "name": name.capitalize(),
            "building": building,
            "floor": floor,
            "type": "meeting",
            "capacity": capacity,
            "bookable": True,
        }

    return [
        room(north, "orion", 2, 8),
        room(north, "lyra", 3, 4),
        room(south, "vega", 1, 12),
        room(south, "rigel", 1, 6),
    ]


def write_config(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


@contextlib.contextmanager
def broker_of(kind: str, request: pytest.FixtureRequest) -> Iterator[MqttBroker]:
    """A private mosquitto of the module's own, or the session's RabbitMQ node (started
    once for the session: ~10 s)."""
    if kind == "rabbitmq":
        node: RabbitMQ = request.getfixturevalue("rabbitmq_broker")
        if not node.is_running():
            node.start()
        yield node
        return
    broker: BrokerProcess = start_mosquitto()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module", params=BROKER_KINDS)
def topology(
    request: pytest.FixtureRequest,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Topology]:
    tag = uuid.uuid4().hex[:6]
    scratch = tmp_path_factory.mktemp(f"topology-{request.param}")
    logs = scratch / "logs"
    logs.mkdir()
    north, south = f"north-{tag}", f"south-{tag}"
    rooms = site_rooms(north, south)
    store = postgres_server.create_database(f"topology_{request.param}_{tag}")
    nodes: list[Node] = []
    publisher: Publisher | None = None
    with broker_of(request.param, request) as broker:
        protocol = "5" if broker.mqtt5 else "3.1.1"
        prefix = f"office-{tag}"
        common = {
            "mqtt": {
                "url": broker.url,
                "topic_prefix": prefix,
                "protocol": protocol,
                "reconnect_max_delay": 2,
            },
            "api": {"host": "127.0.0.1"},
            "site": {"rooms": rooms},
            "occupancy": {"vacancy_timeout": 3600},
            "bookings": {"checkin_window": 600, "release_when_vacant": 600, "presence_min": 0.5},
            "push": {"state": {"min_interval": 0.1}},
            # The takeover fleet sends 30 readings/s per device (RATE over 10 devices),
            # over the default flood limit (10/s, burst 20) once the 30 s reconnect grace
            # is over, as it is when starting the topology took longer: a throttled
            # reading is acknowledged at once and only the newest is applied a second
            # later, so a SIGKILL just then lost one (co2 = 300, the first over budget).
            "quality": {"max_rate": 1000, "burst": 1000},
        }

        def shard(building: str) -> Path:
            return write_config(
                scratch / f"{building}.yaml",
                {
                    **common,
                    "gateway": {"id": f"gw-{building}", "buildings": [building], "log_level": "INFO"},
                    "storage": {"path": str(scratch / f"{building}.db"), "url": store},
                },
            )

        replica_config = write_config(
            scratch / "replica.yaml",
            {
                **common,
                # A replica's event log is one shard's (events are numbered per shard):
                # the one its gateway.id names, here south's.
                "gateway": {"id": f"gw-{south}", "log_level": "INFO"},
                "storage": {"path": str(scratch / f"{north}.db"), "url": store},
                "replica": {"command_timeout": 5.0, "bookings_reload": 30},
            },
        )
        north_config, south_config = shard(north), shard(south)
        try:
            # Both north processes run with --standby, as under systemd: the first
            # takes the free lock at once and is the active.
            first = Node("north-a", ["run", "--standby"], north_config, logs).start()
            nodes.append(first)
            south_gateway = Node("south", ["run"], south_config, logs).start()
            nodes.append(south_gateway)
            first.wait("active")
            south_gateway.wait("ready")
            second = Node("north-b", ["run", "--standby"], north_config, logs).start()
            nodes.append(second)
            second.wait("waiting")
            replicas = [
                Node(name, ["api", "--id", f"{name}-{tag}"], replica_config, logs).start()
                for name in ("r1", "r2")
            ]
            nodes.extend(replicas)
            for replica in replicas:
                replica.wait("ready")
            publisher = Publisher(broker)
            yield Topology(
                broker,
                protocol,
                prefix,
                north,
                south,
                {room["id"]: (room["building"], room["floor"]) for room in rooms},
                scratch / f"{north}.db",
                [first, second],
                south_gateway,
                replicas,
                publisher,
                store,
            )
        finally:
            if publisher is not None:
                publisher.close()
            for node in reversed(nodes):
                node.stop()
    for log in logs.glob("*.log"):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"


# Rooms and bookings through the replicas


def listed(replica: Node) -> dict[str, dict[str, Any]]:
    response = replica.get("/v1/rooms")
    if response is None or response.status_code != 200:
        return {}
    return {room["id"]: room for room in response.json()["rooms"]}


def test_either_replica_answers_the_rooms_of_both_buildings(topology: Topology) -> None:
    north_room, south_room = topology.room_of(topology.north), topology.room_of(topology.south)
    topology.presence(north_room)
    topology.presence(south_room)

    def occupied(replica: Node) -> bool:
        rooms = listed(replica)
        return set(topology.rooms) <= set(rooms) and all(
            rooms[room]["occupancy"]["state"] == "occupied" for room in (north_room, south_room)
        )

    # Two of the four rooms change after the replicas started, two do not: those come
    # only from the retained documents the shards published before. RabbitMQ hands a
    # retained message to an exact-topic subscription only: the replicas subscribe to
    # each site room's state topic besides the wildcard.
    for replica in topology.replicas:
        wait_until(lambda r=replica: occupied(r), 20, f"{replica.name}: both buildings' rooms, occupied")
        rooms = listed(replica)
        assert {rooms[room]["building"] for room in topology.rooms} == {topology.north, topology.south}
        # One room, and availability, of each building, on each replica.
        for room in (north_room, south_room):
            response = replica.get(f"/v1/rooms/{room}")
            assert response is not None and response.status_code == 200, response
            assert response.json()["occupancy"]["state"] == "occupied"
        response = replica.get("/v1/availability")
        assert response is not None and response.status_code == 200
        offered = {room["id"]: room for room in response.json()["rooms"]}
        assert set(topology.rooms) <= set(offered)
        for room in (north_room, south_room):
            assert not offered[room]["available"] and "occupied" in offered[room]["reasons"]


def test_a_booking_made_on_one_replica_is_checked_in_by_the_shard_owning_the_room(topology: Topology) -> None:
    r1, r2 = topology.replicas
    room = next(r for r, (b, _) in topology.rooms.items() if b == topology.south and r != topology.room_of(b))
    start = datetime.now(UTC) - timedelta(minutes=1)
    body = {
        "room_id": room,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        "title": "Topology review",
    }
    made = r1.http.post("/v1/bookings", json=body)
    assert made.status_code == 201, made.text
    booking = made.json()
    assert booking["status"] == "booked"

    def status(node: Node) -> str | None:
        response = node.get(f"/v1/bookings/{booking['id']}")
        return response.json()["status"] if response is not None and response.status_code == 200 else None

    # The other replica and the owning shard know it; the shard of the other building
    # does not carry it out (it owns none of its rooms).
    wait_until(lambda: status(r2) == "booked", 10, "the booking on the other replica")
    assert status(topology.south_gateway) == "booked"

    # Presence: the room occupied for bookings.presence_min with someone still seen at
    # the end of it, so motion is reported on and on, as a PIR does while people move.
    last_motion = [0.0]

    def checked_in() -> bool:
        if time.monotonic() - last_motion[0] >= 0.25:
            topology.presence(room)
            last_motion[0] = time.monotonic()
        return status(r2) == "checked_in"

    wait_until(checked_in, 20, "the booking checked in, seen on the other replica")
    assert status(topology.south_gateway) == "checked_in"

    # Who checked it in: the shared store keys every event by the shard that logged it
    # (the event reaches it with that shard's next history commit).
    def logged_by() -> list[str]:
        with psycopg.connect(topology.store) as conn:
            rows = conn.execute(
                "SELECT shard FROM events WHERE kind = 'booking_checked_in' AND data ->> 'booking' = %s",
                (booking["id"],),
            ).fetchall()
        return [shard for (shard,) in rows]

    assert wait_until(logged_by, 10, "the check-in event in the shared store") == [f"gw-{topology.south}"]
    # Both replicas read it from there (their event log is south's: see the fixture).
    for replica in topology.replicas:
        events = replica.get("/v1/events", kind="booking_checked_in", room=room)
        assert events is not None and events.status_code == 200
        assert [e["data"]["booking"] for e in events.json()["events"]] == [booking["id"]]


# Takeover


def readings(db: Path) -> dict[float, int]:
    """co2 value -> rows, of the fleet's devices, straight from the shard's file (WAL:
    readers never block its writer)."""
    if not db.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            rows = conn.execute(
                "SELECT value, count(*) FROM readings_all WHERE metric = 'co2' AND device LIKE '%-fleet%'"
                " GROUP BY value"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {float(value): int(count) for value, count in rows}


def make_fleet(topology: Topology) -> SteadyFleet:
    """Devices of shard north; reading n is co2 = n, with a device time of its own."""
    rooms = [(r, f) for r, (b, f) in topology.rooms.items() if b == topology.north]

    def reading(n: int) -> tuple[str, bytes]:
        room, floor = rooms[n % len(rooms)]
        topic = f"{topology.prefix}/{topology.north}/{floor}/{room}/{room}-fleet{n % 10}"
        return topic, orjson.dumps({"co2": n, "ts": T0 + n * 0.001})

    return SteadyFleet(topology.broker.host, topology.broker.port, reading)


def test_sigkill_of_the_active_shard_the_standby_takes_over_and_every_reading_is_stored_once(
    topology: Topology,
) -> None:
    active, standby = topology.north_gateways
    assert active.active() and standby.waiting()
    fleet = make_fleet(topology)
    try:
        fleet.start(RATE)
        wait_until(lambda: len(readings(topology.north_db)) >= RATE, 30, "a second of readings committed")
        during = fleet.sent
        active.kill()
        standby.wait("active", 60)
        after = fleet.sent
        wait_until(lambda: fleet.sent >= after + RATE, 10, "a second more of readings")
        sent = fleet.stop()
        wait_until(lambda: len(readings(topology.north_db)) >= sent, 60, f"all {sent} readings committed")
    finally:
        fleet.close()
    counts = readings(topology.north_db)
    missing = [n for n in range(sent) if float(n) not in counts]
    doubled = {n: c for n, c in counts.items() if c != 1}
    assert not missing and not doubled, (
        f"of {sent} readings ({after - during} published during the switch): "
        f"missing {len(missing)} {missing[:10]}, doubled {dict(list(doubled.items())[:10])}"
    )
    assert len(counts) == sent
    assert standby.log().count("shard lock taken; this gateway is active") == 1

    # The campus answers as before: the replicas see the new active's rooms change.
    room = next(r for r, (b, _) in topology.rooms.items() if b == topology.north and r != topology.room_of(b))
    topology.presence(room)
    for replica in topology.replicas:
        wait_until(
            lambda r=replica: listed(r).get(room, {}).get("occupancy", {}).get("state") == "occupied",
            20,
            f"{replica.name}: north's room as the new active publishes it",
        )
    # Whole again for the tests after: the killed one waits as the standby.
    active.start().wait("waiting")
    topology.north_gateways[:] = [standby, active]
