"""Zigbee2MQTT payloads in the native vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.dialects.base import DecodeError
from devices.dialects.zigbee2mqtt import decode_state, translate


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"presence": True}, {"presence": True, "occupancy": True}),
        ({"presence": False, "occupancy": True}, {"presence": False, "occupancy": True}),
        ({"illuminance_lux": 369}, {"illuminance": 369}),
        ({"illuminance_lux": 12, "illuminance": 30}, {"illuminance": 30}),
        (
            {"lock_state": "locked", "action": "manual_unlock"},
            {"lock_state": "locked", "action": "manual_unlock", "state": "LOCK"},
        ),
        ({"child_lock": "UNLOCK", "state": "OFF"}, {"child_lock": "UNLOCK", "state": "OFF"}),
        ({"target_distance": None, "co2": 400}, {"co2": 400}),
    ],
)
def test_translate(raw: dict[str, object], expected: dict[str, object]) -> None:
    assert translate(raw) == expected


@pytest.mark.parametrize(
    ("last_seen", "when"),
    [
        (1_725_724_481_147, datetime(2024, 9, 7, 15, 54, 41, 147000, tzinfo=UTC)),
        ("2024-09-07T15:54:41.147Z", datetime(2024, 9, 7, 15, 54, 41, 147000, tzinfo=UTC)),
        ("2026-07-27T09:41:41+02:00", datetime(2026, 7, 27, 7, 41, 41, tzinfo=UTC)),
    ],
)
def test_last_seen_as_epoch_ms_or_iso(last_seen: object, when: datetime) -> None:
    payload = decode_state(
        b'{"last_seen": '
        + (f'"{last_seen}"' if isinstance(last_seen, str) else str(last_seen)).encode()
        + b"}"
    )
    assert payload.ts == when


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "invalid_json"),
        (b"[]", "not_an_object"),
        (b'{"brightness": 300}', "out_of_range"),
        (b'{"contact": "open"}', "invalid_type"),
    ],
)
def test_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_state(raw)
    assert caught.value.reason == reason
