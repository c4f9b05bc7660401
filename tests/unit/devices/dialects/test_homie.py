"""Homie 5 property values, descriptions, availability and commands in the native vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices.dialects.base import DecodeError
from devices.dialects.homie import command, decode_availability, decode_topic, routes


def decoded(suffix: str, payload: bytes, memory: dict[str, Any] | None = None) -> dict[str, Any] | None:
    result = decode_topic({} if memory is None else memory, suffix, payload)
    return None if result is None else result.model_dump(exclude_none=True)


@pytest.mark.parametrize(
    ("suffix", "raw", "expected"),
    [
        ("pir/motion", b"true", {"occupancy": True}),
        ("sensor/occupancy", b"false", {"occupancy": False}),
        ("radar/presence", b"true", {"occupancy": True, "presence": True}),
        ("counter/people", b"3", {"people": 3}),
        ("climate/temperature", b"21.5", {"temperature": 21.5}),
        ("climate/temperature", b"-2", {"temperature": -2.0}),
        ("climate/humidity", b"45.2", {"humidity": 45.2}),
        ("air/co2", b"812", {"co2": 812.0}),
        ("air/carbon-dioxide", b"640", {"co2": 640.0}),
        ("light-sensor/illuminance", b"320", {"illuminance": 320.0}),
        ("light-sensor/light-level", b"1.2e2", {"illuminance": 120.0}),
        # Polarity: `contact` true is contact made (closed); `door` true is open.
        ("entrance/contact", b"true", {"contact": True}),
        ("entrance/door", b"true", {"contact": False}),
        ("entrance/window", b"false", {"contact": True}),
        ("device/battery", b"87", {"battery": 87.0}),
        ("meter/power", b"12.5", {"power": 12.5}),
        ("meter/energy", b"3.25", {"energy": 3.25}),
        ("light/on", b"true", {"state": "ON"}),
        ("light/state", b"off", {"state": "OFF"}),
        ("relay/switch", b"ON", {"state": "ON"}),
        # Homie's own example lamp switches with a boolean `power`.
        ("light/power", b"false", {"state": "OFF"}),
        ("light/brightness", b"50", {"brightness": 127}),
        ("light/brightness", b"100", {"brightness": 254}),
        ("light/dimmer", b"0", {"brightness": 0}),
        ("lock/locked", b"true", {"state": "LOCK"}),
        # Profile style: a `value` property named by its node.
        ("temperature/value", b"19", {"temperature": 19.0}),
        ("climate/temperature", b" 21.5\n", {"temperature": 21.5}),
    ],
)
def test_properties(suffix: str, raw: bytes, expected: dict[str, Any]) -> None:
    assert decoded(suffix, raw) == expected


@pytest.mark.parametrize(
    ("suffix", "raw"),
    [
        ("climate/firmware", b"1.2.3"),  # unknown property
        ("light/color", b"255,200,100"),
        ("misc/value", b"1"),  # a `value` of an unknown node
        ("climate/temperature", b""),  # a cleared retained value
        ("$alert/battery-low", b"Battery is low"),
        ("light/$target", b"true"),
    ],
)
def test_ignored(suffix: str, raw: bytes) -> None:
    assert decoded(suffix, raw) is None


@pytest.mark.parametrize(
    ("suffix", "raw", "reason"),
    [
        ("pir/motion", b"TRUE", "invalid_type"),  # booleans are case sensitive in Homie
        ("pir/motion", b"1", "invalid_type"),
        ("climate/temperature", b"warm", "invalid_type"),
        ("climate/temperature", b"NaN", "invalid_type"),
        ("climate/temperature", b"21,5", "invalid_type"),
        ("climate/temperature", b"1e999", "out_of_range"),
        ("climate/temperature", b"150", "out_of_range"),
        ("climate/humidity", b"120", "out_of_range"),
        ("meter/power", b"-5", "out_of_range"),
        ("counter/people", b"2.5", "invalid_type"),
        ("light/on", b"maybe", "invalid_type"),
        ("light/brightness", b"150", "out_of_range"),
        ("climate/temperature", b"1" * 70_000, "oversized"),
    ],
)
def test_rejections(suffix: str, raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_topic({}, suffix, raw)
    assert caught.value.reason == reason


DESCRIPTION = orjson.dumps(
    {
        "homie": "5.0",
        "version": 7,
        "name": "Meeting room multisensor",
        "nodes": {
            "climate": {
                "name": "Climate",
                "properties": {"temperature": {"datatype": "float", "unit": "°F"}},
            },
            "meter": {
                "properties": {
                    "power": {"datatype": "float", "unit": "kW"},
                    "energy": {"datatype": "float", "unit": "Wh"},
                }
            },
            "light": {"properties": {"brightness": {"datatype": "integer", "format": "0:255"}}},
            "entrance": {"properties": {"contact": {"datatype": "boolean", "format": "closed,open"}}},
            "hall": {"properties": {"door": {"datatype": "boolean", "format": "open,closed"}}},
            "dimmer": {"properties": {"level": {"datatype": "integer", "unit": "%", "format": "0:100"}}},
            "broken": "not an object",
        },
    }
)


@pytest.mark.parametrize(
    ("suffix", "raw", "expected"),
    [
        ("climate/temperature", b"70", {"temperature": 21.11}),
        ("meter/power", b"1.5", {"power": 1500.0}),
        ("meter/energy", b"6532", {"energy": 6.532}),
        ("light/brightness", b"255", {"brightness": 254}),
        ("light/brightness", b"128", {"brightness": 127}),
        # The labels say which value is open, whatever the property is called.
        ("entrance/contact", b"true", {"contact": False}),
        ("hall/door", b"true", {"contact": True}),
        ("dimmer/level", b"50", {"brightness": 127}),
    ],
)
def test_description_gives_units_scales_and_polarity(
    suffix: str, raw: bytes, expected: dict[str, Any]
) -> None:
    memory: dict[str, Any] = {}
    assert decode_topic(memory, "$description", DESCRIPTION) is None
    assert decoded(suffix, raw, memory) == expected


def test_description_is_forgotten_when_cleared_and_rejected_when_malformed() -> None:
    memory: dict[str, Any] = {}
    decode_topic(memory, "$description", DESCRIPTION)
    decode_topic(memory, "$description", b"")
    assert decoded("climate/temperature", b"21", memory) == {"temperature": 21.0}
    for raw, reason in ((b"{", "invalid_json"), (b"[1, 2]", "not_an_object")):
        with pytest.raises(DecodeError) as caught:
            decode_topic(memory, "$description", raw)
        assert caught.value.reason == reason
    # A description without nodes is valid: conventions apply.
    assert decode_topic(memory, "$description", b'{"homie":"5.0","name":"x"}') is None


@pytest.mark.parametrize(
    ("raw", "online"),
    [
        (b"ready", True),
        (b"sleeping", True),
        (b"disconnected", False),
        (b"lost", False),
        (b"", False),
        (b"init", None),
    ],
)
def test_availability(raw: bytes, online: bool | None) -> None:
    assert decode_availability(raw) is online


@pytest.mark.parametrize("raw", [b"alert", b"online", b"READY"])
def test_availability_rejections(raw: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_availability(raw)
    assert caught.value.reason == "invalid_availability"


@pytest.mark.parametrize(
    ("native", "messages"),
    [
        ({"state": "OFF"}, [("homie/5/lamp/light/on/set", b"false")]),
        (
            {"state": "ON", "brightness": 127},
            [("homie/5/lamp/light/on/set", b"true"), ("homie/5/lamp/light/brightness/set", b"50")],
        ),
        ({"brightness": 254}, [("homie/5/lamp/light/brightness/set", b"100")]),
        ({"state": "UNLOCK"}, [("homie/5/lamp/lock/locked/set", b"false")]),
        ({"setpoint": 21}, []),
    ],
)
def test_commands(native: dict[str, Any], messages: list[tuple[str, bytes]]) -> None:
    assert command("homie/5/lamp", native) == messages


def test_routes() -> None:
    assert routes("homie/5/lamp") == {
        "homie/5/lamp/$state": "availability",
        "homie/5/lamp/$description": "state",
        "homie/5/lamp/+/+": "state",
    }


GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "payloads" / "homie5.jsonl"


def test_golden_lines() -> None:
    """The fixture lines, each device's in order, through the pure decoders (the
    integration test sends the same lines through the broker)."""
    memories: dict[str, dict[str, Any]] = {}
    lines = [json.loads(text) for text in GOLDEN.read_text(encoding="utf-8").splitlines() if text.strip()]
    assert len(lines) >= 20
    for line in lines:
        base = "/".join(line["topic"].split("/")[:3])
        suffix = line["topic"][len(base) + 1 :]
        payload, expect = line["payload"].encode(), line["expect"]
        memory = memories.setdefault(base, {})
        where = f"{line['topic']} {line['payload'][:30]!r}"
        if "rejected" in expect:
            with pytest.raises(DecodeError) as caught:
                decode_topic(memory, suffix, payload)
            assert caught.value.reason == expect["rejected"], where
        elif suffix == "$state":
            online = decode_availability(payload)
            wanted = None if "ignored" in expect else expect["availability"] == "online"
            assert online is wanted, where
        elif "ignored" in expect:
            assert decode_topic(memory, suffix, payload) is None, where
        else:
            assert decoded(suffix, payload, memory) == expect, where
