"""The fast path's PUBLISH decoder agrees with paho's own on every packet it takes."""

from __future__ import annotations

import struct

import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.mqtt.fast_path import EMPTY_PUBLISH_PROPERTIES, decode_plain_publish
from gateway.mqtt.paho_transport import fast_path_supported, installed_paho_version

# FastPathClient runs only on the paho-mqtt series it was written for; on another the
# gateway uses plain paho (tests/unit/gateway/mqtt/test_fast_path_switch.py).
pytestmark = pytest.mark.skipif(
    not fast_path_supported(installed_paho_version()),
    reason=f"the fast path is for paho-mqtt 2.2.x; {installed_paho_version()} is installed",
)


def publish_packet(topic: bytes, payload: bytes, *, qos: int, mid: int = 7, props: bytes = b"\x00") -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    return body + props + payload


def header(qos: int, *, dup: bool = False, retain: bool = False) -> int:
    return 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("dup", [False, True])
@pytest.mark.parametrize("retain", [False, True])
@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (b"officegw/sensors/f1/r101/motion-1", b'{"motion":true}'),
        (b"zigbee2mqtt/Office 3: desk/left", b"\x00\x01binary\xff"),
        ("zigbee2mqtt/Küche".encode(), b""),
    ],
)
def test_matches_paho(qos: int, dup: bool, retain: bool, topic: bytes, payload: bytes) -> None:
    packet = publish_packet(topic, payload, qos=qos, mid=513)
    command = header(qos, dup=dup, retain=retain)
    expected = _packet.decode_publish(command, packet, MQTTProtocolVersion.MQTTv5)

    message = decode_plain_publish(command, packet)
    assert message is not None
    assert message.topic == expected.topic.decode()
    assert message.payload == expected.payload
    assert (message.qos, message.dup, message.retain) == (expected.qos, expected.dup, expected.retain)
    assert message.mid == expected.mid
    assert expected.properties is not None
    assert message.properties is not None
    assert message.properties.json() == expected.properties.json()


def test_bytearray_packets_decode_to_bytes() -> None:
    message = decode_plain_publish(header(1), bytearray(publish_packet(b"a/b", b"xyz", qos=1)))
    assert message is not None
    assert type(message.payload) is bytes
    assert message.payload == b"xyz"


def test_leaves_packets_with_properties_to_paho() -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ContentType = "application/json"
    packet = publish_packet(b"a/b", b"{}", qos=1, props=props.pack())  # type: ignore[no-untyped-call]
    assert decode_plain_publish(header(1), packet) is None


@pytest.mark.parametrize(
    ("command", "packet"),
    [
        (header(2), publish_packet(b"a/b", b"x", qos=2)),  # QoS 2 needs paho's PUBREC flow
        (header(1), publish_packet(b"", b"x", qos=1)),  # an empty topic comes with an alias
        (header(0), publish_packet(b"a/\xff", b"x", qos=0)),  # not UTF-8: paho reports it
        (header(1), b"\x00"),  # truncated
        (header(1), publish_packet(b"a/b", b"", qos=1, props=b"")),  # no property block at all
    ],
)
def test_leaves_the_unusual_to_paho(command: int, packet: bytes) -> None:
    assert decode_plain_publish(command, packet) is None


def test_shared_empty_properties_are_read_only() -> None:
    with pytest.raises(AttributeError):
        EMPTY_PUBLISH_PROPERTIES.ContentType = "text/plain"
    assert EMPTY_PUBLISH_PROPERTIES.json() == Properties(PacketTypes.PUBLISH).json()  # type: ignore[no-untyped-call]
