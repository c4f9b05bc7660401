"""API replicas end to end, on a private mosquitto and a private RabbitMQ node: a
gateway process for two buildings (hq, annex), a second for a third (west, on a store
of its own) and two `officegw api` processes over HTTP, sharing the first gateway's
SQLite file. Either replica answers the rooms of every building as their gateways do;
a booking made on one is seen on the other and checked in by the gateway when presence
is published; a command through a replica is carried out and audited by the gateway
of the room's building; keys scoped to a building hold; a replica started late gets
the whole campus from the retained topics; a building no gateway serves gets a 503,
not a hang.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from simulators.broker import BrokerProcess, MqttBroker, free_port, start_mosquitto
from tests.postgres import PostgresServer
from tests.rabbitmq import RabbitMQ
from tests.sse import StreamReader
from tests.support import ROOT, GatewayProcess, Publisher, SimLight, wait_until

PREFIX = "office"
# name -> (key, role, buildings)
KEYS = {
    "admin": ("campus-admin", "admin", []),
    "booking": ("booking-system", "booking", []),
    "operator": ("facilities", "operator", []),
    "hq-booking": ("hq-panel", "booking", ["hq"]),
    "hq-operator": ("hq-facilities", "operator", ["hq"]),
}
HQ_ROOMS = {"orion", "lyra", "desks"}
ANNEX_ROOMS = {"vega", "rigel"}
WEST_ROOMS = {"polaris"}
SERVED = HQ_ROOMS | ANNEX_ROOMS | WEST_ROOMS


def site_config(
    storage: Path,
    broker: MqttBroker,
    port: int,
    shard: str = "gw-campus",
    buildings: tuple[str, ...] = ("hq", "annex"),
    shared: str | None = None,
) -> dict[str, Any]:
    rooms = [
        {
            "id": "orion",
            "building": "hq",
            "floor": 2,
            "type": "meeting",
            "capacity": 8,
            "features": ["display"],
            "bookable": True,
            "x": 0,
            "y": 0,
            "w": 2,
        },
        {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting", "capacity": 4, "bookable": True},
        {"id": "desks", "building": "hq", "floor": 3, "type": "open", "capacity": 40},
        {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 12, "bookable": True},
        {"id": "rigel", "building": "annex", "floor": 1, "type": "meeting", "capacity": 6, "bookable": True},
        # Served by a second gateway, with a store of its own (SQLite: no bookings there).
        {"id": "polaris", "building": "west", "floor": 1, "type": "meeting", "capacity": 6, "bookable": True},
        # A building no gateway serves.
        {"id": "sirius", "building": "north", "floor": 1, "type": "meeting", "capacity": 6, "bookable": True},
    ]
    devices = [
        {"id": f"{room}-pir", "room": room, "power_source": "battery"}
        for room in ("orion", "lyra", "vega", "rigel", "polaris")
    ]
    devices += [
        {"id": f"{room}-light", "room": room, "kind": "light"}
        for room in ("orion", "vega", "polaris", "sirius")
    ]
    return {
        "gateway": {"id": shard, "buildings": list(buildings)},
        "mqtt": {
            "url": broker.url,
            "topic_prefix": PREFIX,
            "protocol": "5" if broker.mqtt5 else "3.1.1",
            "reconnect_max_delay": 2,
        },
        # With `shared` (PostgreSQL) every gateway and replica shares bookings and events;
        # the file at `path` is each gateway's own journal.
        "storage": {"path": str(storage), **({"url": shared} if shared else {})},
        "api": {
            "port": port,
            "keys": [
                {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "role": role,
                 "buildings": buildings}
                for key, (name, role, buildings) in KEYS.items()
            ],
        },
        "site": {"rooms": rooms, "devices": devices},
        "occupancy": {"vacancy_timeout": 30},
        "bookings": {"checkin_window": 600, "release_when_vacant": 600, "presence_min": 0.5},
        "push": {"state": {"min_interval": 0.1}},
        "replica": {"command_timeout": 2.0, "bookings_reload": 30},
    }  # fmt: skip


@dataclass
class Api:
    """One HTTP server (gateway or replica) as one key sees it."""

    http: httpx.Client
    key: str

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers={"Authorization": f"Bearer {self.key}"})

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.key}"})

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path, headers={"Authorization": f"Bearer {self.key}"})

    def rooms(self) -> list[dict[str, Any]]:
        response = self.get("/v1/rooms")
        assert response.status_code == 200, response.text
        rooms: list[dict[str, Any]] = response.json()["rooms"]
        return rooms


@dataclass
class Campus:
    broker: MqttBroker
    config: Path
    gateway: GatewayProcess
    # The second shard (building west), on a store of its own.
    west: GatewayProcess
    replicas: list[GatewayProcess]
    publisher: Publisher
    # Bookings and events in PostgreSQL (storage.url), shared by both gateways.
    shared: bool

    def as_key(self, server: GatewayProcess, key: str) -> Api:
        return Api(server.http, key)


def start_replica(config: Path, name: str, env: dict[str, str] | None = None) -> GatewayProcess:
    port = free_port()
    args = ("--port", str(port), "--id", name)
    replica = GatewayProcess(config, config.parent / f"{name}.log", port, args, env, command="api")
    replica.start()
    return replica


def private_broker(kind: str) -> MqttBroker:
    """A broker of the module's own: the state topics are global (officegw/state/...),
    and retained rooms of other tests must not appear on these replicas."""
    if kind == "rabbitmq":
        return RabbitMQ().start()
    return start_mosquitto()


def stop_broker(broker: MqttBroker) -> None:
    if isinstance(broker, RabbitMQ):
        broker.close()
    else:
        assert isinstance(broker, BrokerProcess)
        broker.stop()


# (broker, shared store): PostgreSQL on both brokers, and the SQLite file (no storage.url,
# the replicas read the first gateway's file) on mosquitto.
TOPOLOGIES = [
    pytest.param(("mosquitto", "postgresql"), id="mosquitto-postgresql"),
    pytest.param(("rabbitmq", "postgresql"), id="rabbitmq-postgresql", marks=pytest.mark.rabbitmq),
    pytest.param(("mosquitto", "sqlite"), id="mosquitto-sqlite"),
]
_databases = itertools.count(1)


@pytest.fixture(scope="module", params=TOPOLOGIES)
def campus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campus]:
    kind, store = request.param
    scratch = tmp_path_factory.mktemp("replica")
    shared: str | None = None
    if store == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        shared = server.create_database(f"replica_{next(_databases)}")
    broker = private_broker(kind)
    started: list[GatewayProcess] = []
    publisher: Publisher | None = None
    try:
        config = scratch / "campus.yaml"
        config.write_text(
            yaml.safe_dump(site_config(scratch / "campus.db", broker, free_port(), shared=shared))
        )
        gateway = GatewayProcess(
            config, scratch / "gateway.log", yaml.safe_load(config.read_text())["api"]["port"]
        )
        started.append(gateway)
        gateway.start()
        west_port = free_port()
        west_config = scratch / "west.yaml"
        west_config.write_text(
            yaml.safe_dump(
                site_config(scratch / "west.db", broker, west_port, "gw-west", ("west",), shared=shared)
            )
        )
        west = GatewayProcess(west_config, scratch / "west.log", west_port)
        started.append(west)
        west.start()
        replicas = [start_replica(config, name) for name in ("r1", "r2")]
        started.extend(replicas)
        publisher = Publisher(broker)
        yield Campus(broker, config, gateway, west, replicas, publisher, shared is not None)
    finally:
        if publisher is not None:
            publisher.close()
        for process in reversed(started):
            process.stop()
        stop_broker(broker)


def presence(campus: Campus, building: str, floor: int, room: str, occupied: bool = True) -> None:
    campus.publisher.publish(f"{PREFIX}/{building}/{floor}/{room}/{room}-pir", {"occupancy": occupied})


def without_energy(rooms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A gateway works kWh out to the instant of the request; a published document to
    # the instant it was published: the one field where the two may differ.
    return [{k: v for k, v in room.items() if k != "energy"} for room in rooms]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_either_replica_answers_the_rooms_of_both_buildings_as_the_gateway_does(campus: Campus) -> None:
    presence(campus, "hq", 2, "lyra")
    presence(campus, "annex", 1, "vega")
    gateway = campus.as_key(campus.gateway, "admin")
    west = campus.as_key(campus.west, "admin")
    r1, r2 = (campus.as_key(r, "admin") for r in campus.replicas)

    def agreed() -> bool:
        # Each gateway lists every room of the site config: its own as they are, the others
        # as never seen. A replica has each room from the gateway that serves it.
        truth = without_energy(
            [room for room in gateway.rooms() if room["building"] in ("hq", "annex")]
            + [room for room in west.rooms() if room["building"] == "west"]
        )
        truth.sort(key=lambda room: (room["building"], room["floor"], room["id"]))
        occupied = {room["id"] for room in truth if room["occupancy"]["state"] == "occupied"}
        return {"lyra", "vega"} <= occupied and without_energy(r1.rooms()) == truth == without_energy(
            r2.rooms()
        )

    wait_until(
        agreed, 10.0, "both replicas answer as the gateway", progress=lambda: (r1.rooms(), gateway.rooms())
    )
    ids = {room["id"] for room in r1.rooms()}
    assert ids == SERVED  # north is served by no gateway: no document
    orion = r2.get("/v1/rooms/orion")
    assert orion.status_code == 200
    assert orion.json()["plan"] == {"x": 0, "y": 0, "w": 2, "h": 1}
    assert r1.get("/v1/rooms", building="annex", occupied="true").json()["count"] == 1
    assert r1.get("/v1/rooms/nowhere").status_code == 404
    # The dashboard and the offline docs are served too.
    page = campus.replicas[0].http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert campus.replicas[1].http.get("/openapi.json").json()["info"]["title"] == "officegw (API replica)"


def test_a_booking_made_on_one_replica_is_seen_on_the_other_and_checked_in_by_the_gateway(
    campus: Campus,
) -> None:
    r1, r2 = (campus.as_key(r, "booking") for r in campus.replicas)
    gateway = campus.as_key(campus.gateway, "booking")
    start = datetime.now(UTC)
    window = {"start": iso(start), "end": iso(start + timedelta(hours=1))}
    made = r1.post("/v1/bookings", {"room_id": "orion", "title": "Planning", **window})
    assert made.status_code == 201, made.text
    booking = made.json()
    assert booking["status"] == "booked" and booking["title"] == "Planning"

    # The gateway wrote it: every replica reads it from the store at once.
    assert r2.get(f"/v1/bookings/{booking['id']}").json() == booking
    assert gateway.get(f"/v1/bookings/{booking['id']}").json() == booking
    # The gateway checks clashes, whichever replica asks.
    clash = r2.post("/v1/bookings", {"room_id": "orion", **window})
    assert clash.status_code == 409, clash.text
    assert clash.json()["booking"]["id"] == booking["id"]

    def orion_on(api: Api) -> dict[str, Any]:
        rooms = api.get("/v1/availability", start=window["start"], end=window["end"]).json()["rooms"]
        return next(room for room in rooms if room["id"] == "orion")

    wait_until(lambda: "booked" in orion_on(r2)["reasons"], 5.0, "replica 2 sees orion booked")
    assert orion_on(r1) == orion_on(r2)
    # Room status with the booking in progress, its title for keys that may see it.
    admin_gateway, admin_r2 = (
        campus.as_key(campus.gateway, "admin"),
        campus.as_key(campus.replicas[1], "admin"),
    )

    def orion_status(api: Api) -> dict[str, Any]:
        return {k: v for k, v in api.get("/v1/rooms/orion").json().items() if k != "energy"}

    wait_until(
        lambda: (
            orion_status(admin_r2)["booking"]["current"] is not None
            and orion_status(admin_r2) == orion_status(admin_gateway)
        ),
        10.0,
        "replica 2 shows orion's booking as the gateway does",
        progress=lambda: (orion_status(admin_r2), orion_status(admin_gateway)),
    )
    assert orion_status(admin_r2)["booking"]["current"]["title"] == "Planning"
    assert (
        campus.as_key(campus.replicas[1], "hq-booking")
        .get("/v1/rooms/orion")
        .json()["booking"]["current"]["title"]
        is None
    )

    # The room's calendar feed, from the store, as the gateway serves it.
    feed = r1.get("/v1/rooms/orion/calendar.ics")
    assert feed.status_code == 200 and "SUMMARY:Planning" in feed.text
    assert feed.text == gateway.get("/v1/rooms/orion/calendar.ics").text

    # Presence in the room: the gateway that owns it checks the booking in.
    def checked_in() -> bool:
        presence(campus, "hq", 2, "orion")
        return r2.get(f"/v1/bookings/{booking['id']}").json()["status"] == "checked_in"

    wait_until(checked_in, 10.0, "the gateway checks the booking in")
    # The event follows with the gateway's next history commit.
    events = wait_until(
        lambda: r1.get("/v1/events", kind="booking_checked_in", room="orion").json()["events"], 5.0, "event"
    )
    assert [e["data"]["booking"] for e in events] == [booking["id"]]
    # Cancelled through the other replica: the gateway does it, both see it.
    cancelled = r2.delete(f"/v1/bookings/{booking['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert r1.get(f"/v1/bookings/{booking['id']}").json()["status"] == "cancelled"


def test_a_room_whose_sensors_went_offline_has_the_same_caveat_on_replicas(campus: Campus) -> None:
    """The published room document says when every presence sensor of a room is offline,
    so a replica's availability gives the caveat the gateway gives."""
    apis = [campus.as_key(server, "admin") for server in (campus.gateway, *campus.replicas)]
    pir = f"{PREFIX}/annex/1/rigel/rigel-pir"

    def rigel_everywhere() -> list[tuple[bool, list[str], bool]]:
        seen = []
        for api in apis:
            rooms = api.get("/v1/availability", building="annex").json()["rooms"]
            rigel = next(room for room in rooms if room["id"] == "rigel")
            status = api.get("/v1/rooms/rigel").json()["occupancy"]
            seen.append((rigel["available"], rigel["reasons"], status["sensors_offline"]))
        return seen

    presence(campus, "annex", 1, "rigel", occupied=False)
    campus.publisher.publish(f"{pir}/availability", "offline")
    wait_until(
        lambda: rigel_everywhere() == [(True, ["sensors_offline"], True)] * 3,
        10.0,
        "the caveat on the gateway and both replicas",
        progress=rigel_everywhere,
    )
    campus.publisher.publish(f"{pir}/availability", "online")
    wait_until(
        lambda: rigel_everywhere() == [(True, [], False)] * 3,
        10.0,
        "the caveat gone everywhere",
        progress=rigel_everywhere,
    )


def test_a_command_through_a_replica_is_carried_out_and_audited_by_the_gateway(campus: Campus) -> None:
    light = SimLight(campus.broker, f"{PREFIX}/annex/1/vega/vega-light")
    try:
        r1, r2 = (campus.as_key(r, "operator") for r in campus.replicas)
        response = r2.post("/v1/rooms/vega/lights", {"on": True, "brightness_pct": 50})
        assert response.status_code == 200, response.text
        assert response.json()["commands"] == [
            {"device_id": "vega-light", "payload": {"state": "ON", "brightness": 127}, "outcome": "sent",
             "detail": response.json()["commands"][0]["detail"]}
        ]  # fmt: skip
        wait_until(lambda: light.commands, 5.0, "the light gets the command")
        assert light.commands[-1] == {"state": "ON", "brightness": 127}
        # Confirmed as the gateway confirms any command: the light reports, the room says so.
        wait_until(lambda: r1.get("/v1/rooms/vega").json()["lighting"]["on"] is True, 5.0, "vega lit")

        # Audited by the gateway as the key's (in the store with its next history commit).
        audit = wait_until(
            lambda: r1.get("/v1/events", kind="audit", room="vega").json()["events"], 5.0, "the audit event"
        )
        assert [(e["data"]["actor"], e["data"]["action"]) for e in audit] == [("facilities", "room_lights")]
        command = r1.post("/v1/devices/vega-light/commands", {"state": "OFF"})
        assert command.status_code == 200, command.text
        assert command.json()["outcome"] == "sent"
        wait_until(lambda: light.commands[-1] == {"state": "OFF"}, 5.0, "the light is switched off")
        metrics = campus.as_key(campus.gateway, "admin").get("/metrics").text
        done = [
            line
            for line in metrics.splitlines()
            if line.startswith('officegw_replica_commands_total{outcome="ok"}')
        ]
        assert done and float(done[0].split()[1]) >= 2, done
    finally:
        light.close()


def test_keys_scoped_to_a_building_hold_on_replicas(campus: Campus) -> None:
    replica = campus.replicas[0]
    hq = campus.as_key(replica, "hq-booking")
    hq_operator = campus.as_key(replica, "hq-operator")
    admin = campus.as_key(replica, "booking")
    wait_until(lambda: {r["id"] for r in admin.rooms()} >= ANNEX_ROOMS, 10.0, "annex rooms published")

    assert {room["building"] for room in hq.rooms()} == {"hq"}
    assert hq.get("/v1/rooms/vega").status_code == 404
    assert hq.get("/v1/rooms", building="annex").json()["count"] == 0
    assert {r["building"] for r in hq.get("/v1/availability").json()["rooms"]} == {"hq"}
    start = datetime.now(UTC) + timedelta(hours=3)
    window = {"start": iso(start), "end": iso(start + timedelta(minutes=30))}
    assert hq.post("/v1/bookings", {"room_id": "vega", **window}).status_code == 404
    annex_booking = admin.post("/v1/bookings", {"room_id": "rigel", "title": "Annex only", **window})
    assert annex_booking.status_code == 201, annex_booking.text
    assert hq.get(f"/v1/bookings/{annex_booking.json()['id']}").status_code == 404
    assert annex_booking.json()["id"] not in {b["id"] for b in hq.get("/v1/bookings").json()["bookings"]}
    assert hq_operator.post("/v1/rooms/vega/lights", {"on": False}).status_code == 404
    events = hq.get("/v1/events", limit=1000).json()["events"]
    assert all(e["room_id"] in HQ_ROOMS for e in events), events
    # A key may book in its own building through a replica.
    own = hq.post("/v1/bookings", {"room_id": "lyra", **window})
    assert own.status_code == 201, own.text


def test_the_stream_of_a_replica_carries_room_changes_and_the_gateways_events(campus: Campus) -> None:
    replica = campus.replicas[1]
    reader = StreamReader(
        str(replica.http.base_url), "/v1/stream?building=hq", headers={"Authorization": "Bearer hq-booking"}
    )
    try:
        snapshot = reader.wait_ready()
        assert {sse.json()["id"] for sse in snapshot if sse.event == "room"} == HQ_ROOMS
        presence(campus, "hq", 3, "desks")
        presence(campus, "annex", 1, "vega")
        wait_until(
            lambda: any(
                sse.event == "room"
                and sse.json()["id"] == "desks"
                and sse.json()["occupancy"]["state"] == "occupied"
                for sse in reader.events
            ),
            10.0,
            "desks occupied on the stream",
        )
        # The gateway's events reach it from the store, with their ids, in order.
        wait_until(lambda: [sse for sse in reader.events if sse.id is not None], 10.0, "an event with an id")
        ids = [int(sse.id) for sse in reader.events if sse.id is not None]
        assert ids == sorted(ids)
        # A key scoped to hq gets nothing of the annex.
        assert all(
            sse.json().get("building") in (None, "hq") for sse in reader.events if sse.event != "ready"
        )
    finally:
        reader.close()


def test_a_replica_started_after_the_gateways_gets_the_whole_campus(campus: Campus) -> None:
    late = start_replica(campus.config, "r3")
    try:
        api = campus.as_key(late, "admin")
        first = campus.as_key(campus.replicas[0], "admin")
        wait_until(
            lambda: {r["id"] for r in api.rooms()} == SERVED,
            10.0,
            "every room from retained topics",
        )
        assert without_energy(api.rooms()) == without_energy(first.rooms())
    finally:
        late.stop()


def test_a_command_goes_to_the_gateway_of_the_rooms_building(campus: Campus) -> None:
    light = SimLight(campus.broker, f"{PREFIX}/west/1/polaris/polaris-light")
    try:
        response = campus.as_key(campus.replicas[0], "operator").post(
            "/v1/rooms/polaris/lights", {"on": True}
        )
        assert response.status_code == 200, response.text
        wait_until(lambda: light.commands == [{"state": "ON"}], 5.0, "polaris's light gets the command")
        # Carried out and audited by the west gateway, not by the other one.
        west = campus.as_key(campus.west, "admin")
        wait_until(
            lambda: west.get("/v1/events", kind="audit", room="polaris").json()["events"], 5.0, "audit"
        )
        hq = campus.as_key(campus.gateway, "admin")
        assert hq.get("/v1/events", kind="audit", room="polaris").json()["events"] == []
    finally:
        light.close()
    if not campus.shared:
        return  # with SQLite the west gateway's bookings are in its own file, not the replicas'
    # A booking of a west room through a replica: the west gateway writes it to the shared
    # store, checks it in on presence; both replicas see it.
    r1, r2 = (campus.as_key(r, "booking") for r in campus.replicas)
    start = datetime.now(UTC)
    made = r2.post(
        "/v1/bookings", {"room_id": "polaris", "start": iso(start), "end": iso(start + timedelta(hours=1))}
    )
    assert made.status_code == 201, made.text
    booking_id = made.json()["id"]

    def checked_in() -> bool:
        presence(campus, "west", 1, "polaris")
        return r1.get(f"/v1/bookings/{booking_id}").json()["status"] == "checked_in"

    wait_until(checked_in, 10.0, "the west gateway checks the booking in")


def test_a_command_for_a_building_no_gateway_serves_is_a_503_not_a_hang(campus: Campus) -> None:
    api = campus.as_key(campus.replicas[0], "operator")
    response = api.post("/v1/rooms/sirius/lights", {"on": True})
    assert response.status_code == 503
    assert "did not answer within 2 s" in response.json()["detail"]


def test_a_replica_under_systemd_says_ready_pets_its_watchdog_and_says_stopping(campus: Campus) -> None:
    notify = campus.config.parent / "replica-notify"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(notify))
    systemd.settimeout(10)
    try:
        env = {"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "2000000"}
        replica = start_replica(campus.config, "r-systemd", env)
        try:
            notes = [systemd.recv(64).decode() for _ in range(3)]
            assert notes.count("READY=1") == 1 and "WATCHDOG=1" in notes
        finally:
            replica.stop()
        notes = []
        while (note := systemd.recv(64).decode()) != "STOPPING=1":
            notes.append(note)
        assert set(notes) <= {"WATCHDOG=1"}
    finally:
        systemd.close()
        notify.unlink()


def test_officegw_api_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "api", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "officegw api" in done.stdout and "--config" in done.stdout


def test_officegw_api_without_a_gateways_store_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump({"storage": {"path": str(tmp_path / "none.db")}}))
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "api", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 2
    assert "storage.path:" in done.stderr and "start one first" in done.stderr
    assert not (tmp_path / "none.db").exists()  # a replica creates no store
