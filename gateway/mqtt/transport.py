"""What the gateway needs from an MQTT connection, free of any client library's types."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.mqtt.broker_stats import BrokerStats

# Acknowledges one message to the broker; run once what it carried is committed.
Ack = Callable[[], None]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    qos: int = 1
    # Replayed by the broker from its retained store, not sent just now.
    retained: bool = False
    # Acknowledges the message to the broker (QoS 1 with manual acknowledgement);
    # called once what it carried is committed. None: nothing to acknowledge.
    ack: Ack | None = None


MessageHandler = Callable[[InboundMessage], None]
ConnectionListener = Callable[[bool], None]


class Transport(Protocol):
    """An MQTT connection as the gateway uses it: messages in, publications and acks out.

    Implementations: `gateway.mqtt.paho_transport.PahoTransport` (a broker) and
    `tests/fakes.py`'s `FakeTransport` (in memory, for unit tests).
    """

    @property
    def connected(self) -> bool: ...

    @property
    def receiving(self) -> bool:
        """Connected, and the broker acknowledged the subscriptions the connection
        opened with: what devices publish from now on reaches the gateway (readiness)."""

    def start(self, on_message: MessageHandler, on_connection: ConnectionListener | None = None) -> None:
        """Connect in the background and hand every message to `on_message`;
        reconnects by itself until `stop`."""

    def pause(self) -> None:
        """Stop handing messages on (shutdown): what arrives from now on stays
        unacknowledged and is delivered again after the next start."""

    def stop(self) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...

    def subscribe(self, topics: Collection[str]) -> None:
        """Adds subscriptions (discovered devices' topics): sent now when connected, and
        again on every connect, with those the connection started with."""

    def unsubscribe(self, topics: Collection[str]) -> None:
        """Drops subscriptions added by `subscribe` (a device left or was renamed)."""

    def subscriptions_pending(self) -> int:
        """Topics subscribed to and not yet acknowledged by the broker."""

    def ack_many(self, acks: Sequence[Ack]) -> None:
        """Acknowledges many messages at once (the history writer's committed batch)."""

    def broker_stats(self) -> BrokerStats | None:
        """The broker's own counters as last seen (messages it dropped, ...); None when
        not followed."""
