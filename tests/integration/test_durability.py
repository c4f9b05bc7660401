"""Issue 5's fault tests: real processes, killed and restarted.

- `officegw run` SIGKILLed while 5,000 QoS 1 readings come in, then restarted:
  every reading is in the history once, and no event is recorded twice.
- the broker restarted while readings come in: none lost (mosquitto with persistence,
  RabbitMQ); the SIGKILL above runs on both too.
- The store's disk fills up: live state carries on, `/readyz` and `/metrics`
  say so, and the history catches up once there is room again.
- `officegw run` SIGKILLed after a reading changed a room's occupancy: the device
  time it reached was committed with it, so the broker's retained copy of an
  older reading changes nothing after the restart (issue 11 point 6).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from gateway.storage.event_numbering import NUMBERING_GAP
from simulators.broker import BrokerProcess, MqttBroker, RestartableBroker, free_port
from tests.support import GatewayProcess, Publisher, fleet_client, start_gateway, unique_prefix, wait_until

ROOMS = 10
DEVICES = 50
# Device times of an hour ago: recent enough for any retention.
T0 = time.time() - 3600


def history_count(db: Path, sql: str = "SELECT count(*) FROM readings_all") -> int:
    """Read straight from the gateway's file (WAL: readers never block its writer)."""
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not created yet


def messages(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """`count` readings with device timestamps; the first message of each room is motion."""
    out = []
    for i in range(count):
        room = i % ROOMS
        if i < ROOMS:
            topic, fields = f"{prefix}/hq/1/r{room}/r{room}-pir", {"occupancy": True}
        else:
            device = i % DEVICES
            topic, fields = f"{prefix}/hq/1/r{room}/r{room}-env{device}", {"co2": 400 + i % 900}
        out.append((topic, orjson.dumps({**fields, "ts": T0 + i * 0.001})))
    return out


class SteadyPublisher:
    """A device fleet: QoS 1 with a persistent session, so nothing is lost across a
    broker restart either (paho queues while disconnected and resends what was not
    acknowledged)."""

    def __init__(self, broker: MqttBroker) -> None:
        self._acked: set[int] = set()
        self._client = fleet_client(broker.host, broker.port, self._acked)
        # Back within a second of a broker restart.
        self._client.reconnect_delay_set(1, 1)
        self._mids: list[int] = []
        self._thread: threading.Thread | None = None

    def send(self, items: list[tuple[str, bytes]], rate: float) -> None:
        def run() -> None:
            start = time.perf_counter()
            for n, (topic, payload) in enumerate(items):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                # While disconnected paho queues the message (rc "no connection").
                self._mids.append(self._client.publish(topic, payload, qos=1).mid)

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def wait(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        wait_until(lambda: self._acked.issuperset(self._mids), timeout, "a PUBACK for every message")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def write_gateway_files(directory: Path, broker: MqttBroker) -> tuple[Path, Path, str, int]:
    """(config, database, topic prefix, API port) of a gateway run by the test."""
    prefix = unique_prefix()
    port = free_port()
    db = directory / "officegw.db"
    rooms = [{"id": f"r{i}", "building": "hq", "floor": 1, "type": "office"} for i in range(ROOMS)]
    config = directory / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"durable-{prefix}", "log_level": "INFO"},
                "mqtt": {
                    "url": broker.url,
                    "topic_prefix": prefix,
                    "protocol": "5" if broker.mqtt5 else "3.1.1",
                },
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(db)},
                "occupancy": {"vacancy_timeout": 3600},
                # 40 readings/s per device (2,000/s over 50): over the flood limit, which
                # only the 30 s reconnect grace keeps off; a throttled reading is
                # acknowledged at once and lost to a SIGKILL before it is applied.
                "quality": {"max_rate": 1000, "burst": 1000},
                "site": {"rooms": rooms},
            }
        )
    )
    return config, db, prefix, port


def assert_no_traceback(directory: Path) -> None:
    log = directory / "gateway.log"
    if log.exists():
        assert "Traceback" not in log.read_text()


@pytest.fixture
def gateway_files(tmp_path: Path, mqtt_broker: BrokerProcess) -> Iterator[tuple[Path, Path, str, int]]:
    """`write_gateway_files` for the session's mosquitto."""
    yield write_gateway_files(tmp_path, mqtt_broker)
    assert_no_traceback(tmp_path)


def _backlog(broker: MqttBroker) -> str:
    """What a RabbitMQ node holds for the sessions (ready, unacknowledged): why a test waits."""
    ctl = getattr(broker, "ctl", None)
    if ctl is None:
        return "n/a"
    return str(ctl("list_queues", "name", "messages_ready", "messages_unacknowledged", "consumers"))


def test_sigkill_while_readings_arrive_loses_and_duplicates_nothing(
    broker: MqttBroker, tmp_path: Path
) -> None:
    """On each broker kind: QoS 1 redelivery after the kill brings back what was not committed."""
    config, db, prefix, port = write_gateway_files(tmp_path, broker)
    gateway = GatewayProcess(config, config.parent / "gateway.log", port)
    publisher = SteadyPublisher(broker)
    items = messages(prefix, 5_000)
    try:
        gateway.start()
        publisher.send(items, rate=2_000)
        wait_until(lambda: history_count(db) >= 1_000, 20, "a first part committed")
        gateway.kill()
        killed_at = history_count(db)
        assert killed_at < 5_000, "the kill came too late to test anything"
        gateway.start()
        publisher.wait(30)
        wait_until(
            lambda: history_count(db) == 5_000,
            30,
            f"every reading in the history (killed at {killed_at})",
            progress=lambda: f"{history_count(db)} in the history; broker: {_backlog(broker)}",
        )
        # Each room became occupied once: one occupancy event per room, never two.
        occupied = history_count(
            db, """SELECT count(*) FROM events WHERE kind = 'occupancy' AND data LIKE '%"new":"occupied"%'"""
        )
        assert occupied == ROOMS
        per_device = history_count(
            db, "SELECT max(n) FROM (SELECT count(*) AS n FROM readings_all GROUP BY device, metric, ts)"
        )
        assert per_device == 1
    finally:
        publisher.close()
        gateway.stop()
    assert_no_traceback(tmp_path)


def test_sigkill_keeps_the_device_time_an_occupancy_change_reached(
    mqtt_broker: BrokerProcess, gateway_files: tuple[Path, Path, str, int], publisher: Publisher
) -> None:
    config, db, prefix, port = gateway_files
    gateway = GatewayProcess(config, config.parent / "gateway.log", port)
    counter = f"{prefix}/hq/1/r0/r0-counter"
    t2 = T0 + 600
    occupied_events = """SELECT count(*) FROM events WHERE kind = 'occupancy' AND room = 'r0'"""

    def occupancy() -> dict[str, Any]:
        result: dict[str, Any] = gateway.http.get("/v1/rooms/r0").json()["occupancy"]
        return result

    try:
        gateway.start()
        publisher.publish(counter, {"people": 3, "ts": t2}, retain=True)
        wait_until(lambda: history_count(db, "SELECT count(*) FROM readings_all") == 1, 10, "committed")
        # In the same transaction as the reading (and before its ack), since it
        # changed the room's occupancy: not left to the next checkpoint.
        assert history_count(db, "SELECT count(*) FROM device_states WHERE device = 'r0.r0-counter'") == 1
        assert history_count(db, occupied_events) == 1
        publisher.publish(counter, {"people": 0, "ts": t2 - 60}, retain=True)
        wait_until(lambda: gateway.metric("officegw_messages_late_total") == 1, 10, "older: late")
        gateway.kill()
        gateway.start()
        wait_until(
            lambda: (
                gateway.metric("officegw_messages_received_total") >= 1
                and gateway.metric("officegw_messages_accepted_total")
                == gateway.metric("officegw_messages_received_total")
            ),
            10,
            "the retained older reading replayed and handled",
        )
        assert occupancy()["people"] == 3
        assert occupancy()["state"] == "occupied"
        # The retained copy, and the QoS 1 redelivery too if the kill beat its ack.
        assert gateway.metric("officegw_messages_late_total") >= 1
        assert history_count(db, occupied_events) == 1
    finally:
        gateway.stop()
        publisher.publish(counter, b"", retain=True)


def test_event_numbers_are_never_given_twice_across_a_sigkill(
    gateway_files: tuple[Path, Path, str, int], publisher: Publisher
) -> None:
    """Stream clients get an event's number before it is committed, so a crash can leave
    numbers out that a client holds: after a SIGKILL numbering resumes past a gap of
    NUMBERING_GAP, after a clean stop right after the last number."""
    config, db, prefix, port = gateway_files
    gateway = GatewayProcess(config, config.parent / "gateway.log", port)

    def occupancy_numbers() -> list[int]:
        events = gateway.http.get("/v1/events", params={"kind": "occupancy"}).json()["events"]
        return sorted(event["seq"] for event in events)

    def occupy(room: int, count: int) -> list[int]:
        publisher.publish(f"{prefix}/hq/1/r{room}/r{room}-pir", {"occupancy": True})
        wait_until(lambda: len(occupancy_numbers()) == count, 10, f"occupancy event {count}")
        return occupancy_numbers()

    try:
        gateway.start()
        (first,) = occupy(0, 1)
        wait_until(lambda: history_count(db, "SELECT count(*) FROM events") >= 1, 10, "committed")
        gateway.kill()
        gateway.start()
        after_kill = occupy(1, 2)[-1]
        assert after_kill == first + NUMBERING_GAP + 1
        assert "the last run did not stop cleanly" in (config.parent / "gateway.log").read_text()
        gateway.stop()
        gateway = GatewayProcess(config, config.parent / "gateway.log", port)
        gateway.start()
        assert occupy(2, 3)[-1] == after_kill + 1
    finally:
        gateway.stop()


def test_a_broker_restart_while_publishing_loses_nothing(
    restartable_broker: RestartableBroker, tmp_path: Path
) -> None:
    """On each broker kind (mosquitto with persistence): the gateway's persistent session and
    the fleet's unacknowledged messages survive the restart."""
    broker = restartable_broker
    gw = start_gateway(
        broker,
        {"site": {"rooms": [{"id": f"r{i}", "building": "hq", "floor": 1} for i in range(ROOMS)]}},
        storage=tmp_path / "officegw.db",
    )
    publisher = SteadyPublisher(broker)
    try:
        items = messages(gw.prefix, 2_000)
        publisher.send(items, rate=1_000)
        wait_until(lambda: gw.metric("officegw_history_readings_written_total") >= 300, 10, "some written")
        broker.restart()
        publisher.wait(30)
        names = (
            "officegw_messages_received_total",
            "officegw_messages_accepted_total",
            "officegw_messages_throttled_total",
            "officegw_history_readings_duplicate_total",
            "officegw_history_readings_written_total",
        )
        wait_until(
            lambda: gw.metric("officegw_history_readings_written_total") == 2_000,
            30,
            "all 2,000 readings",
            progress=lambda: {name: gw.metric(name) for name in names},
        )
    finally:
        publisher.close()
        gw.stop()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A small filesystem of our own that the test can fill up (needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.fail("this fault test mounts a tmpfs and needs root (CI runs as root)")
    mount_point = Path(f"/tmp/officegw-disk-{unique_prefix()}")
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(disk: Path) -> Path:
    """Takes every free byte of the filesystem; returns the file to delete."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65_536)
                f.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_keeps_live_state_and_recovers(mqtt_broker: BrokerProcess, small_disk: Path) -> None:
    site: dict[str, Any] = {"rooms": [{"id": "r0", "building": "hq", "floor": 1}]}
    gw = start_gateway(mqtt_broker, {"site": site}, storage=small_disk / "officegw.db")
    publisher = SteadyPublisher(mqtt_broker)
    topic = f"{gw.prefix}/hq/1/r0/r0-env"
    try:
        publisher.send([(topic, orjson.dumps({"co2": 500, "ts": T0}))], rate=100)
        publisher.wait(5)
        wait_until(
            lambda: gw.metric("officegw_history_readings_written_total") == 1, 5, "first reading stored"
        )

        filler = fill(small_disk)
        publisher.send(
            [(topic, orjson.dumps({"co2": 600 + i, "ts": T0 + 1 + i})) for i in range(20)], rate=200
        )
        publisher.wait(5)
        # Live state carries on ...
        wait_until(lambda: gw.room("r0")["environment"]["co2_ppm"] == 619, 5, "live state")
        # ... and the fault is reported, without taking the gateway out of service.
        wait_until(lambda: gw.get("/readyz").json()["checks"]["storage"] is False, 5, "/readyz storage")
        ready = gw.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert gw.metric("officegw_storage_healthy") == 0
        assert gw.metric("officegw_history_write_failures_total") >= 1

        filler.unlink()
        wait_until(lambda: gw.get("/readyz").json()["status"] == "ready", 15, "recovered")
        wait_until(lambda: gw.metric("officegw_history_readings_written_total") == 21, 5, "kept rows written")
        assert gw.metric("officegw_history_readings_dropped_total") == 0
    finally:
        publisher.close()
        gw.stop()
