"""The MQTT connection, on paho-mqtt 2.x; paho's types never leave this module.

One client, QoS 1, a persistent session under a fixed client id (so the broker
queues what is published while the gateway is away), a retained online status
with a last will, reconnect with capped backoff, and a fresh subscription on
every connect (a broker that lost its state still delivers to us). With
`broker_stats` on it also follows the broker's own counters (`$SYS`, see
gateway/mqtt/broker_stats.py), which never reach the message handler.

The client is `FastPathClient` (gateway/mqtt/fast_path.py) when `mqtt.fast_path`
is on and the installed paho-mqtt is the series it was written for (2.2.x), else
plain paho `Client`; everything here works with either.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import re
import socket
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.logs import kv
from gateway.mqtt import broker_stats
from gateway.mqtt.broker_stats import BrokerCounters, BrokerStats
from gateway.mqtt.transport import ConnectionListener, InboundMessage, MessageHandler

if TYPE_CHECKING:
    from gateway.mqtt.fast_path import FastPathClient

log = logging.getLogger("officegw.mqtt")

# The paho-mqtt series FastPathClient's overrides of private paho methods were
# written against and tested with.
FAST_PATH_PAHO_SERIES = "2.2"

# How long after subscribing to the broker's $SYS topics a value should have come
# (mosquitto sends its uptime, retained, at once; others within one publishing round).
BROKER_STATS_GRACE = 30.0
# Connections the broker closed while our $SYS subscription awaited its SUBACK, in
# a row, before we take it as the broker's answer and stop asking.
BROKER_STATS_MAX_CLOSES = 2
# Connections the broker closed before answering CONNECT, in a row, before we say
# why that may be (one unlucky close during a broker restart is no sign).
CONNECT_MAX_CLOSES = 2


def fast_path_supported(paho_version: str) -> bool:
    """Whether FastPathClient was written for this paho-mqtt version: 2.2.x (its
    pre- and post-releases included), not 2.1, 2.3, 2.20 or 3."""
    return re.match(rf"{re.escape(FAST_PATH_PAHO_SERIES)}(?![0-9])", paho_version) is not None


def installed_paho_version() -> str:
    try:
        return importlib.metadata.version("paho-mqtt")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"  # importable without package metadata (vendored): not one we know


def client_class(fast_path: bool, paho_version: str) -> type[mqtt.Client]:
    """The client to build: FastPathClient when `fast_path` is on and paho is of its
    series; else plain paho, with one warning line when it is the version that says no."""
    if not fast_path:
        return mqtt.Client
    if not fast_path_supported(paho_version):
        log.warning(
            kv(
                "mqtt fast path off: paho-mqtt version not supported",
                found=paho_version,
                expected=f"{FAST_PATH_PAHO_SERIES}.x",
                using="plain paho-mqtt Client",
            )
        )
        return mqtt.Client
    # Imported only here: its overrides of private paho methods need not even import
    # on another paho.
    from gateway.mqtt.fast_path import FastPathClient

    return FastPathClient


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str
    port: int
    client_id: str
    subscriptions: tuple[str, ...]
    status_topic: str
    mqtt5: bool = True
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    session_expiry: int = 7 * 86_400
    # Resume the broker's session on connect (a gateway: what arrived while it was away
    # is delivered); off for a client that needs nothing queued (an API replica).
    persistent_session: bool = True
    reconnect_min_delay: int = 1
    reconnect_max_delay: int = 30
    # Acknowledge QoS 1 messages only when `InboundMessage.ack` is called (after
    # what they carry is committed), not when they arrive.
    manual_ack: bool = False
    receive_maximum: int = 1000
    # FastPathClient (when paho-mqtt is 2.2.x) rather than plain paho `Client`.
    fast_path: bool = True
    # Follow the broker's $SYS counters (messages it dropped, stored, its uptime).
    broker_stats: bool = True


@dataclass(frozen=True, slots=True)
class PendingAck:
    """The acknowledgement of one QoS 1 message, to send once it is committed; never
    on a later connection than the one it arrived on (its packet id may be reused)."""

    transport: PahoTransport
    mid: int
    generation: int

    def __call__(self) -> None:
        self.transport.ack_many([self])


# Topics per SUBSCRIBE packet: a discovered site can follow thousands of topics,
# and brokers cap a packet's size.
SUBSCRIBE_CHUNK = 500


def _chunks(topics: Sequence[str]) -> list[list[str]]:
    return [list(topics[i : i + SUBSCRIBE_CHUNK]) for i in range(0, len(topics), SUBSCRIBE_CHUNK)]


def _not_started(message: InboundMessage) -> None:
    raise RuntimeError("PahoTransport: a message arrived before start()")


class PahoTransport:
    def __init__(self, options: MqttOptions) -> None:
        self._options = options
        self._on_message: MessageHandler = _not_started
        self._on_connection: ConnectionListener | None = None
        self._connected = threading.Event()
        self._started = False
        # Bumped on every connect: an acknowledgement for a message of an earlier
        # connection must not go out on this one (its packet id may be reused).
        self._generation = 0
        # Set by `pause`: messages arriving after it are left unacknowledged, so the
        # broker delivers them again next time.
        self._paused = False
        self._client_class = client_class(options.fast_path, installed_paho_version())
        self._broker = BrokerCounters() if options.broker_stats else None
        # The SUBSCRIBE of the $SYS topics while its SUBACK is awaited.
        self._broker_sub_mid: int | None = None
        self._broker_sub_closes = 0
        self._broker_said: set[str] = set()  # what we logged once: "refused", "silent"
        self._broker_watch: threading.Timer | None = None
        # Connections closed before a CONNACK since the last one that was accepted.
        self._closed_before_connack = 0
        # What the gateway follows now: the configured filters, then the topics of
        # discovered devices, in the order added; and topics dropped while no
        # connection was up, to unsubscribe from once one is (the session keeps them).
        self._subscriptions: dict[str, None] = dict.fromkeys(options.subscriptions)
        self._to_unsubscribe: set[str] = set()
        # SUBSCRIBE packet id -> topics in it, until the broker acknowledges it.
        self._unacknowledged: dict[int, int] = {}
        # The SUBSCRIBEs this connection opened with, until the broker acknowledges them
        # (`receiving`): till then what devices publish may not reach us yet.
        self._opening: set[int] = set()
        self._subscriptions_lock = threading.Lock()
        self._client = self._build_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def receiving(self) -> bool:
        """Connected, and the broker acknowledged the subscriptions the connection
        opened with. RabbitMQ creates a subscription's binding only when it handles
        the SUBSCRIBE, and routes nothing to the session before: on a first start,
        what is published between CONNACK and SUBACK is gone (readiness waits for this)."""
        with self._subscriptions_lock:
            return self._connected.is_set() and not self._opening

    @property
    def fast_path(self) -> bool:
        """Whether the client is FastPathClient (else plain paho)."""
        return self._client_class is not mqtt.Client

    def _build_client(self) -> mqtt.Client:
        o = self._options
        if o.mqtt5:
            client = self._client_class(
                CallbackAPIVersion.VERSION2,
                client_id=o.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=o.manual_ack,
            )
        else:
            client = self._client_class(
                CallbackAPIVersion.VERSION2,
                client_id=o.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not o.persistent_session,
                manual_ack=o.manual_ack,
            )
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        # Retained, so anyone subscribing later learns whether the gateway is up.
        client.will_set(o.status_topic, b"offline", qos=1, retain=True)
        # Doubling from min to max delay between attempts: a broker restart is picked
        # up quickly, a long outage does not hammer it.
        client.reconnect_delay_set(min_delay=o.reconnect_min_delay, max_delay=o.reconnect_max_delay)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribe
        client.on_socket_open = self._handle_socket_open
        client.on_connect_fail = self._handle_connect_fail
        return client

    def start(self, on_message: MessageHandler, on_connection: ConnectionListener | None = None) -> None:
        self._on_message = on_message
        self._on_connection = on_connection
        o = self._options
        log.info(
            kv(
                "mqtt connecting",
                host=o.host,
                port=o.port,
                client_id=o.client_id,
                mqtt5=o.mqtt5,
                fast_path=self.fast_path,
            )
        )
        if o.mqtt5:
            # Clean start off on every (re)connect, and a session that outlives the
            # connection: the broker queues what arrives while we are away.
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = o.session_expiry
            # Acknowledgements wait for the history commit: let the broker send this
            # many before the first one comes back.
            properties.ReceiveMaximum = o.receive_maximum
            self._client.connect_async(
                o.host,
                o.port,
                keepalive=o.keepalive,
                clean_start=not o.persistent_session,
                properties=properties,
            )
        else:
            # No session expiry, no receive maximum in 3.1.1: the broker's own settings
            # decide how long it keeps the session and how much it sends unacknowledged.
            log.info(
                kv(
                    "mqtt 3.1.1: mqtt.session_expiry and mqtt.receive_maximum do not apply",
                    instead="the broker's session lifetime and in-flight window",
                    see="README: Running against your broker",
                )
            )
            self._client.connect_async(o.host, o.port, keepalive=o.keepalive)
        self._client.loop_start()
        self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.connected:
            # A clean disconnect suppresses the last will, so say it ourselves.
            info = self._client.publish(self._options.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        if self._broker_watch is not None:
            self._broker_watch.cancel()

    def pause(self) -> None:
        """Stop handing messages on (shutdown): what arrives from now on stays
        unacknowledged and is delivered again after the next start."""
        self._paused = True

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topics: Collection[str]) -> None:
        with self._subscriptions_lock:
            new = [topic for topic in topics if topic not in self._subscriptions]
            self._subscriptions.update(dict.fromkeys(new))
            self._to_unsubscribe.difference_update(new)
        if new and self.connected:
            for chunk in _chunks(new):
                self._subscribe_chunk(self._client, chunk)

    def unsubscribe(self, topics: Collection[str]) -> None:
        with self._subscriptions_lock:
            gone = [topic for topic in topics if topic in self._subscriptions]
            for topic in gone:
                del self._subscriptions[topic]
            if not self.connected:
                self._to_unsubscribe.update(gone)
                return
        for chunk in _chunks(gone):
            self._client.unsubscribe(chunk)

    def _subscribe_chunk(self, client: mqtt.Client, topics: list[str], *, opening: bool = False) -> None:
        """Sends one SUBSCRIBE and awaits the broker's answer; `opening`: one the
        connection opened with (`receiving` waits for those)."""
        result, mid = client.subscribe([(topic, 1) for topic in topics])
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return
        with self._subscriptions_lock:
            self._unacknowledged[mid] = len(topics)
            if opening:
                self._opening.add(mid)

    def subscriptions_pending(self) -> int:
        with self._subscriptions_lock:
            return sum(self._unacknowledged.values())

    @property
    def subscriptions(self) -> tuple[str, ...]:
        with self._subscriptions_lock:
            return tuple(self._subscriptions)

    def broker_stats(self) -> BrokerStats | None:
        """The broker's counters as last seen; None with `broker_stats` off."""
        return self._broker.stats() if self._broker is not None else None

    # paho callbacks (on paho's network thread)

    def _handle_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # paho never sets TCP_NODELAY; without it Nagle + delayed ACKs add ~5 ms a hop.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # The backoff spaces these out (doubling up to reconnect_max_delay), so one
        # line per attempt is no spam.
        o = self._options
        log.warning(kv("mqtt connect failed", host=o.host, port=o.port, retrying=True))

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning(kv("mqtt connect refused", reason=str(reason_code)))
            return
        o = self._options
        self._closed_before_connack = 0
        with self._subscriptions_lock:
            topics, stale = list(self._subscriptions), list(self._to_unsubscribe)
            self._to_unsubscribe.clear()
        with self._subscriptions_lock:
            self._unacknowledged.clear()  # a new connection: those are sent again below
            self._opening.clear()
        for chunk in _chunks(topics):
            self._subscribe_chunk(client, chunk, opening=True)
        for chunk in _chunks(stale):
            client.unsubscribe(chunk)
        if self._broker is not None and self._broker_sub_closes < BROKER_STATS_MAX_CLOSES:
            # QoS 0, as the broker publishes them: never queued for us while we are away.
            _, self._broker_sub_mid = client.subscribe([(topic, 0) for topic in broker_stats.TOPICS])
        client.publish(o.status_topic, b"online", qos=1, retain=True)
        log.info(
            kv(
                "mqtt connected",
                host=o.host,
                port=o.port,
                session_present=flags.session_present,
                subscriptions=len(topics),
            )
        )
        self._generation += 1
        self._connected.set()
        if self._on_connection:
            self._on_connection(True)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._broker_sub_mid is not None:
            self._broker_sub_mid = None
            self._broker_closed_on_subscribe()
        if self._broker_watch is not None:
            self._broker_watch.cancel()  # the next connection subscribes and watches again
        if was_connected:
            level = logging.INFO if not self._started else logging.WARNING
            log.log(level, kv("mqtt disconnected", reason=str(reason_code), reconnecting=self._started))
            if self._on_connection:
                self._on_connection(False)
        elif self._started:
            self._closed_before_answer()

    def _closed_before_answer(self) -> None:
        # The broker took the TCP connection and closed it without a CONNACK. A broker
        # that speaks MQTT 3.1.1 only does exactly that to an MQTT 5 CONNECT (RabbitMQ
        # 3.x cannot parse it); paho retries for ever, so say it once a streak.
        self._closed_before_connack += 1
        if self._closed_before_connack != CONNECT_MAX_CLOSES:
            return
        o = self._options
        hint = (
            "a broker that speaks MQTT 3.1.1 only (RabbitMQ 3.x) does this to MQTT 5: "
            'set mqtt.protocol: "3.1.1"'
            if o.mqtt5
            else "see the broker's log: it refused this client before answering"
        )
        log.warning(
            kv(
                "mqtt broker closed the connection before answering CONNECT",
                host=o.host,
                port=o.port,
                protocol="5" if o.mqtt5 else "3.1.1",
                times=self._closed_before_connack,
                hint=hint,
                retrying=True,
            )
        )

    def _handle_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._subscriptions_lock:
            self._unacknowledged.pop(mid, None)
            # Refused or granted, it is answered: a refusal is the broker's last word.
            self._opening.discard(mid)
        if mid != self._broker_sub_mid:
            return
        self._broker_sub_mid = None
        self._broker_sub_closes = 0
        refused = [
            topic for topic, code in zip(broker_stats.TOPICS, reason_codes, strict=False) if code.is_failure
        ]
        if refused:
            self._say_once(
                "refused",
                kv(
                    "broker stats: subscription refused",
                    topics=",".join(refused),
                    effect="messages the broker drops are not seen",
                ),
            )
        if len(refused) < len(broker_stats.TOPICS) and "silent" not in self._broker_said:
            watch = threading.Timer(BROKER_STATS_GRACE, self._check_broker_stats_seen)
            watch.daemon = True
            if self._broker_watch is not None:
                self._broker_watch.cancel()
            self._broker_watch = watch
            watch.start()

    def _check_broker_stats_seen(self) -> None:
        # Only silence on every topic says anything: mosquitto's drop count alone
        # comes when it next changes if it has not for a minute (see broker_stats).
        seen = self._broker.stats() if self._broker is not None else None
        if seen is not None and seen.uptime is None and seen.dropped is None and self._started:
            self._say_once(
                "silent",
                kv(
                    "broker stats: nothing published",
                    topics=",".join(broker_stats.TOPICS),
                    waited_s=BROKER_STATS_GRACE,
                    effect="messages the broker drops are not seen",
                    fix="mqtt.broker_stats: false for a broker without mosquitto's $SYS counters "
                    "(RabbitMQ publishes none)",
                ),
            )

    def _broker_closed_on_subscribe(self) -> None:
        # Some brokers answer a subscription they refuse by closing the connection;
        # asking again on every reconnect would keep the gateway off the broker.
        self._broker_sub_closes += 1
        if self._broker_sub_closes >= BROKER_STATS_MAX_CLOSES:
            log.warning(
                kv(
                    "broker stats off: the broker closed the connection after the $SYS subscription",
                    times=self._broker_sub_closes,
                    fix="set mqtt.broker_stats: false for this broker",
                )
            )

    def _say_once(self, key: str, line: str) -> None:
        if key not in self._broker_said:
            self._broker_said.add(key)
            log.info(line)

    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if topic.startswith("$SYS/"):
            # The broker's counters, never a device message (nor a reject); they may
            # still come with broker_stats off, from a session that subscribed before.
            if self._broker is not None:
                self._broker.observe(topic, bytes(message.payload), retained=bool(message.retain))
            return
        if self._paused:
            return
        payload = message.payload
        ack = None
        if self._options.manual_ack and message.qos > 0:
            ack = self._acknowledger(message.mid, message.qos, self._generation)
        # paho reads into bytes; a bytearray would only come from a hand-made message.
        self._on_message(
            InboundMessage(
                topic,
                payload if isinstance(payload, bytes) else bytes(payload),
                message.qos,
                bool(message.retain),
                ack,
            )
        )

    def _acknowledger(self, mid: int, qos: int, generation: int) -> PendingAck:
        return PendingAck(self, mid, generation)

    def ack_many(self, acks: Sequence[Callable[[], None]]) -> None:
        """Sends many acknowledgements at once (the history writer's batch): one write
        for all of this connection's; others (and foreign callables) one by one."""
        mids = []
        for ack in acks:
            if isinstance(ack, PendingAck) and ack.transport is self:
                if ack.generation == self._generation and self._connected.is_set():
                    mids.append(ack.mid)
            else:
                ack()
        if not mids:
            return
        if self.fast_path:
            cast("FastPathClient", self._client).ack_many(mids)
        else:
            # Plain paho: one PUBACK and one wake-up of its network thread a message.
            # Every message here is QoS 1: the subscriptions are QoS 1, so the broker
            # delivers nothing at a higher QoS.
            for mid in mids:
                self._client.ack(mid, 1)
