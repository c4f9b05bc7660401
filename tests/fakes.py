"""In-memory stand-ins for what the gateway talks to, for unit tests without a broker.

`FakeTransport` implements `gateway.mqtt.transport.Transport`: a test delivers
messages into the gateway's handler synchronously (on the test's thread, as the
MQTT network thread would) and reads back what the gateway published. Time is
`gateway.clock.ManualClock`; `running_gateway` assembles a whole `Gateway` on both.
(The gateway's constructor checks FakeTransport against the protocol for mypy.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from gateway.automation.event_log import EventLog
from gateway.automation.runner import Automation, load_rule_set
from gateway.clock import ManualClock
from gateway.config import Settings, settings_from_dict
from gateway.ingest.pipeline import IngestPipeline
from gateway.live_state import LiveState
from gateway.mqtt.transport import Ack, ConnectionListener, InboundMessage, MessageHandler
from gateway.runtime import gateway as gateway_module
from gateway.runtime.gateway import Gateway
from gateway.runtime.room_state_publisher import RoomRenderer
from gateway.storage.sqlite_store import Store
from rules.engine import RuleSet
from rules.room_model import RoomState


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return orjson.loads(self.payload)


class RecordingAck:
    """The acknowledgement of one delivered message; counts how often it was called."""

    def __init__(self, transport: FakeTransport) -> None:
        self._transport = transport
        self.message: InboundMessage | None = None  # the message carrying it
        self.calls = 0

    def __call__(self) -> None:
        self._transport.ack_many([self])


class FakeTransport:
    """A `Transport` in memory: `deliver` hands a message to the handler at once,
    `published` holds every publication, `connect`/`disconnect` fire the listener."""

    def __init__(self, *, auto_connect: bool = True) -> None:
        self._auto_connect = auto_connect
        self._on_message: MessageHandler | None = None
        self._on_connection: ConnectionListener | None = None
        self._connected = False
        self._lock = threading.Lock()
        self.paused = False
        self.stopped = False
        self.published: list[Published] = []
        # Acknowledged messages, in acknowledgement order (from any thread).
        self.acked: list[InboundMessage] = []
        # Runs on the acknowledging thread just before each ack is recorded; a test
        # can look at what is committed at that moment.
        self.on_ack: Callable[[InboundMessage], None] | None = None
        # Delivered after `pause`: never handed on, never acknowledged (redelivered
        # after the next start, with a real broker).
        self.held_back: list[InboundMessage] = []
        # Topics added by `subscribe` and not dropped since, in order.
        self.subscribed: dict[str, None] = {}

    # Transport

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def receiving(self) -> bool:
        return self._connected  # subscriptions take effect at once in memory

    def start(self, on_message: MessageHandler, on_connection: ConnectionListener | None = None) -> None:
        self._on_message, self._on_connection = on_message, on_connection
        self.paused = self.stopped = False
        if self._auto_connect:
            self.connect()

    def pause(self) -> None:
        self.paused = True

    def stop(self) -> None:
        self.stopped = True
        self._connected = False
        self._on_message = None

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        with self._lock:
            self.published.append(Published(topic, payload, qos, retain))

    def subscribe(self, topics: Collection[str]) -> None:
        with self._lock:
            self.subscribed.update(dict.fromkeys(topics))

    def unsubscribe(self, topics: Collection[str]) -> None:
        with self._lock:
            for topic in topics:
                self.subscribed.pop(topic, None)

    def subscriptions_pending(self) -> int:
        return 0

    def broker_stats(self) -> None:
        """No broker behind it: no broker metrics."""
        return None

    def ack_many(self, acks: Sequence[Ack]) -> None:
        for ack in acks:
            if not isinstance(ack, RecordingAck):
                ack()
                continue
            message = ack.message
            assert message is not None
            if self.on_ack is not None:
                self.on_ack(message)
            with self._lock:
                ack.calls += 1
                self.acked.append(message)

    # Test controls

    def connect(self) -> None:
        self._connected = True
        if self._on_connection is not None:
            self._on_connection(True)

    def disconnect(self) -> None:
        self._connected = False
        if self._on_connection is not None:
            self._on_connection(False)

    def deliver(
        self, topic: str, payload: bytes | str | dict[str, Any], *, qos: int = 1, retained: bool = False
    ) -> RecordingAck | None:
        """Hands one message to the gateway, returning after the handler did; a QoS 1
        message carries a `RecordingAck` (returned), a QoS 0 one none."""
        if isinstance(payload, dict):
            payload = orjson.dumps(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        ack = RecordingAck(self) if qos > 0 else None
        message = InboundMessage(topic, payload, qos, retained, ack)
        if ack is not None:
            ack.message = message
        if self._on_message is None or not self._connected:
            raise AssertionError(f"FakeTransport: {topic} delivered while not started and connected")
        if self.paused:
            self.held_back.append(message)
            return ack
        self._on_message(message)
        return ack

    def sent(self, topic: str) -> list[Any]:
        """The JSON payloads published on `topic`, in order."""
        with self._lock:
            return [p.json() for p in self.published if p.topic == topic]


@dataclass(frozen=True)
class GatewayOnFakes:
    """A real `Gateway` (its store in a test's directory, history writer and
    snapshotter running) on a `FakeTransport` and a `ManualClock`. Time moves only
    in `advance`, which runs the ticker's tick on the test's thread."""

    gateway: Gateway
    transport: FakeTransport
    clock: ManualClock

    # The gateway's parts, for tests that look inside (the API only gets its methods).
    @property
    def live(self) -> LiveState:
        return self.gateway._live

    @property
    def pipeline(self) -> IngestPipeline:
        return self.gateway._pipeline

    @property
    def automation(self) -> Automation:
        return self.gateway._automation

    @property
    def events(self) -> EventLog:
        return self.gateway._events

    @property
    def store(self) -> Store:
        return self.gateway._store

    def room(self, room_id: str) -> RoomState:
        live = self.live.room(room_id)
        assert live is not None, f"no room {room_id}"
        return live.state

    def advance(self, seconds: float) -> None:
        """Moves time on and runs one tick of the ticker, on this thread."""
        self.clock.advance(seconds)
        self.gateway.ticker.tick()

    def flush(self, timeout: float = 2.0) -> None:
        """Waits until the history writer committed (and acknowledged) everything so far."""
        assert self.gateway._history.flush(timeout), "history writer did not flush in time"


# Compiled rule sets by (rules file text, time zone). A RuleSet is immutable (what
# rules remember lives in RuleMemory, per gateway), so gateways can share one; this
# saves parsing the built-in rules' YAML (~100 ms in pure-Python PyYAML) per test.
_RULE_SETS: dict[tuple[str | None, str], RuleSet] = {}


def _shared_rule_set(settings: Settings) -> RuleSet:
    text = None if settings.rules is None else Path(settings.rules).read_text()
    key = (text, settings.site.timezone)
    if key not in _RULE_SETS:
        _RULE_SETS[key] = load_rule_set(settings)
    return _RULE_SETS[key]


@contextmanager
def running_gateway(
    storage: Path, config: dict[str, Any], *, room_status: RoomRenderer | None = None
) -> Iterator[GatewayOnFakes]:
    """A started `GatewayOnFakes` for `config` (as for `settings_from_dict`), with its
    database in the directory `storage`; stopped on exit. `room_status`: the renderer
    of room states (retained on MQTT, streamed); without, the gateway publishes none."""
    config = dict(config)
    config["storage"] = {
        "path": str(storage / "officegw.db"),
        # Batches committed a millisecond after the first item, not 50 ms: tests wait on them.
        "commit_interval": 0.001,
        # Retention runs on the real clock, and the manual one starts in 2023: keep
        # it from deleting every reading a test just committed.
        "retention": {"readings": 36_500, "events": 36_500},
    } | config.get("storage", {})
    transport, clock = FakeTransport(), ManualClock()
    with mock.patch.object(gateway_module, "load_rule_set", _shared_rule_set):
        settings = settings_from_dict(config)
        gateway = Gateway(settings, transport=transport, clock=clock, room_status=room_status)
    gateway.start()
    # No ticks behind the test's back (one could release a throttled message between
    # two asserts): the test ticks, in `advance`.
    gateway.ticker.stop()
    try:
        yield GatewayOnFakes(gateway, transport, clock)
    finally:
        gateway.stop()
