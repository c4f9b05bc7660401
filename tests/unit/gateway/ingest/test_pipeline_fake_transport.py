"""The ingest pipeline in the assembled gateway, on a FakeTransport: a message in, the
room change out, no broker. (Rules acting on it: automation/test_automation_fake_transport.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.fields import RejectReason
from devices.pseudonym import Pseudonymizer
from gateway.clock import ManualClock
from gateway.config import settings_from_dict
from gateway.ingest.pipeline import IngestPipeline
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from gateway.mqtt.transport import Transport
from rules.occupancy import Occupancy
from tests.fakes import FakeTransport, GatewayOnFakes, running_gateway

SITE: dict[str, Any] = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
            {"id": "lab", "building": "hq", "floor": 1, "type": "office"},
        ],
        "devices": [
            {"id": "orion-pir", "room": "orion"},
            {"id": "orion-light", "room": "orion", "kind": "light"},
            {"id": "lab-motion", "room": "lab", "dialect": "zigbee2mqtt", "topic": "zigbee2mqtt/Lab Motion"},
        ],
    },
}
PIR = "office/hq/2/orion/orion-pir"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as running:
        yield running


def test_the_fake_is_a_transport() -> None:
    transport: Transport = FakeTransport()  # a mypy error if the fake drifts from the protocol
    assert transport.connected is False


def test_motion_makes_the_room_occupied(gw: GatewayOnFakes) -> None:
    assert gw.room("orion").occupancy.state is Occupancy.UNKNOWN
    gw.transport.deliver(PIR, {"occupancy": True})
    occupancy = gw.room("orion").occupancy
    assert (occupancy.state, occupancy.since, occupancy.last_motion) == (
        Occupancy.OCCUPIED,
        gw.clock.now(),
        gw.clock.now(),
    )
    assert occupancy.reason == "motion detected"
    stats = gw.gateway.stats
    assert (stats.received, stats.accepted, stats.rejected_total) == (1, 1, 0)
    assert gw.room("lab").occupancy.state is Occupancy.UNKNOWN


def test_readings_reach_the_room_and_new_devices_are_registered(gw: GatewayOnFakes) -> None:
    gw.transport.deliver("office/annex/1/pantry/pantry-env", {"temperature": 23.5, "co2": 640})
    pantry = gw.live.room("pantry")
    assert pantry is not None and pantry.configured is False
    assert (pantry.config.building, pantry.config.floor, pantry.config.type) == ("annex", "1", "unknown")
    assert (pantry.state.environment.temperature_c, pantry.state.environment.co2_ppm) == (23.5, 640)
    assert gw.live.devices.room_of("pantry.pantry-env") == "pantry"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"occupancy": tru', RejectReason.INVALID_JSON),
        (b"[true]", RejectReason.NOT_AN_OBJECT),
        (b'{"occupancy": "maybe"}', RejectReason.INVALID_TYPE),
        (b'{"humidity": 140}', RejectReason.OUT_OF_RANGE),
    ],
)
def test_a_bad_payload_is_rejected_counted_and_dead_lettered(
    gw: GatewayOnFakes, payload: bytes, reason: str
) -> None:
    ack = gw.transport.deliver(PIR, payload)
    stats = gw.gateway.stats
    assert stats.rejected[reason] == 1 and stats.rejected_total == 1
    assert (stats.received, stats.accepted) == (1, 0)
    [letter] = gw.pipeline.dead_letters.page()
    assert (letter.topic, letter.reason, letter.size, letter.at) == (
        PIR,
        reason,
        len(payload),
        gw.clock.now(),
    )
    assert letter.payload == payload.decode()
    assert gw.room("orion").occupancy.state is Occupancy.UNKNOWN
    assert gw.transport.published == []
    # Acknowledged all the same (in order): the broker must not redeliver junk.
    gw.flush()
    assert ack is not None and ack.calls == 1


def test_a_topic_outside_the_scheme_is_rejected(gw: GatewayOnFakes) -> None:
    gw.transport.deliver("office/hq/2", {"occupancy": True})
    assert gw.gateway.stats.rejected[RejectReason.UNKNOWN_TOPIC] == 1
    assert gw.pipeline.dead_letters.page()[0].topic == "office/hq/2"


def test_a_qos1_message_is_acknowledged_once_committed(gw: GatewayOnFakes) -> None:
    # Readings of the device in the store when each acknowledgement goes out (writer thread).
    stored_at_ack: list[int] = []
    gw.transport.on_ack = lambda message: stored_at_ack.append(gw.store.count_readings("orion-pir"))
    # A second apart: readings are keyed by device time (received time here), and the
    # store takes a repeat of a key for a redelivery.
    first = gw.transport.deliver(PIR, {"occupancy": True, "illuminance": 300})
    gw.clock.advance(1)
    second = gw.transport.deliver(PIR, {"occupancy": True, "illuminance": 320})
    gw.clock.advance(1)
    assert gw.transport.deliver(PIR, {"occupancy": True, "illuminance": 340}, qos=0) is None
    gw.flush()
    assert first is not None and second is not None
    assert (first.calls, second.calls) == (1, 1)
    assert [message.payload for message in gw.transport.acked] == [
        b'{"occupancy":true,"illuminance":300}',
        b'{"occupancy":true,"illuminance":320}',
    ]
    # Two readings (occupancy, illuminance) a message, committed before its ack.
    assert len(stored_at_ack) == 2
    assert stored_at_ack[0] >= 2 and stored_at_ack[1] >= 4
    assert gw.store.count_readings("orion-pir") == 6


def test_a_mapped_zigbee2mqtt_device_acts_on_its_room(gw: GatewayOnFakes) -> None:
    gw.transport.deliver(
        "zigbee2mqtt/Lab Motion", {"presence": True, "illuminance_lux": 120, "battery": 91, "linkquality": 80}
    )
    lab = gw.room("lab")
    assert lab.occupancy.state is Occupancy.OCCUPIED
    assert lab.environment.illuminance_lux == 120
    view = gw.live.device_view("lab-motion", gw.clock.now())
    assert view is not None
    assert (view.room_id, view.dialect, view.battery, view.online) == ("lab", "zigbee2mqtt", 91, True)
    gw.transport.deliver("zigbee2mqtt/Lab Motion/availability", {"state": "offline"})
    view = gw.live.device_view("lab-motion", gw.clock.now())
    assert view is not None and view.online is False
    assert (gw.gateway.stats.accepted, gw.gateway.stats.rejected_total) == (2, 0)
    assert gw.room("orion").occupancy.state is Occupancy.UNKNOWN


@pytest.mark.parametrize("topic", ["office/hq/2/orion/orion-light/set", "zigbee2mqtt/Lab Motion/set"])
def test_our_own_command_echoed_back_is_ignored(gw: GatewayOnFakes, topic: str) -> None:
    before = gw.live.states()
    ack = gw.transport.deliver(topic, {"state": "ON"})
    stats = gw.gateway.stats
    assert (stats.received, stats.ignored, stats.accepted, stats.rejected_total) == (1, 1, 0, 0)
    assert gw.live.states() == before
    assert gw.transport.published == []
    gw.flush()
    assert ack is not None and ack.calls == 1


def test_flood_protection_rests_after_a_reconnect(tmp_path: Path) -> None:
    config = {**SITE, "quality": {"max_rate": 1, "burst": 1, "reconnect_grace": 30}}
    with running_gateway(tmp_path, config) as gw:
        assert gw.gateway.ready is True
        gw.clock.advance(31)  # past the grace of the first connection
        for lux in (100, 200, 300):
            gw.transport.deliver(PIR, {"illuminance": lux})
        assert gw.gateway.stats.throttled == 2
        assert gw.room("orion").environment.illuminance_lux == 100
        # The newest held-back message is applied once the device is quiet (ticker).
        gw.advance(1)
        assert gw.room("orion").environment.illuminance_lux == 300

        gw.transport.disconnect()
        assert gw.gateway.ready is False
        gw.clock.advance(60)
        gw.transport.connect()  # what the broker queued now comes as one burst
        for lux in (400, 500, 600):
            gw.transport.deliver(PIR, {"illuminance": lux})
        assert gw.gateway.stats.throttled == 2
        assert gw.room("orion").environment.illuminance_lux == 600


def test_without_a_recorder_the_pipeline_acknowledges_at_once() -> None:
    """The pipeline alone (no store, no threads): acks run before `deliver` returns."""
    settings = settings_from_dict(SITE)
    live = LiveState(settings)
    transport = FakeTransport()
    pipeline = IngestPipeline(
        topic_prefix="office",
        live=live,
        stats=IngestStats(),
        clock=ManualClock(),
        pseudonymizer=Pseudonymizer(b"k" * 32),
    )
    transport.start(pipeline.handle)
    good = transport.deliver(PIR, {"occupancy": True})
    bad = transport.deliver(PIR, b"{")
    assert good is not None and bad is not None and (good.calls, bad.calls) == (1, 1)
    assert [message.payload for message in transport.acked] == [b'{"occupancy":true}', b"{"]
    assert live.state_of("orion").occupancy.state is Occupancy.OCCUPIED


def test_kwh_today_counts_the_sites_day(tmp_path: Path) -> None:
    berlin = {**SITE, "site": {**SITE["site"], "timezone": "Europe/Berlin"}}
    with running_gateway(tmp_path, berlin) as gw:
        # The manual clock starts at 23:13:20 in Berlin (22:13:20 UTC).
        gw.transport.deliver("office/hq/2/orion/orion-light", {"state": "ON", "power": 100})
        gw.advance(3_600)
        # 00:13:20 in Berlin, still the same UTC day: today is 800 s old.
        room = gw.live.room("orion")
        assert room is not None
        now = gw.clock.now()
        assert room.state.kwh_today(now, room.zone) == pytest.approx(100 * 800 / 3_600_000)
        assert gw.live.energy(now) == [("orion", pytest.approx(100 * 800 / 3_600_000), 0.0)]
