"""Rules acting on real (simulated) devices through the real broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, SimLight, start_gateway, unique_prefix, wait_until


def site(vacancy_timeout: float = 600.0, lux_target: float | None = None) -> dict[str, Any]:
    room: dict[str, Any] = {"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "bookable": True}
    if lux_target is not None:
        room["lux_target"] = lux_target
    return {
        "rooms": [room],
        "devices": [{"id": "orion-light", "room": "orion", "kind": "light", "rated_watts": 20}],
    }


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


def gateway(broker: BrokerProcess, prefix: str, **config: Any) -> RunningGateway:
    config.setdefault("site", site())
    return start_gateway(broker, {"mqtt": {"topic_prefix": prefix}, **config})


@pytest.fixture
def light(mqtt_broker: BrokerProcess, prefix: str) -> Iterator[SimLight]:
    device = SimLight(mqtt_broker, f"{prefix}/hq/2/orion/orion-light")
    try:
        yield device
    finally:
        device.close()


def events(gw: RunningGateway, **params: Any) -> list[dict[str, Any]]:
    return list(gw.get("/v1/events", limit=1000, **params).json()["events"])


def test_lights_go_off_when_the_room_becomes_vacant(
    mqtt_broker: BrokerProcess, prefix: str, light: SimLight, publisher: Publisher
) -> None:
    gw = gateway(mqtt_broker, prefix, site=site(), occupancy={"vacancy_timeout": 0.5})
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        light.switch_at_the_wall("ON")
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is True, 2.0, "light on")
        wait_until(lambda: {"state": "OFF"} in light.commands, 5.0, "vacancy-off command")
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is False, 2.0, "light reported off")
        commands = [e["data"] for e in events(gw, kind="command")]
        assert any(c.get("status") == "confirmed" for c in commands)
        assert gw.room("orion")["occupancy"]["state"] == "vacant"
    finally:
        gw.stop()


def test_daylight_dims_the_lights_towards_the_lux_target(
    mqtt_broker: BrokerProcess, prefix: str, light: SimLight, publisher: Publisher
) -> None:
    gw = gateway(mqtt_broker, prefix, site=site(lux_target=300))
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        light.switch_at_the_wall("ON")
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is True, 2.0, "light on")
        publisher.publish(f"{prefix}/hq/2/orion/orion-env", {"illuminance": 900})
        wait_until(
            lambda: any(c.get("brightness", 254) < 254 for c in light.commands), 5.0, "a dimming command"
        )
        wait_until(lambda: gw.room("orion")["lighting"]["brightness_pct"] < 100, 2.0, "light dimmed")
    finally:
        gw.stop()


def test_a_manual_change_is_not_undone_by_the_rules(
    mqtt_broker: BrokerProcess, prefix: str, light: SimLight, publisher: Publisher
) -> None:
    gw = gateway(mqtt_broker, prefix, site=site(lux_target=300))
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        light.report()  # first sight of the light: off
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is False, 2.0, "light seen")
        # Someone wants full light for a presentation, daylight or not.
        light.switch_at_the_wall("ON")
        wait_until(lambda: events(gw, kind="override"), 2.0, "override recorded")
        publisher.publish(f"{prefix}/hq/2/orion/orion-env", {"illuminance": 900})
        suppressed = wait_until(
            lambda: [e for e in events(gw, kind="command") if e["data"].get("status") == "suppressed"],
            5.0,
            "the dimming rule held back",
        )
        assert "manual" in suppressed[0]["data"]["detail"]
        assert light.commands == []
        assert gw.metric("officegw_manual_overrides") == 1
    finally:
        gw.stop()


def test_a_command_the_device_never_confirms_raises_an_alert(
    mqtt_broker: BrokerProcess, prefix: str, publisher: Publisher
) -> None:
    deaf = SimLight(mqtt_broker, f"{prefix}/hq/2/orion/orion-light", obey=False)
    gw = gateway(
        mqtt_broker,
        prefix,
        occupancy={"vacancy_timeout": 0.3},
        actuation={"confirm_timeout": 0.2, "max_attempts": 2},
    )
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        deaf.switch_at_the_wall("ON")
        alerts = wait_until(lambda: gw.get("/v1/alerts").json()["events"], 5.0, "an alert")
        assert "orion-light did not confirm" in alerts[0]["data"]["message"]
        assert alerts[0]["data"]["severity"] == "warning"
        assert deaf.commands == [{"state": "OFF"}, {"state": "OFF"}]
    finally:
        gw.stop()
        deaf.close()


def test_manual_control_through_the_api(mqtt_broker: BrokerProcess, prefix: str, light: SimLight) -> None:
    gw = gateway(mqtt_broker, prefix)
    try:
        light.report()
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is False, 2.0, "light seen")
        response = gw.http.post("/v1/rooms/orion/lights", json={"on": True, "brightness_pct": 50})
        assert response.status_code == 200, response.text
        assert response.json()["commands"][0]["outcome"] == "sent"
        wait_until(lambda: gw.room("orion")["lighting"]["brightness_pct"] == 50.0, 2.0, "light at 50 %")
        assert light.commands == [{"state": "ON", "brightness": 127}]

        direct = gw.http.post("/v1/devices/orion-light/commands", json={"state": "OFF"})
        assert direct.json()["outcome"] == "sent"
        wait_until(lambda: gw.room("orion")["lighting"]["on"] is False, 2.0, "light off")

        assert gw.http.post("/v1/devices/orion-light/commands", json={}).status_code == 422
        assert gw.http.post("/v1/devices/orion-light/commands", json={"brightness": 999}).status_code == 422
        assert gw.http.post("/v1/devices/nothing/commands", json={"state": "ON"}).status_code == 404
        assert gw.http.post("/v1/rooms/nowhere/lights", json={"on": True}).status_code == 404

        # The audit log: who did what, kept with the events (and in the store).
        audit = gw.get("/v1/events", kind="audit").json()["events"]
        assert [(e["data"]["actor"], e["data"]["action"], e["room_id"]) for e in audit] == [
            ("loopback", "room_lights", "orion"),
            ("loopback", "device_command", "orion"),
        ]
        assert audit[1]["data"]["payload"] == {"state": "OFF"}
        assert audit[1]["data"]["outcome"] == "sent"
    finally:
        gw.stop()


def test_rules_are_listed_and_a_bad_reload_keeps_the_old_ones(
    mqtt_broker: BrokerProcess, prefix: str, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n  - name: lights-off\n    priority: energy\n"
        "    trigger: {occupancy: vacant}\n    actions: [{lights: 'off'}]\n"
    )
    gw = gateway(mqtt_broker, prefix, rules=str(rules_file))
    try:
        listed = gw.get("/v1/rules").json()["rules"]
        assert [rule["name"] for rule in listed] == ["lights-off"]
        rules_file.write_text(
            "rules:\n  - name: broken\n    trigger: {fact: co3_ppm, above: 5}\n    actions: []\n"
        )
        response = gw.http.post("/v1/rules/reload")
        assert response.status_code == 422
        assert any("co3_ppm" in problem for problem in response.json()["detail"])
        assert [rule["name"] for rule in gw.get("/v1/rules").json()["rules"]] == ["lights-off"]
        rules_file.write_text(
            "rules:\n  - name: co2-alert\n    priority: safety\n"
            "    trigger: {fact: co2_ppm, above: 1000}\n"
            "    actions: [{alert: {severity: warning, message: 'CO2 high in {room}'}}]\n"
        )
        assert gw.http.post("/v1/rules/reload").status_code == 200
        assert [rule["name"] for rule in gw.get("/v1/rules").json()["rules"]] == ["co2-alert"]
        audit = gw.get("/v1/events", kind="audit").json()["events"]
        assert [e["data"]["outcome"] for e in audit] == ["refused", "reloaded"]
    finally:
        gw.stop()


def test_timers_catch_up_after_a_restart(
    mqtt_broker: BrokerProcess, prefix: str, light: SimLight, publisher: Publisher, tmp_path: Path
) -> None:
    storage = tmp_path / "state.db"
    config = {"site": site(), "occupancy": {"vacancy_timeout": 1.0}, "gateway": {"id": f"gw-{prefix}"}}
    first = start_gateway(mqtt_broker, {"mqtt": {"topic_prefix": prefix}, **config}, storage=storage)
    publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
    light.switch_at_the_wall("ON")
    wait_until(lambda: first.room("orion")["lighting"]["on"] is True, 2.0, "light on")
    motion_at = time.time()
    first.stop()
    # Down past the vacancy deadline: nobody is there to notice it.
    wait_until(lambda: time.time() > motion_at + 1.5, 3.0, "the deadline to pass")

    second = start_gateway(mqtt_broker, {"mqtt": {"topic_prefix": prefix}, **config}, storage=storage)
    try:
        occupancy = wait_until(
            lambda: (o := second.room("orion")["occupancy"])["state"] == "vacant" and o, 3.0, "vacant"
        )
        assert occupancy["reason"].startswith("no motion for 1 s")
        wait_until(lambda: {"state": "OFF"} in light.commands, 5.0, "lights off after the restart")
    finally:
        second.stop()


def test_occupancy_is_explained(mqtt_broker: BrokerProcess, prefix: str, publisher: Publisher) -> None:
    gw = gateway(mqtt_broker, prefix)
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        wait_until(lambda: gw.room("orion")["occupancy"]["state"] == "occupied", 2.0, "occupied")
        explained = gw.get("/v1/rooms/orion/occupancy/explain").json()
        assert explained["state"] == "occupied"
        assert explained["why"].startswith("Occupied: motion seen")
        assert explained["evidence"]["motion"]["last_seen"].endswith("Z")
        assert explained["timers"]["vacancy_deadline"].endswith("Z")
        assert gw.get("/v1/rooms/nowhere/occupancy/explain").status_code == 404
    finally:
        gw.stop()
