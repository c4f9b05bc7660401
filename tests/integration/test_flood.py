"""Issue 4's flood test: one device publishing 2,000 msgs/s for 10 s, against
`officegw run` as its own process on the real broker.

Other rooms must stay on time (motion -> light command, p50 < 20 ms and p90 <
100 ms on the probes; the tail is benchmarks/actuation.py's), the flood
is throttled and flagged, its last reading still lands, and the gateway's memory
stays flat.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from simulators.broker import BrokerProcess, free_port
from tests.support import GatewayProcess, unique_prefix, wait_until

PROBE_ROOMS = 20
FLOOD_RATE = 2_000
FLOOD_SECONDS = 10.0

RULES = """
rules:
  - name: motion-lights-on
    priority: energy
    trigger: {occupancy: occupied}
    actions:
      - lights: "on"
"""

# A device gone wrong: QoS 0 readings as fast as it is paced, on one topic.
FLOODER = """
import sys, time
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rate, seconds = float(sys.argv[4]), float(sys.argv[5])
client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
client.connect(host, port)
client.loop_start()
start, sent = time.perf_counter(), 0
while (elapsed := time.perf_counter() - start) < seconds:
    while sent < int(elapsed * rate):
        client.publish(topic, orjson.dumps({"co2": 400 + sent}), qos=0)
        sent += 1
    time.sleep(0.002)
client.publish(topic, orjson.dumps({"co2": 400 + sent}), qos=1).wait_for_publish(5)
print(400 + sent, flush=True)
client.disconnect()
client.loop_stop()
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Probe:
    """Motion to probe rooms in turn; times the light command each one answers with."""

    def __init__(self, broker: BrokerProcess, prefix: str) -> None:
        self.prefix = prefix
        self.latencies: list[float] = []
        self._sent: dict[int, float] = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_command
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(f"{prefix}/hq/1/+/+/set", qos=1)
        self._client.loop_start()
        assert subscribed.wait(5), "no SUBACK"

    def _on_command(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        room = int(message.topic.split("/")[3].removeprefix("probe-"))
        with self._lock:
            sent = self._sent.pop(room, None)
        if sent is not None:
            self.latencies.append(now - sent)

    def run(self, until: float, interval: float) -> int:
        count = 0
        while time.monotonic() < until:
            room = count % PROBE_ROOMS
            with self._lock:
                self._sent[room] = time.perf_counter()
            self._client.publish(
                f"{self.prefix}/hq/1/probe-{room}/probe-{room}-pir", b'{"occupancy": true}', qos=1
            )
            count += 1
            time.sleep(interval)
        return count

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def gateway_process(tmp_path: Path, mqtt_broker: BrokerProcess) -> Iterator[tuple[GatewayProcess, str]]:
    prefix = unique_prefix()
    port = free_port()
    (tmp_path / "rules.yaml").write_text(RULES)
    rooms = [
        {"id": f"probe-{i}", "building": "hq", "floor": 1, "type": "meeting"} for i in range(PROBE_ROOMS)
    ]
    rooms.append({"id": "noisy", "building": "hq", "floor": 1, "type": "meeting"})
    devices = [{"id": f"probe-{i}-light", "room": f"probe-{i}", "kind": "light"} for i in range(PROBE_ROOMS)]
    config = tmp_path / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"flood-{prefix}", "log_level": "WARNING"},
                "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(tmp_path / "officegw.db")},
                "rules": str(tmp_path / "rules.yaml"),
                # Each probe room is vacant again before its next probe (every 2 s).
                "occupancy": {"vacancy_timeout": 1.0},
                "actuation": {"min_switch_interval": 0, "confirm_timeout": 600},
                "quality": {"reconnect_grace": 0},
                "site": {"rooms": rooms, "devices": devices},
            }
        )
    )
    gateway = GatewayProcess(config, tmp_path / "gateway.log", port)
    try:
        gateway.start()
        yield gateway, prefix
    finally:
        gateway.stop()
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def test_a_flood_leaves_other_rooms_on_time_and_memory_flat(
    mqtt_broker: BrokerProcess, gateway_process: tuple[GatewayProcess, str]
) -> None:
    gateway, prefix = gateway_process
    http = gateway.http
    probe = Probe(mqtt_broker, prefix)
    flooder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FLOODER,
            mqtt_broker.host,
            str(mqtt_broker.port),
            f"{prefix}/hq/1/noisy/noisy-env",
            str(FLOOD_RATE),
            str(FLOOD_SECONDS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started = time.monotonic()
        probe.run(started + 2.0, 0.1)  # the flood reaches its rate
        rss_early = rss_kib(gateway.pid)
        sent = probe.run(started + FLOOD_SECONDS - 0.5, 0.1)
        rss_late = rss_kib(gateway.pid)
        last_co2, _ = flooder.communicate(timeout=30)
        assert flooder.returncode == 0, "the flooding device failed"
        wait_until(lambda: len(probe.latencies) >= sent, 5.0, "an answer to every probe")
    finally:
        probe.close()
        if flooder.poll() is None:
            flooder.kill()
            flooder.wait()

    latencies_ms = sorted(v * 1000 for v in probe.latencies)
    p99 = latencies_ms[min(len(latencies_ms) - 1, int(0.99 * len(latencies_ms)))]
    print(
        f"probes={len(latencies_ms)} p50={statistics.median(latencies_ms):.1f}ms p99={p99:.1f}ms "
        f"rss {rss_early} -> {rss_late} KiB"
    )
    # Other rooms are not queued behind the flood: were they, every probe would wait
    # (hundreds of ms to seconds). The tail is not asserted: with ~90 probes the p99
    # is one sample, and one scheduler hiccup of a loaded 2-core machine makes it
    # (155 ms once with p50 2.2 ms). Tail latency is measured by benchmarks/actuation.py.
    p90 = latencies_ms[int(0.9 * len(latencies_ms))]
    assert statistics.median(latencies_ms) < 20.0 and p90 < 100.0, f"p50/p90 {latencies_ms}"
    assert rss_late - rss_early < 8 * 1024, f"memory grew {rss_early} -> {rss_late} KiB"

    # The flood was throttled and flagged, and its last reading still landed.
    noisy = http.get("/v1/devices/noisy.noisy-env").json()  # auto-registered: <room>.<name>
    assert noisy["quality"]["flooding"] is True
    assert noisy["quality"]["throttled"] > FLOOD_RATE * FLOOD_SECONDS * 0.9
    wait_until(
        lambda: http.get("/v1/rooms/noisy").json()["environment"]["co2_ppm"] == int(last_co2),
        5.0,
        "the flood's last reading",
    )
    metrics = http.get("/metrics").text
    assert 'officegw_devices_flagged{flag="flooding"} 1.0' in metrics
