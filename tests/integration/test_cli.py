"""The `officegw` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulators.broker import BrokerProcess, free_port
from tests.support import Publisher, unique_prefix, wait_until

OFFICEGW = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[2]


def officegw(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OFFICEGW, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize("command", [[], ["run"], ["demo"], ["check-config"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = officegw(*command, "--help")
    assert result.returncode == 0
    assert "usage: officegw" in result.stdout
    if command == ["demo"]:
        assert "--dialects {native,mixed}" in result.stdout


def test_check_config_reports_every_problem_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site:\n  rooms:\n    - {id: a, building: hq, floor: 1, capacity: -2}\n    - {id: b}\n")
    result = officegw("check-config", str(bad))
    assert result.returncode == 2
    assert "site.rooms[0].capacity: must be >= 0" in result.stderr
    assert "site.rooms[1].building: is required" in result.stderr
    assert "Traceback" not in result.stderr

    good = tmp_path / "good.yaml"
    good.write_text("site:\n  rooms:\n    - {id: a, building: hq, floor: 1}\n")
    result = officegw("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert "ok (1 rooms, 0 devices" in result.stdout


def test_check_config_reports_schema_errors_and_unknown_rooms_in_one_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "site:\n"
        "  rooms:\n    - {id: a, building: hq, floor: 1, capacity: -2}\n"
        "  devices:\n    - {id: pir, room: nowhere}\n    - {id: co2, room: a}\n"
    )
    result = officegw("check-config", str(bad))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"invalid config {bad}:",
        "  site.rooms[0].capacity: must be >= 0",
        "  site.devices[0].room: unknown room 'nowhere'",
    ]


def test_check_config_reports_config_and_rules_problems_in_one_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {name: x, trigger: {fact: co3_ppm, above: 5}, actions: [{lock: lock}]}\n")
    config = tmp_path / "site.yaml"
    config.write_text(f"rules: '{rules}'\nsite:\n  devices: [{{id: pir, room: nowhere}}]\n")
    result = officegw("check-config", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"invalid config {config}:",
        "  site.devices[0].room: unknown room 'nowhere'",
        f"invalid rules {rules}:",
        "  rules[0].trigger.fact: unknown fact 'co3_ppm' (did you mean 'co2_ppm'?)",
    ]


def test_check_config_names_the_environment_variable_of_a_bad_value(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("mqtt: {keepalive: 60}\n")
    result = subprocess.run(
        [*OFFICEGW, "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "OFFICEGW_MQTT__KEEPALIVE": "abc"},
    )
    assert result.returncode == 2
    assert (
        "  mqtt.keepalive: input should be a valid integer, unable to parse string as an integer "
        "(from environment variable OFFICEGW_MQTT__KEEPALIVE)"
    ) in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_version() -> None:
    from importlib.metadata import version

    result = officegw("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"officegw {version('officegw')}\n"


def test_run_serves_until_sigterm(tmp_path: Path, mqtt_broker: BrokerProcess) -> None:
    """Under systemd's eyes too: READY=1 once started, watchdog pets, STOPPING=1."""
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(10)
    port = free_port()
    prefix = unique_prefix()
    config = tmp_path / "site.yaml"
    config.write_text(
        f"gateway: {{id: cli-{prefix}}}\n"
        f"mqtt: {{url: '{mqtt_broker.url}', topic_prefix: {prefix}}}\n"
        f"api: {{host: 127.0.0.1, port: {port}}}\n"
        f"storage: {{path: '{tmp_path / 'officegw.db'}'}}\n"
        "site:\n  rooms:\n    - {id: orion, building: hq, floor: 2, type: meeting, bookable: true}\n"
    )
    proc = subprocess.Popen(
        [*OFFICEGW, "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"},
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2)
    try:

        def ready() -> bool:
            try:
                return http.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 20.0, "officegw run ready")
        notes = [systemd.recv(64).decode() for _ in range(3)]
        assert notes.count("READY=1") == 1 and "WATCHDOG=1" in notes
        publisher = Publisher(mqtt_broker)
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        publisher.close()
        wait_until(
            lambda: http.get("/v1/rooms/orion").json()["occupancy"]["state"] == "occupied", 2.0, "occupied"
        )
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        output, _ = proc.communicate(timeout=10)
        assert time.monotonic() - started < 5
        assert proc.returncode == 0
        assert "gateway stopped" in output
        assert "Traceback" not in output
        systemd.settimeout(0)
        notes = []
        with contextlib.suppress(BlockingIOError):
            while True:
                notes.append(systemd.recv(64).decode())
        assert notes[-1] == "STOPPING=1" and set(notes) <= {"WATCHDOG=1", "STOPPING=1"}
    finally:
        systemd.close()
        http.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_with_a_bad_environment_override_names_the_field(tmp_path: Path) -> None:
    result = subprocess.run(
        [*OFFICEGW, "run"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**os.environ, "OFFICEGW_MQTT__URL": "http://nowhere"},
    )
    assert result.returncode == 2
    assert "mqtt.url: must look like mqtt://host:port" in result.stderr


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_rooms_change_occupancy_within_a_minute(broker: str) -> None:
    api_port = free_port()
    # The preferred broker port is taken, as when a broker already runs on 1883.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    ports = ["--api-port", str(api_port), "--mqtt-port", str(taken_port)]
    proc = subprocess.Popen(
        [*OFFICEGW, "demo", "--broker", broker, "--duration", "90", *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=2)
    try:
        first_seen: dict[str, str] = {}

        def some_room_changed() -> bool:
            try:
                rooms = http.get("/v1/rooms").json()["rooms"]
            except httpx.TransportError:
                return False
            assert len(rooms) >= 12
            for room in rooms:
                state = room["occupancy"]["state"]
                if state == "unknown":
                    continue
                if first_seen.setdefault(room["id"], state) != state:
                    return True
            return False

        wait_until(some_room_changed, 60.0, "a room to change between occupied and vacant")
        assert http.get("/v1/availability").status_code == 200
        # The dashboard's page, and the demo floor laid out on its plan.
        assert http.get("/").status_code == 200
        assert all(room["plan"] is not None for room in http.get("/v1/rooms").json()["rooms"])
        # The built-in rules act on the simulated floor: overrides by people at the
        # wall switches, alerts, commands.
        wait_until(
            lambda: (
                {e["kind"] for e in http.get("/v1/events", params={"limit": 1000}).json()["events"]}
                & {"override", "alert", "command"}
            ),
            60.0,
            "the rules to act on the simulated floor",
        )
    finally:
        http.close()
        taken.close()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert f"port {taken_port} is taken" in output
    assert f"API      http://127.0.0.1:{api_port}/v1/rooms" in output
    assert f"dashboard http://127.0.0.1:{api_port}/ " in output
    assert "Traceback" not in output


def test_demo_with_mixed_dialects_serves_rooms_from_every_dialect() -> None:
    api_port = free_port()
    ports = ["--api-port", str(api_port), "--mqtt-port", str(free_port())]
    proc = subprocess.Popen(
        [*OFFICEGW, "demo", "--dialects", "mixed", "--rooms", "9", "--duration", "60", *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=2)
    try:

        def reporting() -> set[str]:
            """Dialects of which some device has reported a state, once every room has readings."""
            try:
                rooms = http.get("/v1/rooms").json()["rooms"]
                devices = http.get("/v1/devices").json()["devices"]
            except httpx.TransportError:
                return set()
            if len(rooms) < 9 or any(r["environment"]["co2_ppm"] is None for r in rooms):
                return set()
            seen = {d["dialect"] for d in devices if d["online"] and d["last_state"]}
            shelly = [d["last_state"] for d in devices if d["dialect"] == "shelly" and d["online"]]
            # A Shelly dimmer (a level) and an H&T (temperature, humidity) among them.
            if not any("brightness" in s for s in shelly) or not any("humidity" in s for s in shelly):
                return set()
            want = {"native", "zigbee2mqtt", "tasmota", "shelly", "homeassistant"}
            return seen if seen == want else set()

        wait_until(
            reporting,
            20.0,
            "rooms with readings from native, Zigbee2MQTT, Tasmota and Shelly devices and an announced one",
        )
        lights = http.get("/v1/rooms").json()["rooms"]
        assert all(room["lighting"]["on"] is not None for room in lights)
    finally:
        http.close()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "devices  " in output and "tasmota" in output and "shelly" in output
    assert "announced (Home Assistant discovery)" in output
    assert "Traceback" not in output


def test_check_config_validates_the_rules_file_too(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: x\n    trigger: {fact: co3_ppm, above: 5}\n    actions: []\n")
    config = tmp_path / "site.yaml"
    config.write_text(f"rules: '{rules}'\n")
    result = officegw("check-config", str(config))
    assert result.returncode == 2
    assert "rules[0].trigger.fact: unknown fact 'co3_ppm' (did you mean 'co2_ppm'?)" in result.stderr
    assert "rules[0].actions: must not be empty" in result.stderr
    assert "Traceback" not in result.stderr
    result = officegw("check-config", "examples/site.yaml")
    assert result.returncode == 0
    assert "10 rules from default.yaml" in result.stdout


def test_replay_reports_accuracy_as_json() -> None:
    data = ROOT / "tests" / "fixtures" / "datasets" / "occupancy-uci" / "datatest.txt"
    result = officegw("replay", "--format", "uci-occupancy", str(data), timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 2665
    assert report["accuracy"] >= 0.975
    assert {"precision", "recall"} <= set(report)
