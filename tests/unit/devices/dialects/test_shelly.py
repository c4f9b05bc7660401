"""Shelly Gen2+ payloads, channel by channel, and the RPC commands sent back.

Payload shapes as the devices publish them (the golden file,
tests/fixtures/payloads/shelly.jsonl, carries the real messages with their sources);
here each rule of the dialect gets one small case.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.dialects import DIALECTS, dialect_for
from devices.dialects.base import DecodeError, TopicKind
from devices.dialects.shelly import (
    DIALECT,
    channel_dialect,
    command,
    decode_availability,
    decode_state,
    decode_topic,
    routes,
)

STATUS = (
    b'{"id":0,"source":"init","output":true,"apower":8.9,"voltage":237.5,"current":0.041,'
    b'"aenergy":{"total":6532.0,"by_minute":[45.9,44.6,44.6],"minute_ts":1654511700},'
    b'"temperature":{"tC":53.3,"tF":127.9}}'
)
NOTIFY = (
    b'{"src":"shellyplus1pm-a8032ab12345","dst":"shellyplus1pm-a8032ab12345/events","method":"NotifyStatus",'
    b'"params":{"ts":1654511725.42,"switch:0":{"id":0,"output":false,"source":"button"}}}'
)


def frame(method: str, **params: Any) -> bytes:
    return orjson.dumps({"src": "shellyx-1", "method": method, "params": {"ts": 1.61, **params}})


def fields(suffix: str, payload: bytes, channel: int = 0) -> dict[str, Any] | None:
    decoded = decode_topic({}, suffix, payload, channel)
    return None if decoded is None else decoded.model_dump(exclude_none=True)


def test_status_and_notifications_without_a_topic() -> None:
    assert decode_state(STATUS).model_dump(exclude_none=True) == {
        "state": "ON",
        "power": 8.9,
        "energy": 6.532,
    }
    assert decode_state(NOTIFY).model_dump(exclude_none=True) == {"state": "OFF"}


def test_routes_of_a_channel() -> None:
    found = routes("shellies/pro2pm", 1)
    assert found["shellies/pro2pm/status/switch:1"] is TopicKind.STATE
    assert found["shellies/pro2pm/status/light:1"] is TopicKind.STATE
    assert found["shellies/pro2pm/status/devicepower:1"] is TopicKind.STATE
    assert "shellies/pro2pm/status/switch:0" not in found
    assert found["shellies/pro2pm/events/rpc"] is TopicKind.STATE
    assert found["shellies/pro2pm/online"] is TopicKind.AVAILABILITY
    assert found["shellies/pro2pm/rpc"] is TopicKind.COMMAND
    # Only the components an entry reads are subscribed: not sys, wifi, mqtt, ...
    assert len([t for t in found if "/status/" in t]) == 8


def test_channel_dialects() -> None:
    assert DIALECTS["shelly"] is DIALECT is channel_dialect(0)
    assert channel_dialect(2) is dialect_for("shelly", 2)
    assert "p/status/light:2" in dialect_for("shelly", 2).routes("p")
    assert dialect_for("shelly") is DIALECT
    with pytest.raises(ValueError, match="no channels"):
        dialect_for("zigbee2mqtt", 1)


def test_a_light_in_percent_becomes_0_254() -> None:
    light = b'{"id":1,"source":"SHC","output":true,"brightness":35.0,"apower":9.4,"aenergy":{"total":41.626}}'
    assert fields("status/light:1", light, 1) == {
        "state": "ON",
        "brightness": 89,
        "power": 9.4,
        "energy": 0.041626,
    }
    assert fields("status/light:1", b'{"id":1,"output":false,"brightness":100}', 1) == {
        "state": "OFF",
        "brightness": 254,
    }


def test_each_entry_takes_its_own_channel() -> None:
    two = frame("NotifyStatus", **{"switch:1": {"id": 1, "output": True}, "switch:3": {"id": 3, "apower": 5}})
    assert fields("events/rpc", two, 1) == {"state": "ON"}
    assert fields("events/rpc", two, 3) == {"power": 5}
    assert fields("events/rpc", two, 0) is None  # nothing for channel 0: ignored
    assert fields("status/switch:0", STATUS, 1) is None


def test_full_status_of_an_h_and_t_at_wake_up() -> None:
    full = frame(
        "NotifyFullStatus",
        **{
            "devicepower:0": {
                "id": 0,
                "battery": {"V": 6.17, "percent": 100},
                "external": {"present": False},
            },
            "humidity:0": {"id": 0, "rh": 54.3},
            "temperature:0": {"id": 0, "tC": 19.9, "tF": 67.8},
            "sys": {"uptime": 1, "unixtime": None},
        },
    )
    assert fields("events/rpc", full) == {"temperature": 19.9, "humidity": 54.3, "battery": 100}


def test_a_battery_level_on_external_power_means_nothing() -> None:
    usb = b'{"id": 0,"battery":{"V":0.43, "percent":0},"external":{"present":true}}'
    assert fields("status/devicepower:0", usb) is None
    assert fields("status/devicepower:0", b'{"id":0,"battery":{"V":2.99,"percent":97}}') == {"battery": 97}


def test_sensors_that_could_not_read_say_nothing() -> None:
    assert fields("status/temperature:0", b'{"id":0,"tC":null,"tF":null,"errors":["read"]}') is None
    assert fields("status/illuminance:0", b'{"id":0,"illumination":"dark"}') is None
    assert fields("status/illuminance:0", b'{"id":0,"lux":5,"illumination":"twilight"}') == {"illuminance": 5}
    assert fields("status/humidity:0", b'{"id":0,"rh":59}') == {"humidity": 59}


def test_a_cover_keeps_its_state_and_position() -> None:
    cover = b'{"id":0,"state":"open","apower":0.0,"aenergy":{"total":3.143},"current_pos":100}'
    assert fields("status/cover:0", cover) == {
        "cover": "open",
        "position": 100,
        "power": 0.0,
        "energy": 0.003143,
    }
    assert fields("status/cover:0", b'{"id":0,"state":"stopped","current_pos":null}') == {"cover": "stopped"}


def test_inputs_and_button_events() -> None:
    assert fields("status/input:0", b'{"id":0,"state":false}') == {"input": False}
    assert fields("status/input:0", b'{"id":0,"state":null}') is None  # a button: no state
    push = frame("NotifyEvent", events=[{"component": "input:0", "id": 0, "event": "single_push", "ts": 1.0}])
    assert fields("events/rpc", push) == {"action": "single"}
    assert fields("events/rpc", push, 1) is None
    held = frame(
        "NotifyEvent",
        events=[
            {"component": "input:1", "id": 1, "event": "btn_down"},
            {"component": "input:1", "id": 1, "event": "long_push"},
        ],
    )
    assert fields("events/rpc", held, 1) == {"action": "hold"}
    config = frame("NotifyEvent", events=[{"component": "sys", "event": "config_changed", "cfg_rev": 20}])
    assert fields("events/rpc", config) is None


def test_frames_with_nothing_to_apply_are_ignored() -> None:
    assert fields("events/rpc", frame("NotifyStatus", mqtt={"connected": True})) is None
    assert (
        fields("events/rpc", b'{"id":1,"src":"shellyx-1","dst":"officegw","result":{"was_on":false}}') is None
    )
    assert fields("events/rpc", frame("NotifySomethingNew", **{"switch:0": {"output": True}})) is None


@pytest.mark.parametrize(
    ("suffix", "raw", "reason"),
    [
        ("status/switch:0", b"{", "invalid_json"),
        ("events/rpc", b"[1]", "not_an_object"),
        ("status/switch:0", b'{"output":"yes"}', "out_of_range"),
        ("status/switch:0", b'{"apower":-1}', "out_of_range"),
        ("status/light:0", b'{"brightness":"50"}', "invalid_type"),
        ("status/light:0", b'{"brightness":150}', "out_of_range"),
        ("status/temperature:0", b'{"tC":"hot"}', "invalid_type"),
        ("status/cover:0", b'{"state":3}', "invalid_type"),
        ("status/cover:0", b'{"current_pos":"half"}', "invalid_type"),
        ("status/cover:0", b'{"current_pos":101}', "out_of_range"),
        ("status/input:0", b'{"state":"on"}', "invalid_type"),
        ("events/rpc", b'{"method":"NotifyStatus","params":[]}', "invalid_type"),
        ("events/rpc", b'{"method":"NotifyStatus","params":{"switch:0":7}}', "invalid_type"),
        ("status/switch:0", b" " * 70_000, "oversized"),
    ],
)
def test_rejections(suffix: str, raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_topic({}, suffix, raw)
    assert caught.value.reason == reason


def test_availability() -> None:
    assert decode_availability(b"true") is True
    assert decode_availability(b"false") is False
    with pytest.raises(DecodeError):
        decode_availability(b"maybe")


def rpc(messages: list[tuple[str, bytes]]) -> tuple[str, dict[str, Any]]:
    ((topic, body),) = messages
    frame = orjson.loads(body)
    assert frame["id"] == 1 and frame["src"] == "officegw"
    return topic, {"method": frame["method"], **frame["params"]}


def test_switch_commands_go_to_the_channel() -> None:
    assert rpc(command("shelly-1", {"state": "OFF"})) == (
        "shelly-1/rpc",
        {"method": "Switch.Set", "id": 0, "on": False},
    )
    assert rpc(channel_dialect(3).command("pro4pm", {"state": "ON"}, frozenset({"state"}))) == (
        "pro4pm/rpc",
        {"method": "Switch.Set", "id": 3, "on": True},
    )


def test_light_commands_convert_0_254_to_percent() -> None:
    dim = channel_dialect(1).command
    assert rpc(dim("dm", {"state": "ON", "brightness": 127}, ()))[1] == {
        "method": "Light.Set",
        "id": 1,
        "on": True,
        "brightness": 50,
    }
    # A level alone switches on; the dimmest native level is 1 %, never 0.
    assert rpc(dim("dm", {"brightness": 1}, ()))[1] == {
        "method": "Light.Set",
        "id": 1,
        "on": True,
        "brightness": 1,
    }
    assert rpc(dim("dm", {"brightness": 0}, ()))[1] == {"method": "Light.Set", "id": 1, "on": False}
    assert rpc(dim("dm", {"brightness": 254}, ()))[1]["brightness"] == 100
    # On and off alone: Light.Set once the device has reported a brightness.
    assert rpc(dim("dm", {"state": "OFF"}, frozenset({"state", "brightness"})))[1] == {
        "method": "Light.Set",
        "id": 1,
        "on": False,
    }
    assert rpc(dim("dm", {"state": "OFF"}, frozenset({"state"})))[1]["method"] == "Switch.Set"


def test_nothing_to_say_sends_nothing() -> None:
    assert command("p", {"setpoint": 21.0}) == []
    assert command("p", {"state": "LOCK"}) == []
