"""Event -> actuation latency: motion published -> light command received.

A probe publishes motion to a vacant room; the gateway's rules turn the room's
light on; a subscriber times the `.../set` command. Measured under background
load (environment readings from other rooms at a fixed rate), next to the raw
round trip through the same broker in the same run: a reflector client that
answers each motion message with a command at once (no gateway).

Prints one JSON line per load level, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.broker import BrokerProcess, free_port, start_mosquitto

PREFIX = "office"
PROBE_ROOMS = 100
LOAD_ROOMS = 400
VACANCY_TIMEOUT = 1.0

RULES = """
rules:
  - name: motion-lights-on
    description: Lights on as soon as a room becomes occupied.
    priority: energy
    trigger: {occupancy: occupied}
    actions:
      - lights: "on"
"""


def progress(message: str) -> None:
    print(f"[actuation-bench] {message}", file=sys.stderr, flush=True)


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client(name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.getpid()}", protocol=mqtt.MQTTv5)
    c.on_socket_open = _nodelay
    return c


def probe_topic(i: int) -> str:
    return f"{PREFIX}/hq/1/probe-{i}/probe-{i}-pir"


def light_topic(i: int) -> str:
    return f"{PREFIX}/hq/1/probe-{i}/probe-{i}-light"


def background_load(host: str, port: int, rate: float, stop: Any) -> None:
    """Environment readings from LOAD_ROOMS rooms at `rate` msgs/s, paced in 10 ms slots."""
    c = client("load")
    c.max_inflight_messages_set(1000)
    c.connect(host, port)
    c.loop_start()
    sent, start, i = 0, time.perf_counter(), 0
    while not stop.is_set():
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            room = i % LOAD_ROOMS
            payload = orjson.dumps({"co2": 400 + i % 600, "temperature": 21.5, "humidity": 40.0})
            c.publish(f"{PREFIX}/hq/2/load-{room}/load-{room}-env", payload, qos=1)
            sent, i = sent + 1, i + 1
        time.sleep(0.005)
    c.disconnect()
    c.loop_stop()


class LatencyProbe:
    """Publishes motion to probe rooms in turn and times the light command that answers."""

    def __init__(self, broker: BrokerProcess) -> None:
        self._sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self._lock = threading.Lock()
        self._listener = client("probe-listener")
        self._listener.on_message = self._on_command
        self._listener.connect(broker.host, broker.port)
        self._listener.subscribe(f"{PREFIX}/hq/1/+/+/set", qos=1)
        self._listener.loop_start()
        self._publisher = client("probe")
        self._publisher.connect(broker.host, broker.port)
        self._publisher.loop_start()

    def _on_command(self, c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        room = int(message.topic.split("/")[3].split("-")[1])
        with self._lock:
            sent = self._sent.pop(room, None)
        if sent is not None:
            self.latencies.append(now - sent)

    def run(self, count: int, interval: float) -> list[float]:
        self.latencies = []
        for n in range(count):
            room = n % PROBE_ROOMS
            with self._lock:
                self._sent[room] = time.perf_counter()
            self._publisher.publish(probe_topic(room), b'{"occupancy": true}', qos=1)
            time.sleep(interval)
        deadline = time.monotonic() + 5
        while len(self.latencies) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.latencies)

    def close(self) -> None:
        for c in (self._listener, self._publisher):
            c.disconnect()
            c.loop_stop()


class Reflector:
    """The raw round trip: answers each motion message with a command, doing nothing else."""

    def __init__(self, broker: BrokerProcess) -> None:
        self._client = client("reflector")
        self._client.on_message = lambda c, u, m: c.publish(
            m.topic.removesuffix("-pir") + "-light/set", b'{"state":"ON"}', qos=1
        )
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(f"{PREFIX}/hq/1/+/+", qos=1)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies: list[float], expected: int) -> dict[str, float]:
    ms = [v * 1000 for v in latencies]
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
        "received": len(ms),
        "lost": expected - len(ms),
    }


def start_gateway(
    broker: BrokerProcess, workdir: Path, protocol: str
) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    port = free_port()
    (workdir / "rules.yaml").write_text(RULES)
    rooms = [
        {"id": f"probe-{i}", "building": "hq", "floor": 1, "type": "meeting"} for i in range(PROBE_ROOMS)
    ]
    devices = [{"id": f"probe-{i}-light", "room": f"probe-{i}", "kind": "light"} for i in range(PROBE_ROOMS)]
    config = workdir / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                # A fresh id each start: no persistent-session backlog from the previous phase.
                "gateway": {"id": f"bench-act-{os.getpid()}-{time.monotonic_ns()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX, "protocol": protocol},
                "api": {"host": "127.0.0.1", "port": port},
                "occupancy": {"vacancy_timeout": VACANCY_TIMEOUT},
                # Every probe must be answered: no debounce, no retries during the run.
                "actuation": {"min_switch_interval": 0, "confirm_timeout": 600},
                "storage": {"path": str(workdir / "officegw.db")},
                "rules": str(workdir / "rules.yaml"),
                "site": {"rooms": rooms, "devices": devices},
            }
        )
    )
    log = (workdir / "gateway.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=Path(__file__).resolve().parents[1],
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    deadline = time.monotonic() + 30
    while True:
        try:
            if http.get("/readyz").status_code == 200:
                return proc, http
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gateway did not become ready; see {workdir / 'gateway.log'}")
        time.sleep(0.05)


def with_load(broker: BrokerProcess, rate: float, measure: Any, *args: Any) -> Any:
    stop = mp.get_context("fork").Event()
    loader = mp.get_context("fork").Process(
        target=background_load, args=(broker.host, broker.port, rate, stop)
    )
    loader.start()
    try:
        time.sleep(1.0)  # let the load reach its rate before measuring
        return measure(*args)
    finally:
        stop.set()
        loader.join(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=1000, help="probes per load level (default 1000)")
    parser.add_argument("--rates", default="1000,5000", help="background msgs/s levels (default 1000,5000)")
    parser.add_argument(
        "--protocol",
        choices=["5", "3.1.1"],
        default="5",
        help="the gateway's MQTT protocol (default 5, the gateway's default)",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    # One probe every 20 ms, a room revisited every 2 s: vacant again by then.
    interval = 0.02
    results = []
    with tempfile.TemporaryDirectory(prefix="officegw-act-") as tmp, start_mosquitto() as broker:
        for rate in rates:
            progress(f"raw round trip at {rate:g} msgs/s background")
            reflector, probe = Reflector(broker), LatencyProbe(broker)
            raw = with_load(broker, rate, probe.run, args.probes, interval)
            reflector.close()
            probe.close()

            progress(f"gateway at {rate:g} msgs/s background")
            proc, http = start_gateway(broker, Path(tmp), args.protocol)
            probe = LatencyProbe(broker)
            try:
                via_gateway = with_load(broker, rate, probe.run, args.probes, interval)
            finally:
                probe.close()
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
                http.close()
            line = {
                "benchmark": "actuation",
                "gateway_mqtt_protocol": args.protocol,
                "background_msgs_per_s": rate,
                "probes": args.probes,
                "gateway": summary(via_gateway, args.probes),
                "raw_round_trip": summary(raw, args.probes),
            }
            results.append(line)
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
