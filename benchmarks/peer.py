"""officegw next to its peer, Node-RED, on the same broker, publisher and messages.

Node-RED 4 (`mqtt in` -> a function keeping room state in a JS object: per room
the latest value of every field and when each device last spoke; the flow is
`benchmarks/node_red/flow.json`) and `officegw run` (default configuration:
validation, room model, rules, and a durable history) take turns on one private
mosquitto, with the same messages (100,000 realistic native payloads over about
2,000 topics) from the same publisher processes, five times each, in two modes:

- `live`: the consumer is connected and subscribed; the publishers send QoS 0 at
  full speed. Rate = messages between the first and the last the consumer took,
  over that time.
- `backlog`: the consumer creates a persistent session (MQTT 5, QoS 1
  subscription) and leaves; the messages are published QoS 1; the consumer comes
  back and the drain is timed.

officegw counts a message once what it carried is committed to its history
(`benchmarks/ingest.py`'s committed counting, polled from `/metrics`); Node-RED
once its function has applied it (its function counts, with millisecond
timestamps, and reports on an end marker published after the data). Node-RED does
less (no validation, no rules, no durability): that is the bar.

Node-RED is installed with npm from the pin in `benchmarks/node_red/package.json`
into ~/.cache/officegw-bench/node-red (reused when the pinned version is there;
OFFICEGW_BENCH_CACHE moves it). It runs with its editor and HTTP nodes off, its
userDir in a temporary folder, on a random loopback port, and is stopped by PID.

Prints one JSON line per run, then a summary line: both rates per run, medians,
min-max, and the ratio of the medians (officegw / Node-RED).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import _metric, _wait, committed_messages, gateway_process, publish_backlog
from simulators.broker import BrokerProcess, free_port, start_mosquitto
from simulators.loadgen import mixed_messages

HERE = Path(__file__).resolve().parent
PIN = HERE / "node_red" / "package.json"
FLOW = HERE / "node_red" / "flow.json"
RESULT_TOPIC = "bench/result"
# A /metrics scrape costs the gateway ~10-20 ms of CPU with 2,000 topics' rooms:
# polled every 0.1 s that was a tenth of what it was measured on (py-spy).
POLL_INTERVAL = 0.5
Messages = list[tuple[str, bytes]]


def progress(message: str) -> None:
    print(f"[peer-bench] {message}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- Node-RED -------------------------------------------------------------------


def cache_dir() -> Path:
    base = Path(os.environ.get("OFFICEGW_BENCH_CACHE", Path.home() / ".cache" / "officegw-bench"))
    return base / "node-red"


def pinned_version() -> str:
    version: str = json.loads(PIN.read_text())["dependencies"]["node-red"]
    return version


def install_node_red() -> Path:
    """red.js of the pinned Node-RED, installed with npm into the cache when missing."""
    folder = cache_dir()
    red = folder / "node_modules" / "node-red" / "red.js"
    installed = folder / "node_modules" / "node-red" / "package.json"
    want = pinned_version()
    if installed.exists() and json.loads(installed.read_text())["version"] == want:
        return red
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"peer benchmark: `{tool}` not found; it needs Node.js 18+ and npm")
    progress(f"installing Node-RED {want} with npm into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PIN, folder / "package.json")
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0 or not red.exists():
        raise SystemExit(f"peer benchmark: npm install of node-red {want} failed:\n{done.stderr[-2000:]}")
    return red


SETTINGS = """// Written by benchmarks/peer.py: no editor, no HTTP nodes, no outside calls.
module.exports = {{
    uiHost: "127.0.0.1",
    uiPort: {port},
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    functionExternalModules: false,
    externalModules: {{
        autoInstall: false, palette: {{ allowInstall: false }}, modules: {{ allowInstall: false }},
    }},
    diagnostics: {{ enabled: false, ui: false }},
    runtimeState: {{ enabled: false, ui: false }},
    telemetry: {{ enabled: false }},
    logging: {{ console: {{ level: "info", metrics: false, audit: false }} }},
}};
"""


class NodeRed:
    """One Node-RED with the benchmark flow, its userDir in `workdir`."""

    def __init__(self, red: Path, broker: BrokerProcess, workdir: Path, client_id: str) -> None:
        self._red = red
        self._dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        flow = json.loads(FLOW.read_text())
        for node in flow:
            if node["type"] == "mqtt-broker":
                node.update(broker=broker.host, port=str(broker.port), clientid=client_id)
        (workdir / "flows.json").write_text(json.dumps(flow))
        (workdir / "settings.js").write_text(SETTINGS.format(port=free_port()))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self._dir / "node-red.log").open("ab")
        self._proc = subprocess.Popen(
            [
                "node",
                str(self._red),
                "--userDir",
                str(self._dir),
                "--settings",
                str(self._dir / "settings.js"),
            ],
            stdout=log,
            stderr=log,
            cwd=self._dir,
        )

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            log = self._dir / "node-red.log"
            raise RuntimeError(f"Node-RED exited with {self._proc.returncode}; see {log}")


class ResultListener:
    """Subscribes to the flow's results; `ask` publishes a control message and waits."""

    def __init__(self, broker: BrokerProcess) -> None:
        self._results: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"peer-results-{os.getpid()}", protocol=mqtt.MQTTv5
        )
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        self._client.subscribe(RESULT_TOPIC, qos=1)
        if not self._subscribed.wait(10):
            raise TimeoutError("result subscription not acknowledged")

    def _on_message(self, c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        with self._arrived:
            self._results.append(json.loads(message.payload))
            self._arrived.notify_all()

    def publish(self, topic: str, payload: str) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, alive: Callable[[], None]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for result in self._results:
                    if match(result):
                        self._results.remove(result)
                        return result
                if time.monotonic() > deadline:
                    raise TimeoutError("no result from Node-RED's flow")
                alive()
                self._arrived.wait(0.2)

    def ping(self, node_red: NodeRed, timeout: float = 60) -> None:
        """Until the flow answers: connected, subscribed and running."""
        deadline = time.monotonic() + timeout
        token = str(time.monotonic_ns())
        while True:
            self.publish("bench/control/ping", token)
            try:
                self.wait_for(lambda r: r.get("pong") == token, 0.5, node_red.check_alive)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def node_red_rate(result: dict[str, Any]) -> float:
    elapsed = (result["last_ms"] - result["first_ms"]) / 1000
    return float((result["count"] - 1) / elapsed) if elapsed > 0 else float("nan")


def run_node_red(
    mode: str, red: Path, broker: BrokerProcess, messages: Messages, publishers: int, workdir: Path, run: int
) -> dict[str, Any]:
    listener = ResultListener(broker)
    node_red = NodeRed(red, broker, workdir, client_id=f"peer-node-red-{os.getpid()}-{run}-{mode}")
    marker = f"{mode}-{run}"
    try:
        node_red.start()
        listener.ping(node_red)
        if mode == "live":
            publish_rate = publish_live(broker, messages, publishers)
        else:
            node_red.stop()  # the session and its subscription stay at the broker
            publish_rate = publish_backlog(broker, messages, publishers)
        # After the data, from one more client: the broker queues it behind them.
        listener.publish("bench/control/end", marker)
        if mode == "backlog":
            node_red.start()
        result = listener.wait_for(lambda r: r.get("marker") == marker, 600, node_red.check_alive)
    finally:
        node_red.stop()
        listener.close()
    return {
        "msgs_per_s": node_red_rate(result),
        "taken": result["count"],
        "publish_msgs_per_s": publish_rate,
    }


# --- publishers -------------------------------------------------------------------


def _publish_qos0(host: str, port: int, messages: Messages, go: Any) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    go.wait()
    last = None
    for topic, payload in messages:
        last = client.publish(topic, payload, qos=0)
    if last is not None:
        last.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()


def publish_live(broker: BrokerProcess, messages: Messages, publishers: int) -> float:
    """QoS 0 at full speed from `publishers` processes, split by device (each
    device's readings in order); the consumer is connected. Returns msgs/s sent."""
    parts: list[Messages] = [[] for _ in range(publishers)]
    for topic, payload in messages:
        parts[zlib.crc32(topic.encode()) % publishers].append((topic, payload))
    ctx = mp.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_publish_qos0, args=(broker.host, broker.port, part, go)) for part in parts]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # connected: the timed part is the publishing
    started = time.monotonic()
    go.set()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"publisher exited with {proc.exitcode}")
    return len(messages) / (time.monotonic() - started)


# --- officegw ---------------------------------------------------------------------


def run_officegw(
    mode: str, broker: BrokerProcess, messages: Messages, publishers: int, workdir: Path, rooms: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    # Flood protection off in effect: the publishers send each device's readings far
    # faster than any device would (its 10 msgs/s budget), and a throttled reading is
    # not recorded; every reading must be, as Node-RED applies every message.
    gateway = gateway_process(broker, workdir, rooms, {"quality": {"max_rate": 100_000, "burst": 100_000}})
    total = len(messages)
    gateway.start()
    try:
        gateway.wait_http(timeout=180)
        _wait(lambda: gateway.http.get("/readyz").status_code == 200, 60, "gateway ready")
        # Ready means connected; QoS 0 messages published before the broker has
        # acknowledged the subscriptions would never reach it (one run lost 98 %).
        _wait(lambda: _metric(gateway.http, "officegw_mqtt_subscriptions_pending") == 0, 60, "subscriptions")
        if mode == "backlog":
            gateway.stop()  # the session and its subscription stay at the broker
            publish_rate = publish_backlog(broker, messages, publishers)
            gateway.start()
            gateway.wait_http(timeout=180)
            samples = watch_committed(gateway, total, quiet=None)
        else:
            # What the gateway took before the publishers began (its own retained
            # messages coming back on subscribing) is not the benchmark's.
            time.sleep(1.0)
            base = committed_messages(gateway.http)
            box: dict[str, float] = {}
            sender = threading.Thread(
                target=lambda: box.__setitem__("rate", publish_live(broker, messages, publishers))
            )
            sender.start()
            try:
                samples = watch_committed(
                    gateway, total, quiet=3.0, base=base, published=lambda: not sender.is_alive()
                )
            finally:
                sender.join()
            publish_rate = box["rate"]
    finally:
        gateway.stop()
    final = samples[-1][1]
    # Both ends taken while the gateway was busy (neither idle before the first
    # message nor after the last), so the polling interval biases nothing.
    busy = [s for s in samples if 0 < s[1] < final]
    if len(busy) < 2:
        raise RuntimeError(f"under two samples during the drain ({len(samples)} in all); raise --messages")
    started, finished = busy[0], busy[-1]
    if finished[1] <= started[1]:
        raise RuntimeError(f"the gateway's count did not grow during the drain: {samples}")
    if mode == "backlog" and started[1] > total * 0.5:
        raise RuntimeError("most of the backlog was drained before the first sample; raise --messages")
    return {
        "msgs_per_s": (finished[1] - started[1]) / (finished[0] - started[0]),
        "taken": final,
        "publish_msgs_per_s": publish_rate,
    }


def watch_committed(
    gateway: Any,
    total: int,
    quiet: float | None,
    base: float = 0.0,
    published: Callable[[], bool] = lambda: True,
) -> list[tuple[float, float]]:
    """(time, messages committed less `base`) every POLL_INTERVAL until all `total`
    are, or (live: QoS 0 may lose) until, the publishers done, the count has not
    moved for `quiet` seconds."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            now, committed = time.perf_counter(), committed_messages(gateway.http) - base
        except httpx.TimeoutException:
            continue  # a scrape slower than the client's timeout on a busy machine: ask again
        samples.append((now, committed))
        if committed >= total:
            return samples
        if quiet is not None and committed > 0 and published():
            moved = [t for t, n in samples if n < committed]
            if moved and now - moved[-1] > quiet:
                return samples
        time.sleep(POLL_INTERVAL)
    raise TimeoutError(f"gateway committed {samples[-1][1]:.0f} of {total} in 600 s")


# --- main -------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values)),
        "min": round(min(values)),
        "max": round(max(values)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000, help="messages per run (default 100000)")
    parser.add_argument(
        "--rooms", type=int, default=470, help="rooms the messages spread over (default 470: ~2,000 topics)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of each consumer in each mode (default 5)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument("--modes", default="live,backlog", help="comma-separated: live, backlog")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= {"live", "backlog"}:
        parser.error("--modes takes live and/or backlog")

    red = install_node_red()
    progress(f"generating {args.messages} payloads over {args.rooms} rooms")
    messages = mixed_messages(args.messages, rooms=args.rooms, prefix="office")
    topics = len({topic for topic, _ in messages})
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="officegw-peer-") as tmp, start_mosquitto() as broker:
        for run in range(args.runs):
            for mode in modes:
                # Alternate which goes first, so neither always follows the other.
                order = ("node_red", "officegw") if run % 2 == 0 else ("officegw", "node_red")
                for who in order:
                    load_before = load_average()
                    workdir = Path(tmp) / f"{who}-{mode}-{run}"
                    if who == "node_red":
                        got = run_node_red(mode, red, broker, messages, args.publishers, workdir, run)
                    else:
                        got = run_officegw(mode, broker, messages, args.publishers, workdir, args.rooms)
                    shutil.rmtree(workdir, ignore_errors=True)
                    rates.setdefault((who, mode), []).append(got["msgs_per_s"])
                    line = {
                        "benchmark": "peer",
                        "run": run + 1,
                        "mode": mode,
                        "consumer": who,
                        "msgs_per_s": round(got["msgs_per_s"]),
                        "taken": int(got["taken"]),
                        "messages": len(messages),
                        "publish_msgs_per_s": round(got["publish_msgs_per_s"]),
                        "load_average_before": load_before,
                        "load_average_after": load_average(),
                    }
                    progress(f"run {run + 1} {mode} {who}: {line['msgs_per_s']} msgs/s")
                    print(json.dumps(line), flush=True)
    summary: dict[str, Any] = {
        "benchmark": "peer",
        "summary": True,
        "node_red_version": pinned_version(),
        "messages": len(messages),
        "topics": topics,
        "runs": args.runs,
        "officegw_counts": "committed",
    }
    for mode in modes:
        nr, gw = rates[("node_red", mode)], rates[("officegw", mode)]
        summary[mode] = {
            "node_red_msgs_per_s": [round(v) for v in nr],
            "officegw_msgs_per_s": [round(v) for v in gw],
            "node_red": spread(nr),
            "officegw": spread(gw),
            "ratio": round(statistics.median(gw) / statistics.median(nr), 3),
            # Each run's officegw over the Node-RED run next to it (same machine load).
            "pair_ratios": [round(g / n, 3) for g, n in zip(gw, nr, strict=True)],
        }
    summary["goal_ratio"] = 1.0
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
