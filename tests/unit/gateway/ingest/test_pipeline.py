"""The ingest pipeline's identity checks, registry limits, forgetting and failure
handling, on a manual clock without a broker (the broker versions are in
tests/integration/test_trust_identity.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from devices.pseudonym import Pseudonymizer
from gateway.clock import DeviceClock, ManualClock
from gateway.config import settings_from_dict
from gateway.ingest.pipeline import IngestPipeline, _mark
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from gateway.mqtt.transport import InboundMessage
from rules.room_model import RoomState

T0 = 1_700_000_000.0
ROOMS = [
    {"id": "orion", "building": "hq", "floor": 2},
    {"id": "lyra", "building": "hq", "floor": 2},
    {"id": "a", "building": "hq", "floor": 2},
    {"id": "a.b", "building": "hq", "floor": 2},
]
DEVICES = [{"id": "orion-env", "room": "orion"}]


class Rig:
    def __init__(self, config: Mapping[str, Any] | None = None, automation: Any = None) -> None:
        settings = settings_from_dict({"site": {"rooms": ROOMS, "devices": DEVICES}, **(config or {})})
        self.clock = ManualClock(T0)
        self.live = LiveState(settings)
        self.stats = IngestStats()
        self.recorded: list[RoomState] = []
        self.pipeline = IngestPipeline(
            topic_prefix="office",
            live=self.live,
            stats=self.stats,
            clock=self.clock,
            pseudonymizer=Pseudonymizer(b"k" * 32),
            automation=automation,
            recorder=lambda readings, room, device, ack, size: self.recorded.append(room) if room else None,
            registry=settings.registry,
        )

    def send(self, topic: str, payload: dict[str, Any] | str) -> None:
        data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
        self.pipeline.handle(InboundMessage(f"office/{topic}", data))

    def rejected(self, reason: str) -> int:
        return self.stats.rejected.get(reason, 0)

    def letters(self, reason: str) -> list[str]:
        return [letter.detail for letter in self.pipeline.dead_letters.page(reason=reason)]

    def state(self, room: str) -> RoomState:
        return self.live.state_of(room)


def test_a_device_name_is_per_room() -> None:
    rig = Rig()
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "temperature": 21.0})
    rig.send("hq/3/kitchen-3/pir-1", {"occupancy": True, "temperature": 23.4})
    assert rig.state("orion").environment.temperature_c == 21.0
    assert rig.state("kitchen-3").environment.temperature_c == 23.4
    assert rig.live.devices.room_of("orion.pir-1") == "orion"
    assert rig.live.devices.room_of("kitchen-3.pir-1") == "kitchen-3"
    assert "pir-1" not in rig.live.devices
    assert rig.stats.accepted == 2


def test_configured_devices_and_known_rooms_count_only_in_their_place() -> None:
    rig = Rig()
    rig.send("hq/2/lyra/orion-env", {"co2": 900})  # configured in orion
    rig.send("hq/3/orion/pir-1", {"occupancy": True})  # orion is on floor 2
    rig.send("annex/2/orion/pir-1", {"occupancy": True})  # orion is in hq
    rig.send("annex/1/pantry/orion-env", {"co2": 900})  # orion-env is in hq
    rig.send("annex/2/lyra/pir-1/availability", "online")
    assert (rig.rejected("wrong_room"), rig.rejected("wrong_building")) == (2, 3)
    assert rig.state("orion").environment.co2_ppm is None and rig.state("lyra").environment.co2_ppm is None
    assert rig.live.room_config("pantry") is None
    assert rig.live.devices.auto_count == 0
    rig.send("hq/2/orion/orion-env", {"co2": 600})
    assert rig.state("orion").environment.co2_ppm == 600


def test_an_id_that_would_name_another_device_is_a_conflict() -> None:
    rig = Rig()
    rig.send("hq/2/a.b/c", {"temperature": 20.0})  # id a.b.c
    rig.send("hq/2/a/b.c", {"temperature": 30.0})  # would be a.b.c too
    assert rig.rejected("id_conflict") == 1
    assert "already names device c of room a.b" in rig.letters("id_conflict")[0]
    assert rig.state("a").environment.temperature_c is None


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00+00:00",
        "1999-12-31T23:59:59Z",
        0,
        T0 + 86_401,
        "9999-12-31T23:59:59Z",
    ],
)
def test_device_times_out_of_range_are_rejected(ts: Any) -> None:
    rig = Rig()
    rig.send("hq/2/orion/orion-env", {"co2": 900, "ts": ts})
    assert rig.rejected("out_of_range") == 1
    assert rig.state("orion").environment.co2_ppm is None
    assert rig.stats.handler_errors == 0


def test_device_times_within_range_are_taken() -> None:
    rig = Rig()
    rig.send("hq/2/orion/orion-env", {"co2": 900, "ts": T0 + 86_000})
    rig.send("hq/2/lyra/env", {"co2": 800, "ts": datetime(2000, 1, 1, tzinfo=UTC).isoformat()})
    assert rig.stats.accepted == 2


def test_registry_limits() -> None:
    rig = Rig(
        {"registry": {"max_auto_rooms": 1, "max_auto_devices": 2, "max_fields": 4, "max_field_bytes": 64}}
    )
    rig.send("hq/4/attic/env", {"temperature": 20.0})
    rig.send("hq/4/cellar/env", {"temperature": 20.0})  # a second auto room
    rig.send("hq/2/orion/pir-1", {"occupancy": True})
    rig.send("hq/2/orion/pir-2/availability", "online")  # a third auto device
    rig.send("hq/2/orion/orion-env", {"note": "x" * 63})  # 65 bytes as JSON
    rig.send("hq/2/orion/orion-env", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    rig.send("hq/2/orion/orion-env", {"nested": {"k": ["v"] * 40}})
    assert rig.rejected("registry_full") == 3
    assert rig.rejected("field_too_large") == 2
    assert rig.live.room_config("cellar") is None
    assert rig.live.devices.auto_count == 2
    rig.send("hq/2/orion/orion-env", {"a": 1, "b": "short"})
    assert rig.live.devices.get("orion-env", T0).last_state == {"a": 1, "b": "short"}  # type: ignore[union-attr]


def test_silent_auto_devices_and_rooms_are_forgotten_and_come_back() -> None:
    rig = Rig({"registry": {"forget_after": 100}})
    rig.send("hq/4/attic/env", {"temperature": 20.0})
    rig.send("hq/2/orion/lamp", {"state": "ON", "power": 30})
    rig.send("hq/2/orion/orion-env", {"co2": 500})
    assert rig.state("orion").lighting.power_w == 30
    rig.clock.advance(60)
    rig.send("hq/4/attic/env/availability", "online")  # heard: not silent
    assert rig.pipeline.forget_silent() == (0, 0)
    rig.clock.advance(50)
    assert rig.pipeline.forget_silent() == (1, 0)  # the lamp, 110 s silent
    assert "orion.lamp" not in rig.live.devices and rig.state("orion").lighting.power_w is None
    assert rig.recorded[-1] is rig.state("orion")  # the changed room is recorded
    rig.clock.advance(60)
    assert rig.pipeline.forget_silent() == (1, 1)
    assert rig.live.room_config("attic") is None and rig.live.auto_room_count == 0
    assert rig.live.room_config("orion") is not None and "orion-env" in rig.live.devices
    assert "attic" not in {room["id"] for room in rig.live.export()["auto_rooms"]}
    # Talks again: registered again (the topic cache was cleared).
    rig.send("hq/4/attic/env", {"temperature": 21.0})
    assert rig.state("attic").environment.temperature_c == 21.0


def test_auto_registration_off() -> None:
    rig = Rig({"registry": {"auto_register": False}})
    rig.send("hq/2/orion/pir-1", {"occupancy": True})
    rig.send("hq/4/attic/env/availability", "online")
    rig.send("hq/2/orion/orion-env", {"co2": 500})
    assert rig.rejected("unknown_device") == 2
    assert rig.stats.accepted == 1 and rig.live.devices.auto_count == 0


class _BrokenAutomation:
    """Raises where the automation would act on a reading: a bug, not bad input."""

    def after_reading(self, *args: Any) -> None:
        raise RuntimeError("boom")

    def after_availability(self, *args: Any) -> None:
        raise RuntimeError("boom")

    def forget(self, *args: Any) -> None:
        pass


def test_anything_that_raises_is_dead_lettered_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig({"quality": {"burst": 1_000}}, automation=_BrokenAutomation())
    with caplog.at_level(logging.WARNING, logger="officegw.ingest"):
        for _ in range(100):
            rig.send("hq/2/orion/orion-env", {"co2": 500})
        assert rig.rejected("internal_error") == 100
        assert rig.stats.handler_errors == 100
        assert rig.letters("internal_error")[0] == "RuntimeError: boom"
        lines = [r for r in caplog.records if r.name == "officegw.ingest"]
        assert len(lines) == 1 and lines[0].exc_info is not None
        rig.clock.advance(61)
        rig.send("hq/2/orion/orion-env", {"co2": 500})
        lines = [r for r in caplog.records if r.name == "officegw.ingest"]
        assert len(lines) == 2 and "repeats_suppressed=99" in lines[1].getMessage()


def test_restored_auto_rooms_are_checked_and_bounded() -> None:
    settings = settings_from_dict(
        {"site": {"rooms": ROOMS}, "registry": {"max_auto_rooms": 2, "forget_after": 1_000}}
    )
    live = LiveState(settings)
    saved = [
        {"id": "bad!room", "building": "hq", "floor": "1", "heard_at": T0},
        {"id": "old", "building": "hq", "floor": "1", "heard_at": T0 - 2_000},  # silent too long
        {"id": "p1", "building": "hq", "floor": "1", "heard_at": T0 - 30},
        {"id": "p2", "building": "hq", "floor": "1"},  # from before rooms were timed: heard now
        {"id": "p3", "building": "hq", "floor": "1", "heard_at": T0 - 10},
        {"building": "hq"},
    ]
    live.restore({}, saved, T0)
    assert sorted(room["id"] for room in live.export()["auto_rooms"]) == ["p2", "p3"]
    off = LiveState(settings_from_dict({"site": {"rooms": ROOMS}, "registry": {"auto_register": False}}))
    off.restore({}, saved, T0)
    assert off.auto_room_count == 0


@pytest.mark.parametrize(
    "payload",
    [b'{"x": NaN}', b'{"x": -Infinity}', b'{"x": {"y": [1, NaN]}}', b'{"x": ' + b"9" * 400 + b"}"],
)
def test_unknown_fields_that_are_no_numbers_are_out_of_range(payload: bytes) -> None:
    # Kept, they would break the API's JSON (NaN) or the history's readings (no float).
    rig = Rig()
    rig.pipeline.handle(InboundMessage("office/hq/2/orion/orion-env", payload))
    assert rig.rejected("out_of_range") == 1
    assert rig.stats.handler_errors == 0
    assert rig.live.devices.get("orion-env", T0).last_state == {}  # type: ignore[union-attr]


class DeviceClockRig(Rig):
    """The rig on a device clock (`clock.mode: device`), falling back to the manual one."""

    def __init__(self) -> None:
        super().__init__()
        self.device_clock = DeviceClock(self.clock)
        self.pipeline = IngestPipeline(
            topic_prefix="office",
            live=self.live,
            stats=self.stats,
            clock=self.device_clock,
            pseudonymizer=Pseudonymizer(b"k" * 32),
            registry=settings_from_dict({}).registry,
            device_clock=self.device_clock,
        )


def test_device_time_moves_a_device_clock_and_the_first_may_be_years_ahead() -> None:
    rig = DeviceClockRig()
    later = T0 + 5 * 365 * 86_400.0  # a simulation's day, years after the system clock
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "ts": later})
    assert rig.stats.accepted == 1
    assert rig.device_clock.now() == later
    # Room state is timed by that clock: the motion is dated in device time.
    assert rig.state("orion").occupancy.since == later
    rig.send("hq/2/orion/orion-env", {"co2": 700})  # no ts: the clock stays
    assert rig.device_clock.now() == later
    rig.send("hq/2/orion/orion-env", {"co2": 710, "ts": later + 60})
    assert rig.device_clock.now() == later + 60
    rig.send("hq/2/orion/orion-env", {"co2": 705, "ts": later + 30})  # late: never back
    assert rig.device_clock.now() == later + 60
    assert rig.stats.processed == 4


def test_after_the_first_device_time_the_day_ahead_bound_holds_again() -> None:
    rig = DeviceClockRig()
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "ts": T0})
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "ts": T0 + 2 * 86_400})
    assert rig.rejected("out_of_range") == 1
    assert rig.device_clock.now() == T0  # a rejected message never moves the clock


def test_a_message_rejected_after_its_time_was_read_does_not_move_the_clock() -> None:
    rig = DeviceClockRig()
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "ts": T0})
    rig.send("hq/2/orion/pir-1", {"occupancy": True, "ts": T0 + 10, "extra": "x" * 2000})
    assert rig.rejected("field_too_large") == 1
    assert rig.device_clock.now() == T0


@pytest.mark.parametrize("ts", [946_684_800.0, 1_700_000_000.123456, 4_102_444_800.999])
@pytest.mark.parametrize("digest", [0, 1, 2**31, 2**32 - 1])
def test_a_devices_mark_keeps_its_time_and_crc_exactly(ts: float, digest: int) -> None:
    mark = _mark(ts, digest)
    assert mark.real == ts
    assert mark.imag == digest and int(mark.imag) == digest
    assert mark.imag != digest - 1 and mark.imag != digest + 1
