"""Helpers shared by the integration tests: polling with deadlines, a running gateway, a publisher."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.cli.assembly import build_app
from gateway.cli.server import ServerThread
from gateway.clock import Clock
from gateway.config import Settings, settings_from_dict
from simulators.broker import MqttBroker, free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def wait_until(
    check: Callable[[], T],
    timeout: float = 5.0,
    what: str = "condition",
    progress: Callable[[], object] | None = None,
) -> T:
    """Polls `check` until it returns something truthy; fails with `what` after `timeout` s
    (and with what `progress()` says then, to tell why)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    seen = f"; {progress()!r}" if progress is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}{seen}")


def unique_prefix() -> str:
    """A topic root of its own, so tests sharing a broker never see each other's messages."""
    return f"office-{uuid.uuid4().hex[:8]}"


@dataclass
class RunningGateway:
    settings: Settings
    server: ServerThread
    http: httpx.Client
    scratch: Path | None = None  # a temporary directory of ours, removed on stop

    @property
    def prefix(self) -> str:
        return self.settings.mqtt.topic_prefix

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def room(self, room_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/rooms/{room_id}")
        return response.json() if response.status_code == 200 else {}

    def metric(self, name: str, labels: str = "") -> float:
        """One sample from /metrics, e.g. metric("officegw_messages_rejected_total", 'reason="oversized"')."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"metric {wanted} not exposed")

    def stop(self) -> None:
        self.http.close()
        self.server.stop()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def start_gateway(
    broker: MqttBroker,
    config: dict[str, Any] | None = None,
    storage: Path | None = None,
    clock: Clock | None = None,
) -> RunningGateway:
    """A gateway + API on a random port with its own topic root and state file (and, with
    `clock`, on that clock: a `ManualClock` runs a day in seconds)."""
    config = dict(config or {})
    scratch = None
    if storage is None:
        scratch = Path(tempfile.mkdtemp(prefix="officegw-test-"))
        storage = scratch / "officegw.db"
    config.setdefault("storage", {"path": str(storage)})
    mqtt_section = {
        "url": broker.url,
        "topic_prefix": unique_prefix(),
        "protocol": "5" if broker.mqtt5 else "3.1.1",
        "reconnect_max_delay": 2,
        **config.pop("mqtt", {}),
    }
    gateway_section = {"id": f"test-{uuid.uuid4().hex[:8]}", **config.pop("gateway", {})}
    settings = settings_from_dict({"mqtt": mqtt_section, "gateway": gateway_section, **config})
    server = ServerThread(build_app(settings, clock=clock), "127.0.0.1", free_port()).start()
    running = RunningGateway(settings, server, httpx.Client(base_url=server.url, timeout=5.0), scratch)
    wait_until(lambda: running.get("/readyz").status_code == 200, 10.0, "gateway ready")
    return running


class Publisher:
    """A plain paho client publishing like a device would; QoS 1 and waits for the PUBACK."""

    def __init__(self, broker: MqttBroker) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
        )
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes | dict[str, Any] | str, *, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class SimLight:
    """A dimmable light on the real broker: obeys `<topic>/set` and reports its new state,
    like a Zigbee2MQTT bulb. With `obey=False` it hears commands and ignores them."""

    def __init__(self, broker: MqttBroker, topic: str, *, obey: bool = True, watts: float = 10.0) -> None:
        self.topic = topic
        self.obey = obey
        self.watts = watts
        self.state: dict[str, Any] = {"state": "OFF", "brightness": 254}
        self.commands: list[dict[str, Any]] = []
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if broker.mqtt5 else mqtt.MQTTv311
        )
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *args: subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(f"{topic}/set", qos=1)
        self._client.loop_start()
        if not subscribed.wait(5):
            raise TimeoutError(f"{topic}: no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        command = orjson.loads(message.payload)
        self.commands.append(command)
        if self.obey:
            self.state.update(command)
            self.report()

    def report(self) -> None:
        on = self.state["state"] == "ON"
        power = round(self.watts * self.state["brightness"] / 254, 2) if on else 0.0
        self._client.publish(self.topic, orjson.dumps({**self.state, "power": power}), qos=1)

    def switch_at_the_wall(self, state: str) -> None:
        """A person flips the switch: the light changes without any command."""
        self.state["state"] = state
        self.report()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def get_or_none(http: httpx.Client, path: str, **params: Any) -> httpx.Response | None:
    """GET, or None while the process is not (or no longer) listening."""
    try:
        return http.get(path, params=params)
    except httpx.TransportError:
        return None


def is_ready(http: httpx.Client) -> bool:
    response = get_or_none(http, "/readyz")
    return response is not None and response.status_code == 200


def metric_or_none(http: httpx.Client, name: str) -> float | None:
    """A sample of /metrics by name (labels ignored); None when not exposed or not up."""
    response = get_or_none(http, "/metrics")
    if response is None or response.status_code != 200:
        return None
    for line in response.text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return None


class GatewayProcess:
    """`officegw run --config CONFIG [ARGS]` as a process of its own, its output in `log`
    (`env`: OFFICEGW_* overrides; `command`: another command taking --config, e.g. `api`)."""

    def __init__(
        self,
        config: Path,
        log: Path,
        port: int,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        command: str = "run",
    ) -> None:
        self._config, self._log, self.port = config, log, port
        self._args, self._env = list(args), dict(env or {})
        self._command = command
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)

    def start(self, *, wait_ready: bool = True) -> None:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    self._command,
                    "--config",
                    str(self._config),
                    *self._args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **self._env},
            )
        if not wait_ready:
            return

        def ready() -> bool:
            try:
                return self.http.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        # Not a start-up time check (benchmarks/restart.py times that): on a shared
        # 2-core machine under load, interpreter start and imports alone took over 20 s.
        wait_until(ready, 60.0, f"officegw {self._command} ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def metric(self, name: str) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")


def fleet_client(host: str, port: int, acked: set[int]) -> mqtt.Client:
    """A device fleet's connection: MQTT 3.1.1, a persistent session (paho queues while
    disconnected and resends what was not acknowledged), 100 in flight; the message id
    of every PUBACK goes into `acked`. Connected, its network loop started."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fleet-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    client.max_inflight_messages_set(100)
    client.on_publish = lambda client, userdata, mid, *rest: acked.add(mid)
    client.connect(host, port)
    client.loop_start()
    return client


class SteadyFleet:
    """Devices publishing QoS 1 readings (MQTT 3.1.1) on a persistent session of their
    own, by number: `reading(n)` is the topic and payload of reading n. `publish`
    sends some at once, `start` at a steady rate until `stop`, which waits for a
    PUBACK of every one."""

    def __init__(self, host: str, port: int, reading: Callable[[int], tuple[str, bytes]]) -> None:
        self._reading = reading
        self._acked: set[int] = set()
        self._client = fleet_client(host, port, self._acked)
        self._mids: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> int:
        return len(self._mids)

    def _send_next(self) -> None:
        self._mids.append(self._client.publish(*self._reading(len(self._mids)), qos=1).mid)

    def publish(self, count: int) -> None:
        for _ in range(count):
            self._send_next()

    def start(self, rate: float) -> None:
        def run() -> None:
            begun = time.perf_counter()
            first = len(self._mids)
            while not self._stop.is_set():
                delay = begun + (len(self._mids) - first) / rate - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
                    continue
                self._send_next()

        self._thread = threading.Thread(target=run, name="fleet")
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Stops publishing, waits for a PUBACK of everything; returns how many were sent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        wait_until(lambda: self._acked.issuperset(self._mids), timeout, "a PUBACK for every reading")
        return len(self._mids)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def watching(broker: MqttBroker, topic_filter: str) -> Iterator[queue.SimpleQueue[tuple[str, Any]]]:
    """(topic, JSON payload) of every message on `topic_filter`, collected by a paho client."""
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: inbox.put((m.topic, orjson.loads(m.payload)))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(broker.host, broker.port)
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5), "no SUBACK"
        yield inbox
    finally:
        client.loop_stop()
        client.disconnect()
