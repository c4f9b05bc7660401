"""Issue 17 point 1: a backlog many times the bound on what is read but not committed,
delivered by mosquitto to `officegw run` as one burst after the gateway was away. The
gateway's memory stays flat (it stops reading at the bound; the broker holds the
rest) and every reading is committed once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess, free_port, start_mosquitto
from tests.integration.test_durability import history_count
from tests.support import GatewayProcess, unique_prefix, wait_until

ROOMS = 20
DEVICES = 200
MESSAGES = 40_000
# Readings a message carries: eight, as a multi-sensor reports them.
FIELDS = 8
BOUND = 500
# What the burst may add to the gateway's resident memory. The bound's 500 messages
# and their rows are a few MB; the rest is SQLite's page cache (up to 64 MiB) and the allocator.
# Without the bound the same burst grew it by 68 MB on this machine (2026-11-29);
# with it, by 22 MB.
RSS_GROWTH_LIMIT_MB = 40.0
# Device times of an hour ago: recent enough for any retention.
T0 = time.time() - 3600


def burst(prefix: str) -> list[tuple[str, bytes]]:
    out = []
    for i in range(MESSAGES):
        room, device = i % ROOMS, i % DEVICES
        fields = {
            "co2": 400 + i % 900,
            "temperature": 20 + i % 5,
            "humidity": 40 + i % 20,
            "illuminance": i % 700,
            "noise": 30 + i % 40,
            "voc": i % 300,
            "pm25": i % 50,
            "battery": 90,
        }
        out.append(
            (f"{prefix}/hq/1/r{room}/r{room}-env{device}", orjson.dumps({**fields, "ts": T0 + i * 0.001}))
        )
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class RssSampler:
    """The peak resident memory of a process, sampled every 10 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.peak = rss_mb(pid)
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.peak = max(self.peak, rss_mb(self._pid))
            except (OSError, AssertionError):
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def publish_all(broker: BrokerProcess, items: list[tuple[str, bytes]]) -> None:
    """As fast as the broker takes them, QoS 1; returns once every one is acknowledged."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"fleet-{unique_prefix()}", protocol=mqtt.MQTTv311
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in items]
        deadline = time.monotonic() + 120
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "the broker did not take the whole burst"
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="module")
def eager_broker() -> Iterator[BrokerProcess]:
    """A mosquitto with no in-flight window: it sends a client's whole backlog at once,
    as far as TCP lets it (the worst case; mosquitto's window did not hold the flow
    for MQTT 5 either, issue 17)."""
    broker = start_mosquitto(options={"max_inflight_messages": 0})
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def gateway_config(tmp_path: Path, eager_broker: BrokerProcess) -> Iterator[tuple[Path, Path, str, int]]:
    """(config, database, topic prefix, API port) of a gateway run by the test."""
    prefix = unique_prefix()
    port = free_port()
    db = tmp_path / "officegw.db"
    rooms = [{"id": f"r{i}", "building": "hq", "floor": 1, "type": "office"} for i in range(ROOMS)]
    config = tmp_path / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"bounded-{prefix}", "log_level": "INFO"},
                # MQTT 3.1.1: no Receive Maximum either; nothing but the bound holds the flow.
                "mqtt": {"url": eager_broker.url, "topic_prefix": prefix, "protocol": "3.1.1"},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(db), "max_uncommitted_messages": BOUND},
                # Every message is kept: no per-device rate limit in the way.
                "quality": {"max_rate": 100_000, "burst": 100_000},
                "site": {"rooms": rooms},
            }
        )
    )
    yield config, db, prefix, port
    log = tmp_path / "gateway.log"
    if log.exists():
        assert "Traceback" not in log.read_text()


def test_a_backlog_sixty_times_the_bound_keeps_memory_flat_and_loses_nothing(
    eager_broker: BrokerProcess, gateway_config: tuple[Path, Path, str, int]
) -> None:
    config, db, prefix, port = gateway_config
    log = config.parent / "gateway.log"
    # First run: the persistent session and its subscriptions exist on the broker.
    first = GatewayProcess(config, log, port)
    try:
        first.start()
    finally:
        first.stop()
    publish_all(eager_broker, burst(prefix))  # queued by the broker for the gateway

    process = GatewayProcess(config, log, port)
    try:
        process.start()
        ready_rss = rss_mb(process.pid)
        sampler = RssSampler(process.pid)
        try:
            wait_until(
                lambda: history_count(db) >= MESSAGES * FIELDS,
                120,
                "every reading of the burst committed",
                progress=lambda: history_count(db),
            )
        finally:
            peak = sampler.stop()
        assert history_count(db) == MESSAGES * FIELDS
        once = history_count(
            db, "SELECT max(n) FROM (SELECT count(*) AS n FROM readings_all GROUP BY device, metric, ts)"
        )
        assert once == 1
        # The bound held the reader back.
        assert process.metric("officegw_ingest_backpressure_pauses_total") >= 1
        assert process.metric("officegw_ingest_uncommitted_limit_messages") == BOUND
        growth = peak - ready_rss
        print(f"RSS ready {ready_rss:.1f} MB, peak {peak:.1f} MB, growth {growth:.1f} MB")
        assert growth <= RSS_GROWTH_LIMIT_MB, f"RSS grew {growth:.1f} MB (ready {ready_rss:.1f} MB)"
    finally:
        process.stop()
