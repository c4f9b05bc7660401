"""Shelly Gen2 payloads (as a Plus 1PM publishes them) and RPC commands."""

from __future__ import annotations

import orjson
import pytest

from devices.dialects.base import DecodeError
from devices.dialects.shelly import command, decode_availability, decode_state

STATUS = (
    b'{"id":0,"source":"init","output":true,"apower":8.9,"voltage":237.5,"current":0.041,'
    b'"aenergy":{"total":6532.0,"by_minute":[45.9,44.6,44.6],"minute_ts":1654511700},'
    b'"temperature":{"tC":53.3,"tF":127.9}}'
)
NOTIFY = (
    b'{"src":"shellyplus1pm-a8032ab12345","dst":"shellyplus1pm-a8032ab12345/events","method":"NotifyStatus",'
    b'"params":{"ts":1654511725.42,"switch:0":{"id":0,"output":false,"source":"button"}}}'
)


def test_status_and_notifications() -> None:
    assert decode_state(STATUS).model_dump(exclude_none=True) == {
        "state": "ON",
        "power": 8.9,
        "energy": 6.532,
    }
    assert decode_state(NOTIFY).model_dump(exclude_none=True) == {"state": "OFF"}
    other = b'{"method":"NotifyStatus","params":{"ts":1,"input:0":{"id":0,"state":true}}}'
    assert decode_state(other).model_dump(exclude_none=True) == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{", "invalid_json"), (b'{"output":"yes"}', "out_of_range"), (b'{"apower":-1}', "out_of_range")],
)
def test_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_state(raw)
    assert caught.value.reason == reason


def test_availability() -> None:
    assert decode_availability(b"true") is True
    assert decode_availability(b"false") is False
    with pytest.raises(DecodeError):
        decode_availability(b"maybe")


def test_commands_are_rpc_frames() -> None:
    ((topic, frame),) = command("shelly-1", {"state": "OFF"})
    assert topic == "shelly-1/rpc"
    assert orjson.loads(frame) == {
        "id": 1,
        "src": "officegw",
        "method": "Switch.Set",
        "params": {"id": 0, "on": False},
    }
    ((_, dim),) = command("shelly-1", {"state": "ON", "brightness": 127})
    assert orjson.loads(dim)["params"] == {"id": 0, "brightness": 50, "on": True}
