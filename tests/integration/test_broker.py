"""simulators.broker against real broker processes (mosquitto and amqtt) on random ports."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.broker import (
    MOSQUITTO_DEFAULTS,
    BrokerProcess,
    BrokerStartError,
    free_port,
    mosquitto_config,
    port_is_free,
    start_embedded_broker,
    start_mosquitto,
    wait_for_port,
)

TIMEOUT = 10.0


def topic_root() -> str:
    return f"office-{uuid.uuid4().hex[:8]}"


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def connected_client(broker: BrokerProcess, *, clean: bool = True) -> Iterator[mqtt.Client]:
    """A paho 2.x client connected to `broker` (MQTT 5 when it speaks it), loop running."""
    protocol = mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    connected = threading.Event()
    result: list[Any] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        result.append(reason)
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        assert connected.wait(TIMEOUT), f"no CONNACK from {broker}\n{broker.log_tail()}"
        assert not result[0].is_failure, f"connect refused: {result[0]}"
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def qos1_round_trip(broker: BrokerProcess) -> None:
    """Subscribe, publish one QoS 1 message, and receive it, all through `broker`."""
    topic = f"{topic_root()}/hq/2/orion/orion-pir"
    payload = b'{"occupancy": true}'
    received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()

    with connected_client(broker) as sub, connected_client(broker) as pub:
        sub.on_message = lambda _c, _u, msg: received.put(msg)
        sub.on_subscribe = lambda _c, _u, _mid, _codes, _p: subscribed.set()
        sub.subscribe(topic, qos=1)
        assert subscribed.wait(TIMEOUT), "no SUBACK"

        info = pub.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=TIMEOUT)
        assert info.is_published(), "no PUBACK"

        msg = received.get(timeout=TIMEOUT)
        assert (msg.topic, msg.payload, msg.qos) == (topic, payload, 1)


# --- helpers without a broker ---------------------------------------------------


def test_free_port_is_free_and_wait_for_port_times_out_on_it() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.2)


def test_port_is_free_false_and_wait_for_port_returns_while_listening() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, timeout=TIMEOUT)


def test_mosquitto_config_is_loss_free_and_low_latency() -> None:
    lines = mosquitto_config(1883).splitlines()
    for expected in (
        "listener 1883 127.0.0.1",
        "allow_anonymous true",
        "set_tcp_nodelay true",
        "max_queued_messages 0",
        "max_queued_bytes 0",
    ):
        assert expected in lines
    assert not any(line.startswith("persistence") for line in lines)


def test_mosquitto_config_with_persistence(tmp_path: Path) -> None:
    lines = mosquitto_config(1883, persistence_dir=tmp_path).splitlines()
    assert "persistence true" in lines
    assert f"persistence_location {tmp_path}/" in lines
    assert any(line.startswith("autosave_interval ") for line in lines)


def test_amqtt_broker_module_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulators.amqtt_broker", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--port" in done.stdout


# --- mosquitto -------------------------------------------------------------------


def test_mosquitto_round_trip_restart_and_stop() -> None:
    broker = start_mosquitto()
    try:
        assert broker.kind == "mosquitto"
        assert broker.mqtt5
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.is_running()
        qos1_round_trip(broker)

        port, first_pid = broker.port, broker.pid
        broker.restart()
        assert broker.port == port
        assert broker.pid != first_pid
        assert first_pid is not None and not pid_exists(first_pid)
        qos1_round_trip(broker)

        pid, directory = broker.pid, broker.directory
        assert pid is not None and directory is not None
    finally:
        broker.stop()
    assert not broker.is_running()
    assert not pid_exists(pid)
    assert not directory.exists()
    assert port_is_free(broker.host, broker.port)
    broker.stop()  # idempotent


def test_mosquitto_persistence_keeps_retained_messages_across_restart() -> None:
    topic = f"{topic_root()}/hq/2/orion/orion-pir/availability"
    with start_mosquitto(persistence=True) as broker:
        with connected_client(broker) as pub:
            info = pub.publish(topic, b"online", qos=1, retain=True)
            info.wait_for_publish(timeout=TIMEOUT)
            assert info.is_published()

        broker.restart()

        received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        with connected_client(broker) as sub:
            sub.on_message = lambda _c, _u, msg: received.put(msg)
            sub.subscribe(topic, qos=1)
            msg = received.get(timeout=TIMEOUT)
        assert (msg.payload, msg.retain) == (b"online", True)


def test_start_refuses_a_port_in_use() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = BrokerProcess("mosquitto", squatter.getsockname()[1])
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start()
        assert broker.pid is None
        broker.stop()


# --- amqtt -----------------------------------------------------------------------


def test_amqtt_round_trip_and_stop() -> None:
    with start_embedded_broker(prefer_mosquitto=False) as broker:
        assert broker.kind == "amqtt"
        assert not broker.mqtt5
        qos1_round_trip(broker)
        pid, directory = broker.pid, broker.directory
        assert pid is not None and directory is not None
    assert not broker.is_running()
    assert not pid_exists(pid)
    assert not directory.exists()


def test_amqtt_restart_on_same_port() -> None:
    with start_embedded_broker(prefer_mosquitto=False) as broker:
        port = broker.port
        broker.restart()
        assert broker.port == port
        qos1_round_trip(broker)


def test_mosquitto_config_options_replace_add_and_remove_lines() -> None:
    lines = mosquitto_config(
        1883, options={"max_queued_messages": 10, "sys_interval": 1, "max_inflight_messages": None}
    ).splitlines()
    assert "max_queued_messages 10" in lines
    assert "max_queued_messages 0" not in lines
    assert "sys_interval 1" in lines
    assert not any(line.startswith("max_inflight_messages") for line in lines)


def test_mosquitto_defaults_leave_the_limits_to_mosquitto() -> None:
    lines = mosquitto_config(1883, options=MOSQUITTO_DEFAULTS).splitlines()
    assert "listener 1883 127.0.0.1" in lines
    assert "allow_anonymous true" in lines
    for option in ("max_queued_messages", "max_queued_bytes", "max_inflight_messages", "set_tcp_nodelay"):
        assert not any(line.startswith(option) for line in lines), option


def test_broker_started_with_options_uses_them() -> None:
    with BrokerProcess("mosquitto", options={"max_queued_messages": 10, "sys_interval": 1}) as broker:
        assert broker.directory is not None
        conf = (broker.directory / "mosquitto.conf").read_text().splitlines()
        assert "max_queued_messages 10" in conf
        with connected_client(broker) as client:
            assert client.is_connected()


def test_options_are_for_mosquitto_only() -> None:
    with pytest.raises(ValueError, match="only supported with mosquitto"):
        BrokerProcess("amqtt", options={"sys_interval": 1})
