"""The simulator's MQTT edge: CLI parsing, and short runs against the private mosquitto."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from simulators import publisher
from simulators.broker import BrokerProcess
from simulators.floor import VirtualFloor

Inbox = queue.SimpleQueue[tuple[str, bytes, bool]]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        publisher.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    flags = ("--host", "--port", "--rooms", "--seed", "--time-scale", "--prefix", "--duration", "--dialects")
    for flag in flags:
        assert flag in out


def test_print_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert publisher.main(["--print-site", "--rooms", "5", "--floor", "4"]) == 0
    site = orjson.loads(capsys.readouterr().out)
    assert len(site["rooms"]) == 5 and {r["floor"] for r in site["rooms"]} == {"4"}
    assert {d["room"] for d in site["devices"]} == {r["id"] for r in site["rooms"]}


def test_print_site_maps_a_mixed_floor(capsys: pytest.CaptureFixture[str]) -> None:
    assert publisher.main(["--print-site", "--dialects", "mixed", "--rooms", "6"]) == 0
    site = orjson.loads(capsys.readouterr().out)
    dialects = {d.get("dialect", "native") for d in site["devices"]}
    assert dialects == {"native", "zigbee2mqtt", "tasmota", "shelly"}
    assert all(d["topic"] for d in site["devices"] if "dialect" in d)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        publisher.main(["--time-scale", "0"])
    assert exit_.value.code == 2


def test_unreachable_broker_is_reported() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert publisher.main(["--port", str(port), "--duration", "1"]) == 1


@pytest.fixture
def broker(mqtt_broker: BrokerProcess) -> tuple[str, int]:
    return mqtt_broker.host, mqtt_broker.port


@contextlib.contextmanager
def subscriber(host: str, port: int, topic_filter: str) -> Iterator[tuple[Client, Inbox]]:
    """A paho client collecting (topic, payload, retain) of `topic_filter` into a queue."""
    inbox: Inbox = queue.SimpleQueue()
    subscribed = threading.Event()
    client = Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: inbox.put((m.topic, bytes(m.payload), m.retain))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, port)
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        yield client, inbox
    finally:
        client.loop_stop()
        client.disconnect()


def receive(inbox: Inbox, until: float) -> Iterator[tuple[str, bytes, bool]]:
    while time.monotonic() < until:
        with contextlib.suppress(queue.Empty):
            yield inbox.get(timeout=0.1)


@pytest.mark.parametrize("mqtt5", [True, False])
def test_run_floor_publishes_and_obeys_commands(broker: tuple[str, int], mqtt5: bool) -> None:
    host, port = broker
    prefix = f"office-{uuid.uuid4().hex[:8]}"
    floor = VirtualFloor(rooms=6, seed=4, time_scale=600, prefix=prefix)
    devices = {d["id"] for d in floor.site_devices()}
    light = floor.topic("orion", "orion-light")
    stop, progress = threading.Event(), list[int]()

    def run() -> None:
        sent = publisher.run_floor(
            floor,
            host,
            port,
            mqtt5=mqtt5,
            stop=stop,
            duration=10,
            on_progress=progress.append,
            progress_every=0.5,
        )
        progress.append(sent)

    seen: dict[str, bytes] = {}
    with subscriber(host, port, f"{prefix}/#") as (watcher, inbox):
        runner = threading.Thread(target=run)
        runner.start()
        for topic, payload, _ in receive(inbox, time.monotonic() + 8):
            if topic == light and light not in seen:  # the floor is up: dim the light
                watcher.publish(light + "/set", b'{"brightness":77}', qos=1)
            seen[topic] = payload
            if topic == light and b'"brightness":77' in payload:
                break
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert b'"brightness":77' in seen[light]
    assert {t.split("/")[4] for t in seen} == devices
    assert len(progress) >= 2 and progress[-1] == progress[-2] > len(devices)
    # A clean stop leaves every device "offline", retained for whoever subscribes later.
    with subscriber(host, port, f"{prefix}/+/+/+/+/availability") as (_, inbox):
        states: dict[str, tuple[bytes, bool]] = {}
        for topic, payload, retain in receive(inbox, time.monotonic() + 5):
            states[topic] = (payload, retain)
            if len(states) == len(devices):
                break
    assert len(states) == len(devices)
    assert set(states.values()) == {(b"offline", True)}


def test_a_mixed_floor_obeys_commands_in_its_devices_dialects(broker: tuple[str, int]) -> None:
    host, port = broker
    building = f"hq{uuid.uuid4().hex[:6]}"  # Tasmota topics carry it: nothing retained leaks in
    floor = VirtualFloor(building=building, rooms=6, seed=4, time_scale=600, dialects="mixed")
    t = next(d["topic"] for d in floor.site_devices() if d.get("dialect") == "tasmota")
    stop = threading.Event()
    runner = threading.Thread(
        target=publisher.run_floor, args=(floor, host, port), kwargs={"stop": stop}, daemon=True
    )
    dimmed = False
    try:
        with subscriber(host, port, f"+/{t}/#") as (watcher, inbox):
            runner.start()
            for topic, payload, _ in receive(inbox, time.monotonic() + 8):
                if (topic, payload) == (f"tele/{t}/LWT", b"Online"):
                    watcher.publish(f"cmnd/{t}/Dimmer", b"33", qos=1)
                if topic == f"stat/{t}/RESULT" and orjson.loads(payload).get("Dimmer") == 33:
                    dimmed = True
                    break
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert dimmed, "the Tasmota light did not obey cmnd/<t>/Dimmer"


def test_a_mixed_floor_shelly_dimmer_obeys_light_set(broker: tuple[str, int]) -> None:
    host, port = broker
    building = f"hq{uuid.uuid4().hex[:6]}"  # Shelly prefixes carry it: nothing retained leaks in
    floor = VirtualFloor(building=building, rooms=6, seed=4, time_scale=600, dialects="mixed")
    p = next(
        d["topic"]
        for d in floor.site_devices()
        if d.get("dialect") == "shelly" and d["id"].endswith("-light")
    )
    stop = threading.Event()
    runner = threading.Thread(
        target=publisher.run_floor, args=(floor, host, port), kwargs={"stop": stop}, daemon=True
    )
    dimmed = False
    set_33 = {
        "id": 1,
        "src": "test",
        "method": "Light.Set",
        "params": {"id": 0, "on": True, "brightness": 33},
    }
    try:
        with subscriber(host, port, f"{p}/#") as (watcher, inbox):
            runner.start()
            for topic, payload, _ in receive(inbox, time.monotonic() + 8):
                if (topic, payload) == (f"{p}/online", b"true"):
                    watcher.publish(f"{p}/rpc", orjson.dumps(set_33), qos=1)
                if topic == f"{p}/status/light:0" and orjson.loads(payload)["brightness"] == 33:
                    dimmed = orjson.loads(payload)["output"] is True
                    break
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    assert dimmed, "the Shelly dimmer did not obey Light.Set on <prefix>/rpc"
