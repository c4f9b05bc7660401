"""What a mosquitto left at its defaults allows the gateway, and what it drops.

A private mosquitto with nothing but a listener and anonymous access (so
`max_queued_messages 1000`, `max_inflight_messages 20`, `sys_interval 10`) and
`officegw run` with its default settings (durable history: a QoS 1 message is
acknowledged once committed; MQTT 5 Receive Maximum 1,000), as separate processes:

- `paced`: N QoS 1 messages at a fixed rate from one publisher, gateway
  connected; how long until the gateway received them all, how many never came.
  Run with the gateway on MQTT 5 and on 3.1.1 (mosquitto applies
  `max_inflight_messages` to a 3.1.1 client; an MQTT 5 client's Receive Maximum
  replaces it).
- `burst_live`: a burst at full publisher speed (two publisher processes) while
  the gateway is connected: the broker's queue for the gateway's session overflows.
- `burst_away`: the same burst while the gateway is stopped (a restart, a deploy);
  it comes back to what the broker kept.

Each case also reports what the gateway's /metrics said about the broker's drops
(`officegw_broker_messages_dropped`, `officegw_broker_drops_seen_total`) and how
many "broker dropped messages" warnings it logged. Prints one JSON line per case.
Bounded: every wait has a deadline (`--timeout`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import GatewayProcess, publish_backlog
from simulators.broker import MOSQUITTO_DEFAULTS, BrokerProcess, free_port, start_mosquitto
from simulators.loadgen import rooms_for

ROOMS = 500
DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
# The received count is taken as final once it has not moved for this long.
SETTLE_S = 3.0


def progress(message: str) -> None:
    print(f"[broker-defaults] {message}", file=sys.stderr, flush=True)


def metrics(http: httpx.Client) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("officegw_") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def messages(count: int, prefix: str) -> list[tuple[str, bytes]]:
    """Environment readings from four sensors a room: nothing the rules answer with a
    command (which the gateway would receive too), and at 10,000 msgs/s every sensor
    within the gateway's flood limit (10 msgs/s)."""
    rooms = rooms_for(ROOMS)
    out = []
    for i in range(count):
        room = rooms[i % len(rooms)]
        sensor = (i // len(rooms)) % 4
        payload = {"temperature": 20 + i % 50 / 10, "humidity": 40 + i % 20, "co2": 450 + i % 300}
        topic = f"{prefix}/hq/{room['floor']}/{room['id']}/{room['id']}-env{sensor}"
        out.append((topic, orjson.dumps(payload)))
    return out


def publish_paced(broker: BrokerProcess, batch: list[tuple[str, bytes]], rate: float) -> float:
    """Publishes at `rate` msgs/s in 5 ms slots, QoS 1; returns the seconds it took."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    started = time.monotonic()
    info = None
    for index, (topic, payload) in enumerate(batch):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0.005:
            time.sleep(delay)
        info = client.publish(topic, payload, qos=1)
    if info is not None:
        info.wait_for_publish(timeout=120)
    took = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return took


class Gateway:
    """`officegw run` with the default settings, its log kept for the warnings."""

    # Config overrides for every gateway, from --set: {section: {key: value}}.
    overrides: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, broker: BrokerProcess, workdir: Path, name: str, protocol: str) -> None:
        # A topic root per gateway: the persistent session of a gateway stopped
        # after its case must not queue (and overflow with) the next case's traffic.
        self.prefix = f"office-{name}"
        port = free_port()
        config = workdir / f"{name}.yaml"
        settings: dict[str, dict[str, Any]] = {
            "gateway": {"id": f"{name}-{os.getpid()}"},
            "mqtt": {"url": broker.url, "topic_prefix": self.prefix, "protocol": protocol},
            "api": {"host": "127.0.0.1", "port": port},
            "site": {"rooms": rooms_for(ROOMS)},
            "storage": {"path": str(workdir / f"{name}.db")},
        }
        for section, values in self.overrides.items():
            settings.setdefault(section, {}).update(values)
        config.write_text(yaml.safe_dump(settings))
        self.log = config.with_suffix(".log")
        self.process = GatewayProcess(config, port)
        self.http = self.process.http

    def start(self, timeout: float) -> None:
        self.process.start()
        self.process.wait_http(timeout)
        wait(lambda: self.http.get("/readyz").status_code == 200, timeout, "gateway ready")

    def stop(self) -> None:
        self.process.stop()

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def warnings(self, start: str, since: int = 0) -> int:
        """WARNING lines starting with `start` logged after byte `since` of the log."""
        with self.log.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if f"WARNING officegw.mqtt {start}" in line)


def broker_settings(broker: BrokerProcess) -> str:
    return "mosquitto_defaults" if dict(broker.options) == dict(MOSQUITTO_DEFAULTS) else "tuned"


def overridden() -> dict[str, Any]:
    return {"gateway_settings": Gateway.overrides} if Gateway.overrides else {}


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def received_until_settled(
    gw: Gateway, before: float, total: int, started: float, timeout: float
) -> tuple[float, float | None]:
    """(messages received since `before`, seconds from `started` until the last of them)."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1.0, time.monotonic()
    done_at: float | None = None
    while time.monotonic() < deadline:
        count = metrics(gw.http)["officegw_messages_received_total"] - before
        now = time.monotonic()
        if count != last_count:
            last_count, last_change, done_at = count, now, now - started
        if count >= total or now - last_change > SETTLE_S:
            break
        time.sleep(0.05)
    return last_count, done_at if last_count >= total else None


class BrokerWatch:
    """The broker's own drop count, followed by a client of ours from the broker's
    start (so it saw every change), to check what the gateway shows against."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.dropped = -1
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(DROPPED_TOPIC)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.dropped = int(message.payload)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def broker_view(
    gw: Gateway,
    watch: BrokerWatch,
    dropped_before: int,
    seen_before: float,
    lost: float,
    timeout: float,
    log_from: int,
) -> dict[str, Any]:
    """The broker's drops during a case, and what the gateway's /metrics and log
    (since byte `log_from`) say of them once it had the broker's latest count
    (published every sys_interval: 10 s by default)."""
    m = metrics(gw.http)
    if lost:
        with contextlib.suppress(TimeoutError):
            wait(lambda: watch.dropped - dropped_before >= lost, timeout, "the broker's count")
            latest = watch.dropped
            wait(
                lambda: metrics(gw.http).get("officegw_broker_messages_dropped") == latest,
                timeout,
                "the gateway's view of the broker's count",
            )
        m = metrics(gw.http)
    return {
        "broker_dropped_during_case": watch.dropped - dropped_before,
        "gateway_drops_seen_during_case": m.get("officegw_broker_drops_seen_total", 0) - seen_before,
        "warnings_dropped": gw.warnings("broker dropped messages", log_from),
        "warnings_before_watched": gw.warnings(
            "broker had dropped messages before this gateway watched", log_from
        ),
    }


def paced(
    broker: BrokerProcess,
    watch: BrokerWatch,
    workdir: Path,
    protocol: str,
    rates: list[float],
    count: int,
    timeout: float,
) -> None:
    gw = Gateway(broker, workdir, f"paced-{protocol.replace('.', '')}", protocol)
    gw.start(timeout)
    try:
        for rate in rates:
            batch = messages(count, gw.prefix)
            before = metrics(gw.http)["officegw_messages_received_total"]
            dropped_before = watch.dropped
            seen_before = metrics(gw.http)["officegw_broker_drops_seen_total"]
            log_from = gw.log_size()
            started = time.monotonic()
            took = publish_paced(broker, batch, rate)
            received, done_at = received_until_settled(gw, before, count, started, timeout)
            lost = count - received
            view = broker_view(gw, watch, dropped_before, seen_before, lost, timeout, log_from)
            result = {
                "benchmark": "broker_defaults",
                "case": "paced",
                "broker": broker_settings(broker),
                **overridden(),
                "gateway_mqtt_protocol": protocol,
                "messages": count,
                "target_msgs_per_s": rate,
                "published_msgs_per_s": round(count / took),
                "received": int(received),
                "lost": int(lost),
                "all_received_after_s": round(done_at, 2) if done_at is not None else None,
                "lag_after_publishing_s": round(done_at - took, 2) if done_at is not None else None,
                **view,
            }
            print(json.dumps(result), flush=True)
    finally:
        gw.stop()


def burst(
    broker: BrokerProcess, watch: BrokerWatch, workdir: Path, count: int, away: bool, timeout: float
) -> None:
    name = "burst-away" if away else "burst-live"
    gw = Gateway(broker, workdir, name, "5")
    gw.start(timeout)
    try:
        batch = messages(count, gw.prefix)
        before = metrics(gw.http)["officegw_messages_received_total"]
        dropped_before = watch.dropped
        seen_before = metrics(gw.http)["officegw_broker_drops_seen_total"]
        if away:
            gw.stop()  # its persistent session stays: the broker queues for it
            before = seen_before = 0.0  # the counters of the process that comes back
        log_from = gw.log_size()
        started = time.monotonic()
        publish_rate = publish_backlog(broker, batch, 2)
        if away:
            gw.start(timeout)
        received, _ = received_until_settled(gw, before, count, started, timeout)
        lost = count - received
        result = {
            "benchmark": "broker_defaults",
            "case": name,
            "broker": broker_settings(broker),
            **overridden(),
            "gateway_mqtt_protocol": "5",
            "messages": count,
            "published_msgs_per_s": round(publish_rate),
            "received": int(received),
            "lost": int(lost),
            "lost_share": round(lost / count, 3),
            **broker_view(gw, watch, dropped_before, seen_before, lost, timeout, log_from),
        }
        print(json.dumps(result), flush=True)
    finally:
        gw.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages per paced case")
    parser.add_argument("--rates", default="1000,2000,3000,5000", help="paced rates, msgs/s")
    parser.add_argument(
        "--rates-311", default="1000,2000,3000", help="paced rates with the gateway on MQTT 3.1.1"
    )
    parser.add_argument("--burst", type=int, default=20_000, help="messages per burst case (0: none)")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline of every wait, s")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a gateway setting (YAML value), e.g. storage.history=false; repeatable",
    )
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="the README's broker settings instead (max_queued_messages 0, max_inflight_messages 1000)",
    )
    args = parser.parse_args()

    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        Gateway.overrides.setdefault(section, {})[name] = yaml.safe_load(value)
    rates = [float(r) for r in args.rates.split(",") if r]
    rates_311 = [float(r) for r in args.rates_311.split(",") if r]
    with tempfile.TemporaryDirectory(prefix="officegw-broker-defaults-") as tmp:
        broker = start_mosquitto(options={} if args.tuned else MOSQUITTO_DEFAULTS)
        try:
            progress(f"mosquitto with {'tuned' if args.tuned else 'its default'} settings on {broker.url}")
            workdir = Path(tmp)
            watch = BrokerWatch(broker)
            wait(lambda: watch.dropped == 0, args.timeout, "the new broker's drop count")
            paced(broker, watch, workdir, "5", rates, args.messages, args.timeout)
            if rates_311:
                paced(broker, watch, workdir, "3.1.1", rates_311, args.messages, args.timeout)
            if args.burst:
                burst(broker, watch, workdir, args.burst, away=False, timeout=args.timeout)
                burst(broker, watch, workdir, args.burst, away=True, timeout=args.timeout)
            watch.close()
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
