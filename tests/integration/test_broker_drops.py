"""Messages mosquitto drops at a full session queue show in /metrics and in the log.

A broker of its own with a queue of 10 messages a session and $SYS published
every second; the burst goes to the gateway's own subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess, start_mosquitto
from tests.support import Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

ROOMS = [{"id": "orion", "building": "hq", "floor": 2, "type": "meeting"}]
BURST = 200
QUEUE = 10


@pytest.fixture
def small_queue_broker() -> Iterator[BrokerProcess]:
    broker = start_mosquitto(
        options={"max_queued_messages": QUEUE, "max_inflight_messages": QUEUE, "sys_interval": 1}
    )
    try:
        yield broker
    finally:
        broker.stop()


def sample(gw: RunningGateway, name: str) -> float | None:
    for line in gw.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def rejected(gw: RunningGateway) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in gw.get("/metrics").text.splitlines()
        if line.startswith("officegw_messages_rejected_total{")
    )


def publish_burst(broker: BrokerProcess, prefix: str, count: int) -> None:
    publisher = Publisher(broker)
    try:
        for i in range(count):
            # Ten devices, so the gateway's own flood protection plays no part.
            publisher.publish(f"{prefix}/hq/2/orion/env-{i % 10}", {"co2": 400 + i})
    finally:
        publisher.close()


class SysWatcher:
    """A plain client following $SYS/broker/publish/messages/dropped."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.dropped = 0
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.subscribe("$SYS/broker/publish/messages/dropped")
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.dropped = int(message.payload)

    def __enter__(self) -> SysWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def warnings_saying(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage().startswith(start)
    ]


def test_drops_at_a_slow_gateways_full_queue_are_counted_and_warned(
    small_queue_broker: BrokerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="officegw.mqtt")
    gw = start_gateway(
        small_queue_broker,
        {
            "site": {"rooms": ROOMS},
            # A slow subscriber: one unacknowledged message at a time, acknowledged
            # after a commit at most 0.2 s later.
            "mqtt": {"receive_maximum": 1},
            "storage": {"path": str(tmp_path / "gw.db"), "commit_interval": 0.2},
        },
    )
    try:
        wait_until(lambda: sample(gw, "officegw_broker_messages_dropped") == 0, 5.0, "broker count followed")
        assert sample(gw, "officegw_broker_drops_seen_total") == 0
        assert (sample(gw, "officegw_broker_messages_stored") or 0) > 0

        # $SYS messages keep coming (every second) and are no device messages.
        publish_burst(small_queue_broker, gw.prefix, 3)
        wait_until(lambda: sample(gw, "officegw_messages_accepted_total") == 3, 5.0, "3 accepted")
        uptime = sample(gw, "officegw_broker_uptime_seconds") or 0
        wait_until(
            lambda: (sample(gw, "officegw_broker_uptime_seconds") or 0) >= uptime + 2,
            5.0,
            "two more rounds of $SYS",
        )
        assert sample(gw, "officegw_messages_received_total") == 3
        assert rejected(gw) == 0
        assert gw.get("/v1/dead-letters").json()["dead_letters"] == []
        assert warnings_saying(caplog, "broker") == []

        publish_burst(small_queue_broker, gw.prefix, BURST)
        seen = wait_until(
            lambda: sample(gw, "officegw_broker_drops_seen_total"),
            10.0,
            "drops seen",
            progress=lambda: gw.get("/metrics").text,
        )
        assert seen > 0
        assert (sample(gw, "officegw_broker_messages_dropped") or 0) >= seen
        (warning,) = wait_until(lambda: warnings_saying(caplog, "broker dropped messages"), 5.0, "a warning")
        assert f"dropped={int(seen)} " in warning
        assert "max_queued_messages" in warning and "README" in warning

        # What was not dropped arrives; together they account for the whole burst
        # (the broker's count may also hold a $SYS message it could not queue for us).
        def received() -> float:
            return sample(gw, "officegw_messages_received_total") or 0

        wait_until(lambda: received() - 3 + seen >= BURST, 15.0, "the rest of the burst", progress=received)
        assert received() - 3 < BURST
        assert rejected(gw) == 0
    finally:
        gw.stop()


def test_drops_while_the_gateway_was_away_are_reported_when_it_comes_back(
    small_queue_broker: BrokerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "site": {"rooms": ROOMS},
        "gateway": {"id": "gw-away"},
        "mqtt": {"topic_prefix": unique_prefix()},
        "storage": {"path": str(tmp_path / "gw.db")},
    }
    first = start_gateway(small_queue_broker, config)
    prefix = first.prefix
    first.stop()

    # The broker queues 10 for the persistent session and drops the rest; the
    # gateway comes back once the broker published its new count.
    with SysWatcher(small_queue_broker) as watcher:
        publish_burst(small_queue_broker, prefix, BURST)
        wait_until(lambda: watcher.dropped, 5.0, "the broker's count published")

    caplog.set_level(logging.INFO, logger="officegw.mqtt")
    second = start_gateway(small_queue_broker, config)
    try:
        dropped = wait_until(lambda: sample(second, "officegw_broker_messages_dropped"), 5.0, "the count")
        received = wait_until(
            lambda: sample(second, "officegw_messages_received_total"), 5.0, "the queued messages"
        )
        assert received + dropped >= BURST
        # Seen before the gateway watched: in the broker's value and warned about,
        # not counted as seen rising.
        assert sample(second, "officegw_broker_drops_seen_total") == 0
        (warning,) = warnings_saying(caplog, "broker had dropped messages before this gateway watched")
        assert f"broker_dropped={int(dropped)} " in warning and "max_queued_messages" in warning
    finally:
        second.stop()


def test_a_broker_that_keeps_sys_to_itself_is_fine(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # mosquitto 2.0.11 grants a $SYS subscription its ACL denies, then sends nothing
    # on it (`#` never matches $SYS): the same as a broker without these counters.
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite #\n")
    broker = start_mosquitto(options={"acl_file": str(acl), "sys_interval": 1})
    caplog.set_level(logging.INFO, logger="officegw.mqtt")
    gw = start_gateway(broker, {"site": {"rooms": ROOMS}, "storage": {"path": str(tmp_path / "gw.db")}})
    try:
        publish_burst(broker, gw.prefix, 3)
        wait_until(lambda: sample(gw, "officegw_messages_accepted_total") == 3, 5.0, "3 accepted")
        assert sample(gw, "officegw_broker_drops_seen_total") == 0
        for absent in ("dropped", "stored"):
            assert sample(gw, f"officegw_broker_messages_{absent}") is None
        assert sample(gw, "officegw_messages_received_total") == 3
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        gw.stop()
        broker.stop()
