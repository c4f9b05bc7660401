"""The native dialect: topics and payload decoding."""

from __future__ import annotations

import pytest

from devices.dialects.base import DecodeError
from devices.dialects.native import (
    NativeTopic,
    TopicKind,
    decode_availability,
    decode_state,
    parse_topic,
)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("office/hq/2/orion/pir", NativeTopic("hq", "2", "orion", "pir", TopicKind.STATE)),
        ("office/hq/2/orion/pir/set", NativeTopic("hq", "2", "orion", "pir", TopicKind.COMMAND)),
        (
            "office/hq/2/orion/pir/availability",
            NativeTopic("hq", "2", "orion", "pir", TopicKind.AVAILABILITY),
        ),
        ("office/hq/2/orion", None),
        ("office/hq/2/orion/pir/other", None),
        ("office/hq//orion/pir", None),
        ("officex/hq/2/orion/pir", None),
        ("elsewhere/hq/2/orion/pir", None),
    ],
)
def test_parse_topic(topic: str, expected: NativeTopic | None) -> None:
    assert parse_topic(topic, "office") == expected


def test_multi_level_prefix() -> None:
    assert parse_topic("acme/office/hq/2/orion/pir", "acme/office") == NativeTopic(
        "hq", "2", "orion", "pir", TopicKind.STATE
    )


def test_decode_keeps_unknown_fields_and_parses_device_time() -> None:
    payload = decode_state(b'{"co2": 415, "linkquality": 80, "ts": 1700000000.5}')
    assert payload.co2 == 415
    assert payload.model_extra == {"linkquality": 80}
    assert payload.ts is not None and payload.ts.timestamp() == 1700000000.5
    assert decode_state(b'{"ts": "2024-09-07T15:54:41.147Z"}').ts is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "invalid_json"),
        (b"", "invalid_json"),
        (b'"online"', "not_an_object"),
        (b'{"people": 2.5}', "invalid_type"),
        (b'{"people": -1}', "out_of_range"),
        (b'{"humidity": 101}', "out_of_range"),
        (b'{"contact": "closed"}', "invalid_type"),
        (b'{"access": "maybe"}', "out_of_range"),
        (b'{"co2": NaN}', "out_of_range"),
        (b'{"ts": "last tuesday"}', "invalid_type"),
        (b" " * (64 * 1024 + 1), "oversized"),
    ],
)
def test_decode_rejections_carry_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_state(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "online"),
    [(b"online", True), (b"offline", False), (b'{"state":"online"}', True), (b'"offline"', False)],
)
def test_availability(raw: bytes, online: bool) -> None:
    assert decode_availability(raw) is online


@pytest.mark.parametrize("raw", [b"up", b"{", b'{"state": "sleepy"}', b"[]"])
def test_bad_availability(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_availability(raw)
