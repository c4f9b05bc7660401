"""Ingest throughput of the gateway against do-nothing subscribers: its ceilings.

Every subscriber drains the same backlog through the same private mosquitto:
realistic mixed native payloads over 500 rooms, QoS 1, persistent MQTT 5
sessions. The backlog is published (by two publisher processes) while the
subscriber is away, so during the timed drain only the broker and the
subscriber run: the figure is the subscriber's own sustained rate, not the
publishers'. Three ceilings, each measured in the same run:

- `ceiling` (the ratio's): the gateway's own MQTT client (`PahoTransport`, with
  its fast path and manual acknowledgement, acknowledging in batches as the
  history writer does) with a handler that does nothing;
- `plain_paho_ceiling`: a plain paho subscriber acknowledging on arrival (the
  earlier ceiling, which flattered: the gateway reads through a faster client);
- `mosquitto_sub_ceiling`: mosquitto's C client (`mosquitto_sub`, from the
  mosquitto-clients package; skipped when not installed, and said so).

The gateway's rate counts readings committed to its history, not messages read:
a message counts once what it carried is durable (`--count received` for the
old figure). The same rate in readings (`gateway_rows_per_s`: messages a second
times the readings stored per message) is set next to a fourth ceiling,
`bare_append_rows_per_s`: the readings the gateway stored, appended again with
`executemany` to a fresh file made by the same `Store` (same schema and pragmas),
1,000 a transaction, with nothing else running in the process. Also reported:
the gateway's CPU time per 1,000 messages and the share of the drain it spent
stopped at the back-pressure bound waiting for its history writer
(`gateway_paused_fraction`: near 0 when the history keeps up with reading).

Prints one JSON line: gateway_msgs_per_s, ceiling_msgs_per_s, ratio, ...

`--baseline DIR --pairs N` compares two versions instead: the gateway of another
checkout (DIR) and this one's drain the same backlog alternately, N times each,
without the MQTT ceilings; one JSON line a run, then the medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.mqtt.paho_transport import MqttOptions, PahoTransport
from gateway.mqtt.transport import Ack, InboundMessage
from gateway.storage.sqlite_store import CACHE_KIB, Store
from simulators.broker import BrokerProcess, free_port, start_mosquitto
from simulators.loadgen import devices_for, mixed_messages, rooms_for

PREFIX = "office"
REPO = Path(__file__).resolve().parents[1]
# Readings per transaction in the bare-append ceiling (PERFORMANCE.md's SQLite figure).
BARE_APPEND_BATCH = 1_000
# Often enough to time a drain of several seconds well, rarely enough that the
# scrapes do not slow the gateway they measure: at 0.1 s they took about a tenth of
# its CPU (py-spy during benchmarks/peer.py, which polls every 0.5 s for that reason;
# a real site's Prometheus scrapes every 15 s or so).
POLL_INTERVAL = float(os.environ.get("BENCH_POLL", "0.5"))


def progress(message: str) -> None:
    print(f"[ingest-bench] {message}", file=sys.stderr, flush=True)


def _publish_part(host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    # Back-pressure: paho holds at most 65,535 unacknowledged QoS 1 messages, so
    # wait for the broker's PUBACK of every few thousandth message.
    pending = []
    for index, (topic, payload) in enumerate(messages, 1):
        info = client.publish(topic, payload, qos=1)
        if index % 5_000 == 0:
            pending.append(info)
            if len(pending) > 2:
                pending.pop(0).wait_for_publish(timeout=120)
    for waiting in [*pending, info]:
        waiting.wait_for_publish(timeout=120)
    # Loop first: after disconnect() paho's loop thread may end and clear itself while
    # loop_stop() joins it (AttributeError, seen under load); without a loop thread
    # disconnect() writes the DISCONNECT itself.
    client.loop_stop()
    client.disconnect()


def publish_backlog(broker: BrokerProcess, messages: list[tuple[str, bytes]], publishers: int) -> float:
    """Publishes with several processes (one paho publisher is slower than a subscriber)."""
    # Split by device, as real devices publish: each device's readings stay in
    # order (the gateway refuses a reading older than one it applied).
    parts: list[list[tuple[str, bytes]]] = [[] for _ in range(publishers)]
    for topic, payload in messages:
        parts[zlib.crc32(topic.encode()) % publishers].append((topic, payload))
    started = time.monotonic()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_publish_part, args=(broker.host, broker.port, part)) for part in parts]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"publisher exited with {proc.exitcode}")
    return len(messages) / (time.monotonic() - started)


def _connect_properties() -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    return properties


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def ceiling_client(broker: BrokerProcess, client_id: str) -> mqtt.Client:
    """The gateway transport's MQTT and socket settings, with a callback that does nothing."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{PREFIX}/#", qos=1)
    client.on_socket_open = _nodelay
    return client


def measure_ceiling(
    broker: BrokerProcess, messages: list[tuple[str, bytes]], publishers: int
) -> dict[str, float]:
    client_id = f"bench-ceiling-{os.getpid()}"
    # Create the persistent session with its subscription, then leave.
    client = ceiling_client(broker, client_id)
    done = {"subscribed": False}
    client.on_subscribe = lambda c, u, mid, rc, p: done.__setitem__("subscribed", True)
    client.connect(broker.host, broker.port, clean_start=True, properties=_connect_properties())
    client.loop_start()
    _wait(lambda: done["subscribed"], 10, "ceiling subscription")
    client.disconnect()
    client.loop_stop()

    publish_rate = publish_backlog(broker, messages, publishers)
    count = {"n": 0, "first": 0.0, "last": 0.0}
    total = len(messages)

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        n = count["n"] + 1
        count["n"] = n
        if n == 1:
            count["first"] = time.perf_counter()
        if n == total:
            count["last"] = time.perf_counter()

    client = ceiling_client(broker, client_id)
    client.on_message = on_message
    client.connect(broker.host, broker.port, clean_start=False, properties=_connect_properties())
    client.loop_start()
    _wait(lambda: count["n"] >= total, 300, "ceiling drain")
    client.disconnect()
    client.loop_stop()
    return {
        "msgs_per_s": (total - 1) / (count["last"] - count["first"]),
        "publish_msgs_per_s": publish_rate,
    }


def measure_transport_ceiling(
    broker: BrokerProcess, messages: list[tuple[str, bytes]], publishers: int
) -> dict[str, float]:
    """The gateway's MQTT client doing nothing but acknowledging, in batches every
    50 ms as the history writer commits (storage.commit_interval)."""
    options = MqttOptions(
        host=broker.host,
        port=broker.port,
        client_id=f"bench-transport-{os.getpid()}",
        subscriptions=(f"{PREFIX}/#",),
        status_topic=f"officegw/gateway/bench-transport-{os.getpid()}/availability",
        manual_ack=True,
        broker_stats=False,
    )
    total = len(messages)
    count = {"n": 0, "first": 0.0, "last": 0.0}
    acks: list[Ack] = []

    def on_message(message: InboundMessage) -> None:
        n = count["n"] + 1
        count["n"] = n
        if n == 1:
            count["first"] = time.perf_counter()
        if n == total:
            count["last"] = time.perf_counter()
        if message.ack is not None:
            acks.append(message.ack)

    # Create the persistent session with its subscription, then leave.
    transport = PahoTransport(options)
    transport.start(lambda message: None)
    _wait(lambda: transport.connected, 10, "transport ceiling connected")
    time.sleep(0.5)  # the SUBACK follows the CONNACK
    transport.stop()

    publish_rate = publish_backlog(broker, messages, publishers)
    transport = PahoTransport(options)
    transport.start(on_message)
    deadline = time.monotonic() + 300
    while count["n"] < total:
        if time.monotonic() > deadline:
            raise TimeoutError("transport ceiling drain did not finish within 300 s")
        time.sleep(0.05)
        batch, acks[:] = acks[:], []
        transport.ack_many(batch)
    transport.ack_many(acks)
    transport.stop()
    return {"msgs_per_s": (total - 1) / (count["last"] - count["first"]), "publish_msgs_per_s": publish_rate}


def measure_mosquitto_sub(
    broker: BrokerProcess, messages: list[tuple[str, bytes]], publishers: int
) -> dict[str, float] | None:
    """mosquitto's C client draining the same backlog (None when not installed). Its
    time runs from its start to its exit after the last message, so it includes the
    connection (a few ms of a drain of seconds)."""
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        return None
    client_id = f"bench-c-{os.getpid()}"
    base = [
        exe,
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-V",
        "mqttv5",
        "-q",
        "1",
        "-c",
        "-i",
        client_id,
        "-x",
        "3600",
        "-t",
        f"{PREFIX}/#",
    ]
    # Create the persistent session with its subscription: wait one second, then leave.
    subprocess.run([*base, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    publish_rate = publish_backlog(broker, messages, publishers)
    started = time.perf_counter()
    subprocess.run(
        [*base, "-C", str(len(messages)), "-F", "%l"], stdout=subprocess.DEVNULL, check=True, timeout=300
    )
    return {"msgs_per_s": len(messages) / (time.perf_counter() - started), "publish_msgs_per_s": publish_rate}


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout} s")
        time.sleep(0.005)


def _metrics(http: httpx.Client) -> dict[str, float]:
    """Every sample of the gateway's /metrics, by name and labels."""
    values = {}
    for line in http.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def _metric(http: httpx.Client, name: str) -> float:
    return _metrics(http)[name]


class GatewayProcess:
    def __init__(
        self, config: Path, port: int, *, root: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        self._config = config
        # The checkout the gateway runs from (this one by default), and its environment.
        self._root = root or Path(__file__).resolve().parents[1]
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = config.with_suffix(".log").open("ab")
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(self._config)],
            stdout=self._log,
            stderr=self._log,
            cwd=self._root,
            env=self._env,
        )

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("gateway not running")
        return self._proc.pid

    def wait_http(self, timeout: float = 30) -> None:
        def up() -> bool:
            try:
                return self.http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        _wait(up, timeout, "gateway HTTP")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(timeout=15)
            self._proc = None


def gateway_process(
    broker: BrokerProcess,
    workdir: Path,
    rooms: int,
    extra: dict[str, Any] | None = None,
    source: Path = REPO,
) -> GatewayProcess:
    """A gateway (not started) for the benchmark's rooms and devices, as
    `measure_gateway` configures it, with a fresh client id (so a fresh persistent
    session) and its history in `workdir` (benchmarks/peer.py, memory.py)."""
    port = free_port()
    config = workdir / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"bench-{os.getpid()}-{time.monotonic_ns()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                "api": {"host": "127.0.0.1", "port": port},
                "site": {"rooms": rooms_for(rooms), "devices": devices_for(rooms)},
                **(extra or {}),
                "storage": {"path": str(workdir / "officegw.db"), **(extra or {}).get("storage", {})},
            }
        )
    )
    return GatewayProcess(config, port, root=source)


def committed_messages(http: httpx.Client) -> float:
    """Messages whose readings are committed: received less those still uncommitted
    (the back-pressure's count)."""
    return _metric(http, "officegw_messages_received_total") - _metric(
        http, "officegw_ingest_uncommitted_messages"
    )


def measure_gateway(
    broker: BrokerProcess,
    messages: list[tuple[str, bytes]],
    publishers: int,
    workdir: Path,
    rooms: int,
    extra: dict[str, Any] | None = None,
    count: str = "committed",
    source: Path = REPO,
) -> dict[str, float]:
    """The gateway's drain rate; `extra` is merged into its config (section by section).
    `count`: "committed" counts a message once what it carried is committed (received
    less the back-pressure's uncommitted count); "received", once the pipeline took it.
    `source`: the checkout whose `gateway` package runs (to compare two versions).
    Also returns the gateway's CPU time per message over the same window and, from
    its SQLite file afterwards, the readings it stored."""
    port = free_port()
    config = workdir / "officegw.yaml"
    database = workdir / "officegw.db"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"bench-{os.getpid()}-{time.monotonic_ns()}", "log_level": "WARNING"},
                "mqtt": {"url": broker.url, "topic_prefix": PREFIX},
                "api": {"host": "127.0.0.1", "port": port},
                "site": {"rooms": rooms_for(rooms), "devices": devices_for(rooms)},
                **(extra or {}),
                "storage": {"path": str(database), **(extra or {}).get("storage", {})},
            }
        )
    )
    gateway = GatewayProcess(config, port, root=source)
    # First run: creates the persistent session and subscription, then goes away.
    gateway.start()
    gateway.wait_http()
    _wait(lambda: gateway.http.get("/readyz").status_code == 200, 30, "gateway ready")
    gateway.stop()

    publish_rate = publish_backlog(broker, messages, publishers)
    total = len(messages)
    gateway.start()
    gateway.wait_http()
    samples: list[tuple[float, float, float, float]] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        # Received counts every message the pipeline took, whatever became of it;
        # of those, the ones still uncommitted (back-pressure's count) are not durable yet.
        metrics = _metrics(gateway.http)
        received = metrics["officegw_messages_received_total"]
        if count == "committed":
            received -= metrics["officegw_ingest_uncommitted_messages"]
        samples.append(
            (
                time.perf_counter(),
                received,
                metrics["process_cpu_seconds_total"],
                metrics.get("officegw_ingest_backpressure_seconds_total", 0.0),
            )
        )
        if received >= total:
            break
        time.sleep(POLL_INTERVAL)
    metrics = _metrics(gateway.http)
    rejected = sum(
        value for name, value in metrics.items() if name.startswith("officegw_messages_rejected_total{")
    )
    commits = metrics["officegw_history_commits_total"]
    gateway.stop()
    # Rate over what we watched: the drain had already begun when HTTP came up.
    (t0, n0, cpu0, paused0), (t1, n1, cpu1, paused1) = samples[0], samples[-1]
    if n1 < total:
        raise RuntimeError(f"gateway processed {n1} of {total} messages")
    if n1 - n0 < total * 0.5:
        raise RuntimeError("most of the backlog was drained before the first sample; raise --messages")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        stored = db.execute("SELECT count(*) FROM readings_all").fetchone()[0]
    return {
        "msgs_per_s": (n1 - n0) / (t1 - t0),
        "publish_msgs_per_s": publish_rate,
        "rejected": rejected,
        "observed_messages": n1 - n0,
        "cpu_ms_per_1k_msgs": 1e6 * (cpu1 - cpu0) / (n1 - n0),
        # The share of the drain ingest spent stopped at the back-pressure bound, waiting
        # for the history writer: near 0 when the history keeps up with reading.
        "paused_fraction": (paused1 - paused0) / (t1 - t0),
        "readings_stored": stored,
        "commits": commits,
    }


def measure_bare_append(source: Path, workdir: Path, limit: int = 500_000) -> float:
    """The bare-append ceiling: the readings the gateway stored (up to `limit`), appended
    with `executemany` to `readings_recent` of a fresh file made by the same `Store`
    (same schema and pragmas), BARE_APPEND_BATCH rows a transaction: what SQLite and
    the sqlite3 module take with nothing else to do. Rows per second."""
    target = workdir / "bare-append.db"
    Store(target).close()
    bare = sqlite3.connect(target, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"cache_size=-{CACHE_KIB}"):
        bare.execute(f"PRAGMA {pragma}")
    rows = 0
    elapsed = 0.0
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as stored:
        cursor = stored.execute(
            "SELECT device, room, metric, value, ts, received_at FROM readings_all LIMIT ?", (limit,)
        )
        while batch := cursor.fetchmany(BARE_APPEND_BATCH):
            started = time.perf_counter()
            bare.execute("BEGIN")
            bare.executemany(
                "INSERT INTO readings_recent (device, room, metric, value, ts, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                batch,
            )
            bare.execute("COMMIT")
            elapsed += time.perf_counter() - started
            rows += len(batch)
    bare.close()
    return rows / elapsed


def gateway_figures(gateway: dict[str, float], messages: int, bare_rows_per_s: float) -> dict[str, Any]:
    """The gateway's committed rate in messages and readings, next to the bare-append ceiling."""
    per_message = gateway["readings_stored"] / messages
    rows_per_s = gateway["msgs_per_s"] * per_message
    return {
        "gateway_msgs_per_s": round(gateway["msgs_per_s"]),
        "gateway_rows_per_s": round(rows_per_s),
        "bare_append_rows_per_s": round(bare_rows_per_s),
        "rows_ratio": round(rows_per_s / bare_rows_per_s, 3),
        "readings_per_message": round(per_message, 2),
        "gateway_mean_commit_rows": round(gateway["readings_stored"] / max(gateway["commits"], 1)),
        "gateway_cpu_ms_per_1k_msgs": round(gateway["cpu_ms_per_1k_msgs"], 1),
        "gateway_paused_fraction": round(gateway["paused_fraction"], 3),
        "gateway_rejected": gateway["rejected"],
    }


def compare(args: argparse.Namespace, messages: list[tuple[str, bytes]]) -> int:
    """`--baseline DIR`: the gateway of DIR (another checkout) and of this one, alternately,
    `--pairs` times each on the same broker and backlog; one JSON line per run, then the
    medians. The bare-append ceiling is measured after each run, on its own rows."""
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
    sources = {"baseline": Path(args.baseline).resolve(), "this": REPO}
    with start_mosquitto() as broker:
        for pair in range(args.pairs):
            for name, source in sources.items():
                with tempfile.TemporaryDirectory(prefix="officegw-bench-") as tmp:
                    load = os.getloadavg()[0]
                    gateway = measure_gateway(
                        broker,
                        messages,
                        args.publishers,
                        Path(tmp),
                        args.rooms,
                        count=args.count,
                        source=source,
                    )
                    bare = measure_bare_append(Path(tmp) / "officegw.db", Path(tmp))
                row = {"run": name, "pair": pair + 1, "source": str(source), "load_1m": round(load, 2)}
                row.update(gateway_figures(gateway, len(messages), bare))
                runs[name].append(row)
                progress(f"{name}: {row['gateway_msgs_per_s']} msgs/s, {row['gateway_rows_per_s']} rows/s")
                print(json.dumps(row), flush=True)
    summary: dict[str, Any] = {"benchmark": "ingest_compare", "messages": args.messages, "pairs": args.pairs}
    for name, rows in runs.items():
        for key in (
            "gateway_msgs_per_s",
            "gateway_rows_per_s",
            "rows_ratio",
            "gateway_cpu_ms_per_1k_msgs",
            "gateway_paused_fraction",
        ):
            values = sorted(row[key] for row in rows)
            summary[f"{name}_{key}"] = {
                "median": statistics.median(values),
                "min": values[0],
                "max": values[-1],
            }
    summary["speedup_median"] = round(
        summary["this_gateway_msgs_per_s"]["median"] / summary["baseline_gateway_msgs_per_s"]["median"], 2
    )
    print(json.dumps(summary))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=200_000, help="backlog size per phase (default 200000)"
    )
    parser.add_argument("--rooms", type=int, default=500, help="rooms the messages spread over (default 500)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes (default 2)")
    parser.add_argument(
        "--count",
        choices=("committed", "received"),
        default="committed",
        help="when a gateway message counts: its readings committed (default) or the pipeline took it",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="another checkout of officegw: run its gateway and this one's alternately, no MQTT ceilings",
    )
    parser.add_argument("--pairs", type=int, default=3, help="with --baseline: runs of each (default 3)")
    args = parser.parse_args()

    progress(f"generating {args.messages} mixed payloads over {args.rooms} rooms")
    messages = mixed_messages(args.messages, rooms=args.rooms, prefix=PREFIX)
    if args.baseline:
        return compare(args, messages)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="officegw-bench-") as tmp, start_mosquitto() as broker:
        progress(f"mosquitto on {broker.url}; ceiling phase (the gateway's MQTT client, doing nothing)")
        ceiling = measure_transport_ceiling(broker, messages, args.publishers)
        progress(f"ceiling {ceiling['msgs_per_s']:.0f} msgs/s; plain paho subscriber")
        plain = measure_ceiling(broker, messages, args.publishers)
        progress(f"plain paho {plain['msgs_per_s']:.0f} msgs/s; mosquitto_sub")
        c_client = measure_mosquitto_sub(broker, messages, args.publishers)
        progress(
            "mosquitto_sub not installed (mosquitto-clients)"
            if c_client is None
            else f"mosquitto_sub {c_client['msgs_per_s']:.0f} msgs/s; gateway phase"
        )
        gateway = measure_gateway(broker, messages, args.publishers, Path(tmp), args.rooms, count=args.count)
        progress(f"gateway {gateway['msgs_per_s']:.0f} msgs/s ({args.count}); bare-append ceiling")
        bare = measure_bare_append(Path(tmp) / "officegw.db", Path(tmp))
    result = {
        "benchmark": "ingest",
        "mode": "backlog_drain",
        "qos": 1,
        "messages": args.messages,
        "rooms": args.rooms,
        "avg_payload_bytes": round(sum(len(p) for _, p in messages) / len(messages), 1),
        "count": args.count,
        "gateway_msgs_per_s": round(gateway["msgs_per_s"]),
        "ceiling": "gateway_mqtt_client_doing_nothing",
        "ceiling_msgs_per_s": round(ceiling["msgs_per_s"]),
        "ratio": round(gateway["msgs_per_s"] / ceiling["msgs_per_s"], 3),
        **gateway_figures(gateway, len(messages), bare),
        "plain_paho_ceiling_msgs_per_s": round(plain["msgs_per_s"]),
        "ratio_to_plain_paho": round(gateway["msgs_per_s"] / plain["msgs_per_s"], 3),
        "mosquitto_sub_ceiling_msgs_per_s": None if c_client is None else round(c_client["msgs_per_s"]),
        "ratio_to_mosquitto_sub": None
        if c_client is None
        else round(gateway["msgs_per_s"] / c_client["msgs_per_s"], 3),
        "publish_msgs_per_s": round(ceiling["publish_msgs_per_s"]),
        "load_average": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
