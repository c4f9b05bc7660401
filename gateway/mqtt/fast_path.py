"""`FastPathClient`: paho's client with a faster read path (buffered reads, no
per-ack wake-ups, no MQTT 5 property parsing for messages that carry none) and
batched PUBACKs (`ack_many`).

Under load paho's own per-message work was most of the gateway's CPU, and every
message waiting in it delays the next motion -> light command (issue 3's p99):

- **Reads.** paho asks the socket for one packet per `select()`, in three or four
  `recv()` calls (command byte, length bytes one at a time, then the rest). Here a
  `recv()` takes whatever the kernel holds (up to 64 KiB) and paho's parser is
  served from that buffer, so a burst of messages costs one system call, not four
  per message. `loop_read` handles the buffered packets in batches and writes what
  they queued (acknowledgements, a command published from a callback) after each
  batch, and at once after a command, so a busy socket never starves writes; each
  turn of paho's loop starts with what is still buffered, since `select()` cannot
  see it.
- **Acknowledgements.** Every PUBACK queued from the network thread itself wrote a
  byte to paho's wake-up socket pair (and the loop then read it back); the network
  thread is awake anyway and writes the queue on its next turn, so those are
  skipped. Other threads (the ticker's commands) still wake it.
- **Properties.** paho builds a fresh `Properties` object for every incoming MQTT 5 PUBLISH, and its
checking `__setattr__` makes that cost ~16 us a message against ~2.5 us for the
same message over MQTT 3.1.1. At 5,000 msgs/s that was most of the gateway's CPU
and queued command-triggering messages behind the rest (issue 3's p99). Device
messages almost never carry properties, so when the property block is empty we
decode the PUBLISH ourselves and hand out one shared, read-only empty `Properties`;
anything else (properties present, QoS 2, a topic alias, a topic that is not
UTF-8) goes through paho unchanged.

This overrides private paho methods, written against paho-mqtt 2.2.x. It is
contained: `gateway.mqtt.paho_transport` imports this module only when the
installed paho is of that series (`fast_path_supported`) and `mqtt.fast_path` is
on; otherwise the gateway runs on plain paho. `tests/unit/gateway/mqtt/test_fast_path.py`
checks the decoder against paho's own and `tests/integration/test_fast_path.py` runs
the client against mosquitto.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class _EmptyPublishProperties(Properties):
    """The properties of every property-less PUBLISH: shared, so refuses changes."""

    _frozen = False

    def __init__(self) -> None:
        super().__init__(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError("the properties of a received message are read-only")
        super().__setattr__(name, value)  # type: ignore[no-untyped-call]


EMPTY_PUBLISH_PROPERTIES: Properties = _EmptyPublishProperties()


def decode_plain_publish(command: int, packet: bytes | bytearray) -> paho.MQTTMessage | None:
    """Decode an MQTT 5 QoS 0/1 PUBLISH without properties, or None for paho to do it."""
    qos = (command & 0x06) >> 1
    if qos == 2 or len(packet) < 2:
        return None
    topic_end = 2 + int.from_bytes(packet[0:2], "big")
    if topic_end == 2:
        return None  # an empty topic comes with a Topic Alias property
    offset = topic_end
    mid = 0
    if qos:
        mid = int.from_bytes(packet[offset : offset + 2], "big")
        offset += 2
    # The property block starts with its length as a variable byte integer; 0 is "none".
    if len(packet) <= offset or packet[offset] != 0:
        return None
    topic = bytes(packet[2:topic_end])
    try:
        topic.decode()
    except UnicodeDecodeError:
        return None  # paho's own path reports these
    message = paho.MQTTMessage(mid=mid, topic=topic)
    message.dup = bool(command & 0x08)
    message.qos = qos
    message.retain = bool(command & 0x01)
    message.properties = EMPTY_PUBLISH_PROPERTIES
    message.payload = bytes(packet[offset + 1 :])
    return message


_PUBACK = struct.Struct("!BBH")
READ_CHUNK = 65_536
# Packets handled per `loop_read` before paho's loop gets a turn to write: at ~30 us
# a packet, a PUBACK or command waits at most a couple of milliseconds.
READ_BATCH = 64


class FastPathClient(paho.Client):
    """paho's Client with buffered reads, quiet and batched PUBACKs and property-less
    decoding; built by `PahoTransport` only on paho-mqtt 2.2.x with `mqtt.fast_path` on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_pos = 0
        # The socket the buffer was filled from: a reconnect must not see stale bytes.
        self._read_sock: Any = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_sock is not self._sock or self._read_pos >= len(self._read_buffer):
            self._read_sock, self._read_buffer, self._read_pos = self._sock, b"", 0
            chunk = super()._sock_recv(READ_CHUNK)  # raises BlockingIOError when there is none
            if not chunk:
                return chunk  # the broker closed the connection
            self._read_buffer = chunk
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read_buffer))
        return self._read_buffer[start : self._read_pos]

    def _buffered(self) -> bool:
        return self._read_sock is self._sock and self._read_pos < len(self._read_buffer)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        commands_before = len(self._out_messages)
        for _ in range(READ_BATCH):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN or not self._buffered():
                break
            if len(self._out_messages) != commands_before:
                break  # a callback published a command: send it before reading on
        if self._out_packet:
            # The acknowledgements and commands queued by this batch, now rather than
            # after the next one.
            rc = self.loop_write()
            if rc or self._sock is None:
                return rc
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        if self._buffered():
            # Packets left from the last batch: select() would not see them, since
            # the kernel has already handed them over.
            rc = self.loop_read()
            if rc or self._sock is None:
                return rc
            if self._buffered():
                timeout = 0.0
        return super()._loop(timeout)

    def _packet_queue(
        self,
        command: int,
        packet: bytes | bytearray,
        mid: int,
        qos: int,
        info: paho.MQTTMessageInfo | None = None,
    ) -> MQTTErrorCode:
        if self._thread is None or threading.current_thread() is not self._thread:
            return super()._packet_queue(command, packet, mid, qos, info)
        # On the network thread: it writes the queue on its next turn of the loop
        # (select() sees the socket writable), so no wake-up byte is needed; and
        # back-to-back acknowledgements go out in one write.
        if command == paho.PUBACK and self._out_packet:
            last = self._out_packet[-1]
            if last["command"] == paho.PUBACK and last["pos"] == 0:
                last["packet"] = bytes(last["packet"]) + packet
                last["to_process"] += len(packet)
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        self._out_packet.append(
            {
                "command": command,
                "mid": mid,
                "qos": qos,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": info,
            }
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledges QoS 1 messages from any thread, with one write and one wake-up
        of the network thread for the lot (paho's `ack` costs one of each per message)."""
        if not mids:
            return
        packet = b"".join(_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids)
        # One queued packet holding every PUBACK frame: the network thread writes it
        # whole. A deque append is atomic, so no lock is needed against that thread.
        self._out_packet.append(
            {
                "command": paho.PUBACK,
                "mid": 0,
                "qos": 0,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": None,
            }
        )
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._wake_loop()

    def _wake_loop(self) -> None:
        if self._sockpairW is not None:
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                self._sockpairW.send(b"0")

    def _handle_publish(self) -> MQTTErrorCode:
        message = None
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            message = decode_plain_publish(self._in_packet["command"], self._in_packet["packet"])
        if message is None:
            return super()._handle_publish()
        # From here on this mirrors paho's QoS 0/1 handling, manual acknowledgement included.
        self._easy_log(
            paho.MQTT_LOG_DEBUG,
            "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', ...  (%d bytes)",
            message.dup,
            message.qos,
            message.retain,
            message.mid,
            message.topic,
            len(message.payload),
        )
        message.timestamp = paho.time_func()
        self._handle_on_message(message)
        if message.qos == 0 or self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._send_puback(message.mid)
