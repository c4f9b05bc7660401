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
import bisect
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

from gateway.runtime.gc_schedule import FIRST_COLLECTION_AFTER
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
        # (room, sent, received) of every probe answered, perf_counter seconds.
        self.records: list[tuple[int, float, float]] = []
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
            self.records.append((room, sent, now))

    def run(self, count: int, interval: float) -> list[float]:
        self.latencies, self.records = [], []
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
    broker: BrokerProcess,
    workdir: Path,
    protocol: str,
    trace: Path | None = None,
    switch_interval: float | None = None,
) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    """`officegw run`; with `trace`, under benchmarks/stall_trace.py writing its timeline there."""
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
                "gateway": {
                    "id": f"bench-act-{os.getpid()}-{time.monotonic_ns()}",
                    "log_level": "WARNING",
                    **({} if switch_interval is None else {"gil_switch_interval": switch_interval}),
                },
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
    launcher = (
        [sys.executable, "-m", "gateway.cli"]
        if trace is None
        else [sys.executable, str(Path(__file__).with_name("stall_trace.py")), str(trace)]
    )
    proc = subprocess.Popen(
        [*launcher, "run", "--config", str(config)],
        stdout=log,
        stderr=log,
        cwd=Path(__file__).resolve().parents[1],
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    deadline = time.monotonic() + 30
    while True:
        try:
            if http.get("/readyz").status_code == 200:
                # Past the gateway's first full collection (it freezes what start-up
                # built): 85 ms of CPU once, a few seconds after start, which is not
                # the steady state measured here (seen as gc_gen2 in `causes`).
                time.sleep(FIRST_COLLECTION_AFTER + 1.0)
                return proc, http
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gateway did not become ready; see {workdir / 'gateway.log'}")
        time.sleep(0.05)


# What a probe's time went to, from the gateway's timeline (benchmarks/stall_trace.py).
SPAN_KINDS = ("gc", "commit", "merge", "tick", "room_states", "admit_wait", "slow_handle")


def _first_at_or_after(times: list[float], at: float, until: float) -> float | None:
    i = bisect.bisect_left(times, at)
    return times[i] if i < len(times) and times[i] <= until else None


def _overlapping(trace: dict[str, list[Any]], start: float, end: float) -> dict[str, dict[str, Any]]:
    """Per activity (a GC generation apart) that overlapped [start, end]: how many
    times, the longest of them and the time they overlapped it, in all."""
    found: dict[str, dict[str, Any]] = {}
    for kind in SPAN_KINDS:
        for span in trace.get(kind, []):
            if span[0] < end and span[1] > start:
                what = f"gc_gen{span[3]}" if kind == "gc" else kind
                entry = found.setdefault(
                    what, {"count": 0, "longest_ms": 0.0, "its_cpu_ms": 0.0, "overlap_ms": 0.0}
                )
                entry["count"] += 1
                if (span[1] - span[0]) * 1000 > entry["longest_ms"]:
                    entry["longest_ms"] = round((span[1] - span[0]) * 1000, 2)
                    entry["its_cpu_ms"] = None if span[2] is None else round(span[2] * 1000, 2)
                entry["overlap_ms"] = round(
                    entry["overlap_ms"] + (min(end, span[1]) - max(start, span[0])) * 1000, 2
                )
    return dict(sorted(found.items(), key=lambda item: -item[1]["overlap_ms"]))


def probe_causes(records: list[tuple[int, float, float]], trace: dict[str, list[Any]]) -> dict[str, Any]:
    """The slowest probe's time split into broker -> gateway (waiting to be read),
    in the gateway (rules to command), gateway -> listener, with what the gateway did
    meanwhile; and over the probes at or above p99, how often each activity overlapped
    them against how often it overlaps any probe (a cause shows as a higher share)."""
    arrivals: dict[str, list[float]] = {}
    for at, room in trace.get("probe_in", []):
        arrivals.setdefault(room, []).append(at)
    commands: dict[str, list[float]] = {}
    for at, room in trace.get("command_out", []):
        commands.setdefault(room, []).append(at)
    acks = sorted(at for at, _ in trace.get("ack", []))
    handled = trace.get("handled", [])

    def split(record: tuple[int, float, float]) -> dict[str, Any]:
        room, sent, received = record
        name = f"probe-{room}"
        got = _first_at_or_after(arrivals.get(name, []), sent, received)
        out = None if got is None else _first_at_or_after(commands.get(name, []), got, received)
        detail: dict[str, Any] = {"latency_ms": round((received - sent) * 1000, 3)}
        if got is not None and out is not None:
            detail |= {
                "to_gateway_ms": round((got - sent) * 1000, 3),
                "in_gateway_ms": round((out - got) * 1000, 3),
                "to_listener_ms": round((received - out) * 1000, 3),
                # Acknowledgements sent while the probe waited to be read: the broker was
                # holding messages at the Receive Maximum until a batch committed.
                "acks_while_waiting": sum(1 for at in acks[bisect.bisect_left(acks, sent) :] if at <= got),
                # Messages the network thread took between the probe's sending and the probe.
                "handled_before_it": bisect.bisect_left(handled, got) - bisect.bisect_left(handled, sent),
            }
        detail["overlapping"] = _overlapping(trace, sent, received)
        return detail

    if not records:
        return {}
    ordered = sorted(records, key=lambda r: r[2] - r[1])
    tail = ordered[int(0.99 * len(ordered)) :]

    def shares(group: list[tuple[int, float, float]]) -> dict[str, float]:
        counts = {kind: 0 for kind in SPAN_KINDS}
        for _, sent, received in group:
            for kind in {
                "gc" if what.startswith("gc_") else what for what in _overlapping(trace, sent, received)
            }:
                counts[kind] = counts.get(kind, 0) + 1
        return {kind: round(n / len(group), 3) for kind, n in counts.items()}

    tail_splits = [split(r) for r in tail]
    segments = {"to_gateway_ms": 0, "in_gateway_ms": 0, "to_listener_ms": 0}
    for detail in tail_splits:
        if "to_gateway_ms" in detail:
            segments[max(segments, key=lambda k: detail[k])] += 1
    return {
        "max": split(ordered[-1]),
        "tail_probes": len(tail),
        # Of the probes at or above p99: which segment was the longest.
        "tail_longest_segment": segments,
        "tail_overlap_share": shares(tail),
        "all_overlap_share": shares(ordered),
        # Over the whole run: each activity's count, and its longest and p99 in wall
        # and in CPU time of its thread.
        "activity": {
            **{
                f"gc_gen{gen}": _span_stats([s for s in trace.get("gc", []) if s[3] == gen])
                for gen in (0, 1, 2)
            },
            **{kind: _span_stats(trace.get(kind, [])) for kind in SPAN_KINDS if kind != "gc"},
        },
    }


def _span_stats(spans: list[Any]) -> dict[str, Any]:
    if not spans:
        return {"count": 0}
    walls = sorted((s[1] - s[0]) * 1000 for s in spans)
    cpus = sorted(s[2] * 1000 for s in spans if s[2] is not None)
    return {
        "count": len(spans),
        "max_ms": round(walls[-1], 2),
        "p99_ms": round(percentile(walls, 0.99), 2),
        "max_cpu_ms": round(cpus[-1], 2) if cpus else None,
        "p99_cpu_ms": round(percentile(cpus, 0.99), 2) if cpus else None,
    }


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
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="the gateway's gateway.gil_switch_interval (default: the gateway's own, 0.005)",
    )
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="run the gateway bare, without benchmarks/stall_trace.py (no causes reported)",
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
            trace_file = None if args.no_trace else Path(tmp) / f"trace-{rate:g}.json"
            proc, http = start_gateway(broker, Path(tmp), args.protocol, trace_file, args.switch_interval)
            probe = LatencyProbe(broker)
            try:
                via_gateway = with_load(broker, rate, probe.run, args.probes, interval)
            finally:
                probe.close()
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
                http.close()
            causes = None
            if trace_file is not None and trace_file.exists():
                causes = probe_causes(probe.records, json.loads(trace_file.read_text()))
            line = {
                "benchmark": "actuation",
                "gateway_mqtt_protocol": args.protocol,
                "background_msgs_per_s": rate,
                "probes": args.probes,
                "gateway": summary(via_gateway, args.probes),
                "raw_round_trip": summary(raw, args.probes),
            }
            line["switch_interval"] = args.switch_interval
            line["p99_ratio_to_raw"] = round(line["gateway"]["p99_ms"] / line["raw_round_trip"]["p99_ms"], 2)
            line["load_average"] = [round(v, 2) for v in os.getloadavg()]
            if causes is not None:
                line["causes"] = causes
            results.append(line)
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
