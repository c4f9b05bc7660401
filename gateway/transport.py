"""What the gateway needs from an MQTT connection, free of any client library's types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
    @property
    def connected(self) -> bool: ...

    def start(self) -> None:
        """Connect in the background; reconnects by itself until `stop`."""

    def stop(self) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...
