"""The simulated devices' MQTT connection: publishes what they say (QoS 1), and hands
over the commands the gateway sends them. paho types stay in this module.

One client stands for every device (their topics and last wills are told in the
messages themselves: availability is published retained). Its session persists
(clean start off, a fixed client id per run), so a command sent while the link is
reconnecting after a broker restart is delivered when it is back.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("officegw.simulate")


def parse_broker_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"broker {url!r}: expected mqtt://HOST:PORT")
    return parts.hostname, parts.port or 1883


class Link:
    def __init__(
        self, url: str, command_topics: list[str], *, mqtt5: bool = True, clock_topic: str | None = None
    ) -> None:
        self.host, self.port = parse_broker_url(url)
        # What the gateway says after each tick on device time (officegw/gateway/<id>/clock).
        self._clock_topic = clock_topic
        self._clock: dict[str, Any] | None = None
        self._clock_changed = threading.Condition()
        self._commands: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._topics = command_topics
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: list[str] = []
        self._last: MQTTMessageInfo | None = None
        self.connects = 0
        self.commands_received = 0
        protocol = MQTTProtocolVersion.MQTTv5 if mqtt5 else MQTTProtocolVersion.MQTTv311
        self._mqtt5 = mqtt5
        self._client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"officegw-sim-{uuid.uuid4().hex[:10]}",
            protocol=protocol,
            clean_session=None if mqtt5 else False,
        )
        # Localhost round trips are short: keep many publishes in flight, queue the rest.
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_socket_open = self._on_socket_open
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def connect(self, timeout: float = 10.0) -> None:
        if self._mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
            self._client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        else:  # MQTT 3.1.1: clean session off was set with the client
            self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout) or self._refused:
            self.close()
            why = self._refused[0] if self._refused else "no CONNACK/SUBACK"
            raise ConnectionError(f"MQTT broker {self.host}:{self.port}: {why}")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout) and self._subscribed.wait(timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self._last = self._client.publish(topic, payload, qos=1, retain=retain)

    def drain(self, timeout: float = 10.0) -> bool:
        """Waits until everything published so far reached the broker (paho sends in order)."""
        last = self._last
        if last is None:
            return True
        deadline = time.monotonic() + timeout
        while not last.is_published():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def take_commands(self) -> list[tuple[str, bytes]]:
        out = []
        while True:
            try:
                out.append(self._commands.get_nowait())
            except queue.Empty:
                return out

    def commands_waiting(self) -> bool:
        """Whether commands arrived that were not taken yet."""
        return not self._commands.empty()

    def wait_command(self, timeout: float) -> tuple[str, bytes] | None:
        try:
            return self._commands.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def wait_clock(self, done: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        """The gateway's latest tick report once `done(report)` holds; None after `timeout`."""
        with self._clock_changed:
            if self._clock_changed.wait_for(lambda: self._clock is not None and done(self._clock), timeout):
                return self._clock
            return None

    def forget_clock(self) -> None:
        """Drops the last tick report (the gateway restarted: its counters start again)."""
        with self._clock_changed:
            self._clock = None

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # paho callbacks (network thread)

    def _on_socket_open(self, _c: Client, _u: Any, sock: Any) -> None:
        # paho never sets TCP_NODELAY; without it small QoS 1 publishes wait on Nagle.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(
        self, c: Client, _u: Any, _f: ConnectFlags, rc: ReasonCode, _p: Properties | None
    ) -> None:
        if rc.is_failure:
            self._refused.append(str(rc))
            self._subscribed.set()
            return
        self.connects += 1
        self._subscribed.clear()  # before `connected`: a waiter must see the new subscription
        self._connected.set()
        topics = [(topic, 1) for topic in self._topics]
        if self._clock_topic is not None:
            topics.append((self._clock_topic, 0))
        if topics:
            c.subscribe(topics)  # again on every reconnect
        else:
            self._subscribed.set()  # a publisher only (dataset replay)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_disconnect(
        self, _c: Client, _u: Any, _f: DisconnectFlags, _rc: ReasonCode, _p: Properties | None
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()

    def _on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # a non-UTF-8 topic is no command of ours
            return
        if topic == self._clock_topic:
            try:
                said = orjson.loads(msg.payload)
            except orjson.JSONDecodeError:
                return
            with self._clock_changed:
                self._clock = said if isinstance(said, dict) else None
                self._clock_changed.notify_all()
            return
        self.commands_received += 1
        self._commands.put((topic, bytes(msg.payload)))
