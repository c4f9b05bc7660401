"""Home Assistant discovery configs read into entities and devices: what each
component reads and takes, and what is reported instead of guessed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.dialects.base import DecodeError, TopicKind
from devices.discovery.homeassistant import assemble, parse_config
from devices.discovery.model import AnnouncedDevice
from devices.fields import DevicePayload


def device(*configs: tuple[str, dict[str, Any]]) -> AnnouncedDevice:
    entities = [
        entity
        for topic, config in configs
        for entity in parse_config(f"homeassistant/{topic}/config", "homeassistant", orjson.dumps(config))
    ]
    assert len({entity.device_key for entity in entities}) == 1
    return assemble(entities[0].device_key, entities)


def read(found: AnnouncedDevice, topic: str, payload: bytes) -> DevicePayload | None:
    route = next(r for r in found.routes if r.topic == topic and r.kind is TopicKind.STATE)
    assert route.dialect.decode_topic is not None
    return route.dialect.decode_topic({}, "", payload)


def available(found: AnnouncedDevice, topic: str, payload: bytes) -> bool | None:
    route = next(r for r in found.routes if r.topic == topic and r.kind is TopicKind.AVAILABILITY)
    return route.dialect.decode_availability(payload)


DEV = {"ids": ["dev1"]}


SENSORS = [
    ({"dev_cla": "temperature", "unit_of_meas": "°F"}, b"71.6", {"temperature": 22.0}),
    ({"dev_cla": "temperature", "unit_of_meas": "K"}, b"295.15", {"temperature": 22.0}),
    ({"dev_cla": "power", "unit_of_meas": "kW"}, b"1.5", {"power": 1500.0}),
    ({"dev_cla": "energy", "unit_of_meas": "Wh"}, b"2500", {"energy": 2.5}),
    ({"dev_cla": "carbon_dioxide", "unit_of_meas": "ppm"}, b"612", {"co2": 612.0}),
    ({"dev_cla": "illuminance", "unit_of_meas": "lx"}, b"350", {"illuminance": 350.0}),
    ({"dev_cla": "battery", "unit_of_meas": "%"}, b"87", {"battery": 87.0}),
    ({"dev_cla": "humidity"}, b"41.2", {"humidity": 41.2}),
]


@pytest.mark.parametrize(("extra", "payload", "fields"), SENSORS, ids=[str(s[0]) for s in SENSORS])
def test_sensor_classes_and_units_in_the_vocabulary(
    extra: dict[str, Any], payload: bytes, fields: dict[str, Any]
) -> None:
    found = device(("sensor/s", {"stat_t": "dev1/s", "dev": DEV, **extra}))
    decoded = read(found, "dev1/s", payload)
    assert decoded is not None and decoded.model_dump(exclude_none=True) == fields


def test_a_unit_that_does_not_fit_its_class_is_reported_not_converted() -> None:
    found = device(
        ("sensor/today", {"stat_t": "t/SENSOR", "dev_cla": "power", "unit_of_meas": "kWh", "dev": DEV})
    )
    assert found.routes == () and [p.what for p in found.problems] == ["unit_of_measurement"]


def test_binary_sensors_occupancy_and_doors() -> None:
    found = device(
        (
            "binary_sensor/pir",
            {
                "stat_t": "z/pir",
                "dev_cla": "presence",
                "pl_on": True,
                "pl_off": False,
                "val_tpl": "{{ value_json.presence }}",
                "dev": DEV,
            },
        ),
        ("binary_sensor/door", {"stat_t": "z/door", "dev_cla": "door", "dev": DEV}),
    )
    assert read(found, "z/pir", b'{"presence": true}') == DevicePayload(occupancy=True, presence=True)
    assert read(found, "z/door", b"ON") == DevicePayload(contact=False)  # HA on = open
    with pytest.raises(DecodeError, match="neither"):
        read(found, "z/door", b"ajar")
    assert read(found, "z/pir", b'{"other": 1}') is None  # says nothing about this entity


def test_abbreviations_base_topic_and_availability_list() -> None:
    found = device(
        (
            "switch/relay",
            {
                "~": "shellies/s1/",
                "stat_t": "~relay/0",
                "cmd_t": "~relay/0/command",
                "pl_on": "on",
                "pl_off": "off",
                "avty": [
                    {"t": "~online", "pl_avail": "true", "pl_not_avail": "false"},
                    {
                        "t": "~info",
                        "val_tpl": "{%if value_json.mqtt.connected%}online{%else%}offline{%endif%}",
                    },
                ],
                "dev": {"cns": [["mac", "aa:bb"]], "name": "S1", "sa": "Hall"},
            },
        )
    )
    assert found.id == "ha:mac:aa:bb" and found.hints.area == "Hall" and found.kind == "switch"
    assert read(found, "shellies/s1/relay/0", b"on") == DevicePayload(state="ON")
    assert available(found, "shellies/s1/online", b"false") is False
    assert [(p.what, p.template is not None) for p in found.problems] == [
        ("availability[1].value_template", True)
    ]
    assert found.commander is not None
    assert found.commander({"state": "OFF"}) == [("shellies/s1/relay/0/command", b"off")]


LIGHT = {
    "stat_t": "l/state",
    "cmd_t": "l/set",
    "bri_stat_t": "l/bri",
    "bri_cmd_t": "l/bri/set",
    "bri_scl": 100,
    "dev": DEV,
}


@pytest.mark.parametrize(
    ("on_type", "expected"),
    [
        ("last", [("l/bri/set", b"50"), ("l/set", b"ON")]),
        ("first", [("l/set", b"ON"), ("l/bri/set", b"50")]),
        ("brightness", [("l/bri/set", b"50")]),
    ],
)
def test_light_commands_follow_on_command_type(on_type: str, expected: list[tuple[str, bytes]]) -> None:
    found = device(("light/l", {**LIGHT, "on_cmd_type": on_type}))
    assert found.commander is not None
    assert found.commander({"state": "ON", "brightness": 127}) == expected
    assert found.commander({"state": "OFF"}) == [("l/set", b"OFF")]
    assert read(found, "l/bri", b"100") == DevicePayload(brightness=254)


def test_json_light_reads_and_takes_one_object() -> None:
    found = device(
        ("light/j", {"schema": "json", "stat_t": "j", "cmd_t": "j/set", "bri_scl": 254, "dev": DEV})
    )
    assert read(found, "j", b'{"state": "ON", "brightness": 127, "color": {"x": 0.3}}') == DevicePayload(
        state="ON", brightness=127
    )
    assert found.commander is not None
    assert found.commander({"state": "ON", "brightness": 200}) == [
        ("j/set", b'{"state":"ON","brightness":200}')
    ]


def test_command_templates_and_template_lights_are_reported() -> None:
    found = device(("switch/x", {"stat_t": "x", "cmd_t": "x/set", "cmd_tpl": "{{ value }}", "dev": DEV}))
    assert found.commander is None and [p.what for p in found.problems] == ["command_template"]
    found = device(("light/t", {"schema": "template", "stat_t": "t", "dev": DEV}))
    assert [p.what for p in found.problems] == ["schema"]


def test_lock_states_and_commands() -> None:
    found = device(
        (
            "lock/front",
            {
                "stat_t": "lock",
                "cmd_t": "lock/set",
                "stat_locked": "locked",
                "stat_unlocked": "unlocked",
                "pl_lock": "lock",
                "pl_unlk": "unlock",
                "dev": DEV,
            },
        )
    )
    assert found.kind == "lock"
    assert read(found, "lock", b"locked") == DevicePayload(state="LOCK")
    assert read(found, "lock", b"jammed") is None
    assert found.commander is not None and found.commander({"state": "UNLOCK"}) == [("lock/set", b"unlock")]


def test_climate_reads_and_takes_setpoint_and_mode() -> None:
    found = device(
        (
            "climate/hvac",
            {
                "curr_temp_t": "c/temp",
                "temp_stat_t": "c/target",
                "mode_stat_t": "c/mode",
                "temp_cmd_t": "c/target/set",
                "mode_cmd_t": "c/mode/set",
                "dev": DEV,
            },
        )
    )
    assert found.kind == "hvac" and set(found.capabilities) == {"temperature", "setpoint", "mode"}
    assert read(found, "c/mode", b"heat_cool") == DevicePayload(mode="auto")
    assert read(found, "c/mode", b"dry") is None
    assert found.commander is not None
    assert found.commander({"setpoint": 21.5, "mode": "fan"}) == [
        ("c/target/set", b"21.5"),
        ("c/mode/set", b"fan_only"),
    ]


def test_device_based_config_with_shared_options() -> None:
    config = {
        "dev": {"ids": ["multi"]},
        "stat_t": "multi/state",
        "cmps": {
            "t": {"p": "sensor", "dev_cla": "temperature", "val_tpl": "{{ value_json.t }}"},
            "h": {"p": "sensor", "dev_cla": "humidity", "val_tpl": "{{ value_json.h }}"},
            "btn": {"p": "button"},
        },
    }
    entities = parse_config("homeassistant/device/multi/config", "homeassistant", orjson.dumps(config))
    assert len(entities) == 2
    found = assemble("multi", entities)
    assert read(found, "multi/state", b'{"t": 20, "h": 40}') == DevicePayload(temperature=20, humidity=40)


def test_bad_configs_and_topics() -> None:
    with pytest.raises(DecodeError) as raised:
        parse_config("homeassistant/sensor/x/config", "homeassistant", b"{not json")
    assert raised.value.reason == "invalid_json"
    assert parse_config("homeassistant/sensor/x/config", "homeassistant", b"") == []
    assert parse_config("homeassistant/button/x/config", "homeassistant", b'{"cmd_t": "x"}') == []
    found = device(("sensor/w", {"stat_t": "a/+/b", "dev_cla": "temperature", "dev": DEV}))
    assert [p.detail for p in found.problems] == ["holds an MQTT wildcard"]
