"""Tasmota payloads and commands in the native vocabulary (payloads as Tasmota 13 sends them)."""

from __future__ import annotations

import pytest

from devices.dialects.base import DecodeError
from devices.dialects.tasmota import command, decode_state, routes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"ON", {"state": "ON"}),
        (b"off", {"state": "OFF"}),
        (b'{"POWER":"ON"}', {"state": "ON"}),
        (
            b'{"Time":"2024-03-01T10:00:00","POWER":"ON","Dimmer":50,"Wifi":{"RSSI":80}}',
            {"state": "ON", "brightness": 127},
        ),
        (
            b'{"Time":"2024-03-01T10:00:00","ENERGY":{"TotalStartTime":"2023-01-01T00:00:00","Total":12.345,'
            b'"Yesterday":0.3,"Today":0.1,"Power":45,"ApparentPower":50,"Voltage":231,"Current":0.2}}',
            {"power": 45, "energy": 12.345},
        ),
        (
            b'{"Time":"2024-03-01T10:00:00","AM2301":{"Temperature":22.1,"Humidity":45.3},"TempUnit":"C"}',
            {"temperature": 22.1, "humidity": 45.3},
        ),
    ],
)
def test_decode(raw: bytes, expected: dict[str, object]) -> None:
    assert decode_state(raw).model_dump(exclude_none=True) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{", "invalid_json"), (b"[1]", "not_an_object"), (b'{"ENERGY":{"Power":-5}}', "out_of_range")],
)
def test_rejections(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_state(raw)
    assert caught.value.reason == reason


def test_commands_and_topics() -> None:
    assert command("plug-1", {"state": "OFF"}) == [("cmnd/plug-1/POWER", b"OFF")]
    assert command("dim-1", {"state": "ON", "brightness": 127}) == [
        ("cmnd/dim-1/POWER", b"ON"),
        ("cmnd/dim-1/Dimmer", b"50"),
    ]
    assert set(routes("plug-1")) >= {
        "tele/plug-1/SENSOR",
        "stat/plug-1/POWER",
        "tele/plug-1/LWT",
        "cmnd/plug-1/POWER",
    }
