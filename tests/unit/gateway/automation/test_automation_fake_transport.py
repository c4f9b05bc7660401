"""Rules acting through the assembled gateway on a FakeTransport and a manual clock:
a message in, the room change, the command out; time moved by hand, one tick at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.pseudonym import Pseudonymizer
from gateway.automation.event_log import EventLog
from gateway.automation.runner import Automation
from gateway.clock import ManualClock
from gateway.config import settings_from_dict
from gateway.ingest.pipeline import IngestPipeline
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from rules.engine import load_rules
from rules.occupancy import Occupancy
from tests.fakes import FakeTransport, GatewayOnFakes, Published, running_gateway

ROOT = Path(__file__).resolve().parents[4]
# The built-in rules have nothing that switches lights on (people do, or the API);
# a site may add it. This one does, on top of the built-in set.
LIGHTS_ON = """
- name: lights-on-when-occupied
  priority: energy
  trigger: {occupancy: occupied}
  actions: [{lights: on}]
"""
PIR = "office/hq/2/orion/orion-pir"
LIGHT = "office/hq/2/orion/orion-light"
ON, OFF = {"state": "ON"}, {"state": "OFF"}


def site(**sections: Any) -> dict[str, Any]:
    return {
        "mqtt": {"topic_prefix": "office"},
        "site": {
            "rooms": [{"id": "orion", "building": "hq", "floor": 2, "type": "meeting"}],
            "devices": [
                {"id": "orion-pir", "room": "orion"},
                {"id": "orion-light", "room": "orion", "kind": "light", "rated_watts": 20},
            ],
        },
        "occupancy": {"vacancy_timeout": 60},
        **sections,
    }


def with_lights_on(tmp_path: Path) -> str:
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "default.yaml").read_text() + LIGHTS_ON)
    return str(rules)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, site(rules=with_lights_on(tmp_path))) as running:
        yield running


def commands(gw: GatewayOnFakes) -> list[tuple[Any, Any, Any]]:
    return [
        (event.data.get("payload"), event.data.get("status"), event.data.get("rule"))
        for event in gw.events.page(kind="command")
    ]


def test_motion_switches_the_light_on(gw: GatewayOnFakes) -> None:
    gw.transport.deliver(PIR, {"occupancy": True})
    assert gw.room("orion").occupancy.state is Occupancy.OCCUPIED
    assert gw.transport.published == [Published(f"{LIGHT}/set", b'{"state":"ON"}', 1, False)]
    assert commands(gw) == [(ON, "sent", "lights-on-when-occupied")]
    assert gw.automation.commands_sent == 1
    # More motion in an occupied room changes nothing.
    gw.clock.advance(5)
    gw.transport.deliver(PIR, {"occupancy": True})
    assert len(gw.transport.published) == 1


def test_the_light_goes_off_once_the_room_is_vacant(gw: GatewayOnFakes) -> None:
    motion_at = gw.clock.now()
    gw.transport.deliver(PIR, {"occupancy": True})
    gw.transport.deliver(LIGHT, {"state": "ON", "brightness": 254})  # the light obeys
    assert [event.data.get("status") for event in gw.events.page(kind="command")] == [
        "sent",
        "confirmed",
    ]
    gw.advance(59)
    assert gw.room("orion").occupancy.state is Occupancy.OCCUPIED
    assert gw.transport.sent(f"{LIGHT}/set") == [ON]
    gw.advance(2)
    occupancy = gw.room("orion").occupancy
    assert (occupancy.state, occupancy.since) == (Occupancy.VACANT, motion_at + 60)
    assert gw.transport.sent(f"{LIGHT}/set") == [ON, OFF]
    assert commands(gw)[-1] == (OFF, "sent", "lights-off-when-vacant")
    assert [(e.data["old"], e.data["new"]) for e in gw.events.page(kind="occupancy")] == [
        ("unknown", "occupied"),
        ("occupied", "vacant"),
    ]


def test_the_built_in_rules_switch_off_a_light_switched_on_by_hand(tmp_path: Path) -> None:
    with running_gateway(tmp_path, site()) as gw:
        gw.transport.deliver(PIR, {"occupancy": True})
        gw.transport.deliver(LIGHT, {"state": "OFF"})
        gw.transport.deliver(LIGHT, {"state": "ON"})  # at the wall
        assert gw.transport.published == []
        assert [e.data["device"] for e in gw.events.page(kind="override")] == ["orion-light"]
        gw.advance(61)
        assert gw.room("orion").occupancy.state is Occupancy.VACANT
        assert gw.transport.sent(f"{LIGHT}/set") == [OFF]
        # The override ended with the occupancy: released, then the rule's command.
        assert [e.data.get("status") for e in gw.events.page(kind="override")] == [None, "released"]


def test_an_unconfirmed_command_is_retried_then_alerted(tmp_path: Path) -> None:
    config = site(rules=with_lights_on(tmp_path), actuation={"confirm_timeout": 3, "max_attempts": 2})
    with running_gateway(tmp_path, config) as gw:
        gw.transport.deliver(PIR, {"occupancy": True})
        gw.advance(2.9)
        assert gw.transport.sent(f"{LIGHT}/set") == [ON]
        gw.advance(0.1)
        assert gw.transport.sent(f"{LIGHT}/set") == [ON, ON]
        # The next wait is twice as long; then no third attempt but an alert.
        gw.advance(5.9)
        assert gw.events.page(kind="alert") == []
        gw.advance(0.1)
        [alert] = gw.events.page(kind="alert")
        assert alert.room_id == "orion"
        assert alert.data["message"] == "device orion-light did not confirm {'state': 'ON'} after 2 attempts"
        assert gw.transport.sent(f"{LIGHT}/set") == [ON, ON]
        assert gw.automation.alerts_raised == 1


def test_a_reading_crossing_a_threshold_raises_an_alert_on_the_next_tick(gw: GatewayOnFakes) -> None:
    gw.transport.deliver("office/hq/2/orion/orion-env", {"co2": 1250})
    assert gw.room("orion").environment.co2_ppm == 1250
    # Reading changes are coalesced per room and fact until the ticker evaluates them.
    assert gw.events.page(kind="alert") == []
    gw.advance(0.1)
    [alert] = gw.events.page(kind="alert")
    assert (alert.data["rule"], alert.data["severity"]) == ("co2-ventilation-alert", "warning")
    assert alert.data["message"] == "CO2 in orion is 1250 ppm (above 1000 ppm): ventilate the room"
    assert gw.transport.published == []


def test_commands_to_a_zigbee2mqtt_light_go_to_its_set_topic(tmp_path: Path) -> None:
    config = site(rules=with_lights_on(tmp_path))
    config["site"]["devices"] = [
        {"id": "z-motion", "room": "orion", "dialect": "zigbee2mqtt", "topic": "zigbee2mqtt/Orion Motion"},
        {"id": "z-bulb", "room": "orion", "dialect": "zigbee2mqtt", "topic": "zigbee2mqtt/Orion Bulb"},
    ]
    with running_gateway(tmp_path, config) as gw:
        # Not a light until it says so (or the config does): its first report.
        gw.transport.deliver("zigbee2mqtt/Orion Bulb", {"state": "OFF", "brightness": 0, "linkquality": 90})
        gw.transport.deliver("zigbee2mqtt/Orion Motion", {"occupancy": True, "battery": 80})
        assert gw.room("orion").occupancy.state is Occupancy.OCCUPIED
        assert gw.transport.published == [
            Published("zigbee2mqtt/Orion Bulb/set", b'{"state":"ON"}', 1, False)
        ]
        # Its echo on /set is ignored; its report confirms.
        gw.transport.deliver("zigbee2mqtt/Orion Bulb/set", ON)
        gw.transport.deliver("zigbee2mqtt/Orion Bulb", {"state": "ON", "brightness": 254})
        assert gw.room("orion").lighting.on is True
        assert commands(gw) == [
            (ON, "sent", "lights-on-when-occupied"),
            (ON, "confirmed", "lights-on-when-occupied"),
        ]
        # What the service report measures: how long after the first attempt, by device kind.
        confirmed = gw.events.page(kind="command")[-1].data
        assert (confirmed["device_kind"], confirmed["attempts"], confirmed["confirm_ms"]) == ("light", 1, 0.0)
        assert gw.gateway.stats.ignored == 1


def test_pipeline_and_automation_alone() -> None:
    """No store, no threads: the pipeline and the automation wired by hand on the gw."""
    settings = settings_from_dict(site())
    live, clock, transport = LiveState(settings), ManualClock(), FakeTransport()
    events = EventLog()
    rules = load_rules(LIGHTS_ON + "- {name: off, trigger: {occupancy: vacant}, actions: [{lights: off}]}")
    automation = Automation(
        settings, live, events, rules, publish=lambda topic, payload: transport.publish(topic, payload)
    )
    pipeline = IngestPipeline(
        topic_prefix="office",
        live=live,
        stats=IngestStats(),
        clock=clock,
        pseudonymizer=Pseudonymizer(b"k" * 32),
        automation=automation,
    )
    transport.start(pipeline.handle)
    transport.deliver(PIR, {"occupancy": True})
    assert transport.sent(f"{LIGHT}/set") == [ON]
    clock.advance(61)
    with live.lock:
        before = live.states()
        live.expire(clock.now())
        automation.tick(before, clock.now())
    assert live.state_of("orion").occupancy.state is Occupancy.VACANT
    assert transport.sent(f"{LIGHT}/set") == [ON, OFF]
