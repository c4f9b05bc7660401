"""A mixed floor: the same story as a native one, told partly in Zigbee2MQTT, Tasmota and Shelly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from devices.dialects import dialect_for
from devices.dialects.base import Dialect, TopicKind
from devices.dialects.native import parse_topic
from devices.discovery.catalog import Catalog
from gateway.config import SiteSection
from simulators.dialect_devices import retained
from simulators.floor import Message, VirtualFloor

T0 = 1_700_000_000.0
VOCABULARY = ("occupancy", "people", "contact", "illuminance", "temperature", "humidity", "co2")
VOCABULARY += ("state", "brightness", "power", "energy", "access", "battery")


def floors(**kwargs: Any) -> tuple[VirtualFloor, VirtualFloor]:
    return VirtualFloor(**kwargs), VirtualFloor(dialects="mixed", **kwargs)


Route = tuple[str, TopicKind, Dialect, str]


def decoder(floor: VirtualFloor) -> dict[str, Route]:
    """Topic -> (device, kind, dialect, device topic), from the site config the floor
    emits and the announcements of its devices that map themselves."""
    routes = {}
    for device in floor.site_devices():
        dialect = dialect_for(device.get("dialect", "native"), device.get("channel"))
        topic = device.get("topic") or floor.topic(device["room"], device["id"])
        routes |= {t: (device["id"], kind, dialect, topic) for t, kind in dialect.routes(topic).items()}
    catalog = Catalog()
    for topic, payload in floor.announcements():
        catalog.ha_config(floor.discovery_prefix, topic, payload)
    for announced in catalog:
        # An announced state topic carries the whole value: no suffix below it.
        routes |= {
            route.topic: (announced.name, route.kind, route.dialect, route.topic)
            for route in announced.routes
        }
    return routes


def device_states(floor: VirtualFloor, messages: list[Message]) -> dict[str, dict[str, Any]]:
    """What the gateway's own decoders make of the messages (as the ingest pipeline calls
    them): the last value of each field, per device."""
    routes, states = decoder(floor), dict[str, dict[str, Any]]()
    for topic, payload in messages:
        device, kind, dialect, base = routes[topic]
        assert kind is not TopicKind.COMMAND
        if kind is TopicKind.AVAILABILITY:
            states.setdefault(device, {})["online"] = dialect.decode_availability(payload)
            continue
        if dialect.decode_topic is not None:
            found = dialect.decode_topic({}, topic[len(base) + 1 :], payload)
            decoded = found.model_dump(exclude_none=True) if found is not None else {}
        else:
            decoded = dialect.decode_state(payload).model_dump(exclude_none=True)
        states.setdefault(device, {}).update({k: v for k, v in decoded.items() if k in VOCABULARY})
    return states


def as_on_a_native_floor(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A mixed floor's device states with each H&T's readings given back to the room's
    air sensor, where a native floor has them (both report the same battery level)."""
    out = {device: dict(state) for device, state in states.items() if not device.endswith("-ht")}
    for device, state in states.items():
        if device.endswith("-ht"):
            out[device.removesuffix("-ht") + "-env"].update(state)
    return out


def test_mixed_floor_maps_devices_of_four_dialects() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14)
    devices = floor.site_devices()
    SiteSection.model_validate({"rooms": floor.site_rooms(), "devices": devices})
    dialects = Counter(d.get("dialect", "native") for d in devices)
    assert set(dialects) == {"native", "zigbee2mqtt", "tasmota", "shelly"}
    assert dialects["native"] >= len(devices) // 4
    zigbee = [d["topic"] for d in devices if d.get("dialect") == "zigbee2mqtt"]
    assert all(t.startswith("zigbee2mqtt/hq/2/") and " " in t for t in zigbee)
    kinds = {d["id"].rsplit("-", 1)[1] for d in devices if d.get("dialect") == "tasmota"}
    assert kinds == {"light"}
    # Shelly: a dimmer for the light and an H&T of its own, each on a custom prefix.
    shelly = {d["id"]: d["topic"] for d in devices if d.get("dialect") == "shelly"}
    assert {device.rsplit("-", 1)[1] for device in shelly} == {"light", "ht"}
    assert all(t.startswith("shellies/hq/2/") for t in shelly.values())
    rooms = {d["room"] for d in devices if d["id"] in shelly}
    assert all(f"{room}-env" in {d["id"] for d in devices} for room in rooms)
    # The native floor is unchanged: no mapping at all.
    assert all(set(d) == {"id", "room"} for d in VirtualFloor(rooms=14).site_devices())


def test_same_story_same_device_states() -> None:
    native, mixed = floors(rooms=14, seed=11, time_scale=60)
    sent: dict[str, list[Message]] = {"native": [], "mixed": []}
    for i in range(0, 240):
        now = T0 + i * 0.5
        sent["native"] += native.step(now)
        sent["mixed"] += mixed.step(now)
        assert native.occupied_rooms() == mixed.occupied_rooms()
    topics = {t for t, _ in sent["mixed"]}
    assert any(t.startswith("tele/") and t.endswith("/SENSOR") for t in topics)
    assert any(t.startswith("stat/") and t.endswith("/RESULT") for t in topics)
    assert any(t.startswith("zigbee2mqtt/") and t.endswith("/availability") for t in topics)
    assert any(t.startswith("shellies/") and t.endswith("/status/light:0") for t in topics)
    assert any(t.startswith("shellies/") and t.endswith("-ht/events/rpc") for t in topics)
    want, have = (
        device_states(native, sent["native"]),
        as_on_a_native_floor(device_states(mixed, sent["mixed"])),
    )
    assert set(want) == set(have)
    announced = set(mixed.announced_devices())
    assert announced == {"orion-env"}
    for device, state in want.items():
        got = dict(have[device])
        if device in announced:  # a mains-powered Tasmota: no battery
            state.pop("battery", None)
        if "brightness" in state:  # Tasmota and Shelly dim in whole percent
            assert got.pop("brightness") == pytest.approx(state.pop("brightness"), abs=1), device
        elif device.endswith("-light"):
            got.pop("brightness", None)  # a Shelly says its level while off, a native light only while on
        assert got == state, device
    offline = device_states(mixed, mixed.availability_messages("offline"))
    assert {s["online"] for s in offline.values()} == {False}


def test_availability_is_retained_in_every_dialect() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14)
    assert all(retained(t) for t, _ in floor.availability_messages("online"))
    assert any(t.startswith("tele/") and t.endswith("/LWT") for t, _ in floor.availability_messages("online"))
    assert all(retained(t) for t, _ in floor.announcements())
    assert not any(retained(t) for t, _ in floor.step(T0)[len(floor.availability_messages("online")) :])


def test_a_shelly_h_and_t_reports_at_wake_up() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14, time_scale=60)
    ht = next(d for d in floor.site_devices() if d["id"].endswith("-ht"))
    frames = [
        orjson.loads(payload)
        for i in range(240)
        for topic, payload in floor.step(T0 + i * 0.5)
        if topic == f"{ht['topic']}/events/rpc"
    ]
    full = [f for f in frames if f["method"] == "NotifyFullStatus"]
    assert full and all({"temperature:0", "humidity:0"} <= set(f["params"]) for f in full)
    assert any("devicepower:0" in f["params"] for f in frames)  # its battery level, hourly
    assert all(f["src"].startswith("shellyhtg3-") and not ht["topic"].endswith(f["src"]) for f in frames)
    assert floor.command(f"{ht['topic']}/rpc", b'{"method":"Light.Set"}', T0) == []  # takes no commands


def light_of(floor: VirtualFloor, dialect: str) -> dict[str, Any]:
    return next(d for d in floor.site_devices() if d["id"].endswith("-light") and d.get("dialect") == dialect)


def test_a_zigbee2mqtt_light_obeys_its_set_topic() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14, time_scale=60)
    light = light_of(floor, "zigbee2mqtt")
    assert f"{light['topic']}/set" in floor.command_topics()
    floor.step(T0)
    ((topic, payload),) = floor.command(f"{light['topic']}/set", b'{"brightness":120}', T0 + 1)
    body = orjson.loads(payload)
    assert topic == light["topic"]
    assert body["state"] == "ON" and body["brightness"] == 120 and body["last_seen"] > T0 * 1000
    assert "ts" not in body
    # It no longer listens on the native topic: a real Zigbee bulb never would.
    native = floor.topic(light["room"], light["id"]) + "/set"
    assert floor.command(native, b'{"state":"OFF"}', T0 + 2) == []


def test_a_tasmota_light_obeys_cmnd_power_and_dimmer() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14, time_scale=60)
    t = light_of(floor, "tasmota")["topic"]
    assert {f"cmnd/{t}/POWER", f"cmnd/{t}/Dimmer"} <= set(floor.command_topics())
    floor.step(T0)
    result, sensor = floor.command(f"cmnd/{t}/Dimmer", b"47", T0 + 1)
    assert result == (f"stat/{t}/RESULT", b'{"POWER":"ON","Dimmer":47}')
    assert sensor[0] == f"tele/{t}/SENSOR" and orjson.loads(sensor[1])["ENERGY"]["Power"] > 0
    off, sensor = floor.command(f"cmnd/{t}/POWER", b"OFF", T0 + 2)
    assert off == (f"stat/{t}/POWER", b"OFF") and orjson.loads(sensor[1])["ENERGY"]["Power"] == 0
    ((_, on), _) = floor.command(f"cmnd/{t}/POWER", b"1", T0 + 3)
    assert orjson.loads(on) == {"POWER": "ON", "Dimmer": 47}  # back at its last level
    for bad in ((f"cmnd/{t}/POWER", b"TOGGLE"), (f"cmnd/{t}/Dimmer", b"101"), (f"cmnd/{t}/Dimmer", b"x")):
        assert floor.command(*bad, T0 + 4) == []


def test_a_shelly_dimmer_obeys_light_set() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14, time_scale=60)
    p = light_of(floor, "shelly")["topic"]
    assert f"{p}/rpc" in floor.command_topics()
    (first,) = [payload for topic, payload in floor.step(T0) if topic == f"{p}/status/light:0"]
    # Off, at the level a new dimmer has: a Shelly light always says its level.
    assert orjson.loads(first)["output"] is False and orjson.loads(first)["brightness"] == 100
    frame = {
        "id": 1,
        "src": "officegw",
        "method": "Light.Set",
        "params": {"id": 0, "on": True, "brightness": 40},
    }
    ((topic, payload),) = floor.command(f"{p}/rpc", orjson.dumps(frame), T0 + 1)
    status = orjson.loads(payload)
    assert topic == f"{p}/status/light:0"
    assert (status["output"], status["brightness"]) == (True, 40) and status["apower"] > 0
    frame["params"] = {"id": 0, "on": False}
    ((_, payload),) = floor.command(f"{p}/rpc", orjson.dumps(frame), T0 + 2)
    assert (orjson.loads(payload)["output"], orjson.loads(payload)["brightness"]) == (False, 40)
    # A dimmer has no switch, and no light 1: the device answers those with an error.
    for bad in (
        {"method": "Switch.Set", "params": {"id": 0, "on": True}},
        {"method": "Light.Set", "params": {"id": 1, "on": True}},
        {"method": "Light.Set", "params": {"id": 0, "brightness": 101}},
    ):
        assert floor.command(f"{p}/rpc", orjson.dumps(bad), T0 + 3) == []
    assert floor.command(f"{p}/rpc", b"{", T0 + 3) == []


def test_native_devices_of_a_mixed_floor_stay_native() -> None:
    floor = VirtualFloor(dialects="mixed", rooms=14, time_scale=60)
    native = {d["id"] for d in floor.site_devices() if "dialect" not in d}
    assert {d.rsplit("-", 1)[1] for d in native} >= {"counter", "pir", "light"}
    for topic, _ in floor.step(T0):
        parsed = parse_topic(topic, "office")
        if parsed is not None:
            assert parsed.device in native


def test_unknown_mix_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect mix 'zigbee'"):
        VirtualFloor(dialects="zigbee")
