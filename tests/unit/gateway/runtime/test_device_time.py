"""A gateway on `clock.mode: device`: its ticker runs in the devices' time, so a
simulated day's vacancy timeouts and rules happen as fast as the messages come.

A real `Gateway` (real ticker thread, store, history writer) on a `FakeTransport`:
the clock is the gateway's own `DeviceClock`, built from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import DeviceClock
from gateway.config import settings_from_dict
from gateway.runtime.gateway import Gateway
from tests.fakes import FakeTransport
from tests.support import wait_until

# A Monday in 2030: years ahead of the machine's clock, as a simulation may start.
DAY = 1_893_801_600.0


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Gateway, FakeTransport]]:
    settings = settings_from_dict(
        {
            "clock": {"mode": "device"},
            "storage": {"path": str(tmp_path / "officegw.db"), "commit_interval": 0.001},
            "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2, "type": "meeting"}]},
        }
    )
    transport = FakeTransport()
    gateway = Gateway(settings, transport=transport)
    gateway.start()
    try:
        yield gateway, transport
    finally:
        gateway.stop()


def test_the_settings_give_a_device_clock_and_nothing_ticks_before_the_first_device_time(
    gateway: tuple[Gateway, FakeTransport],
) -> None:
    gw, _ = gateway
    assert isinstance(gw._clock, DeviceClock)
    # The ticker's work in device time, run as its thread runs it: no device time yet,
    # so no tick (a fixed wait for the thread would only hope it had run).
    gw.ticker._tick_in_device_time()
    assert gw.ticker.ticked_at is None


def test_vacancy_follows_device_time_not_real_time(gateway: tuple[Gateway, FakeTransport]) -> None:
    gw, transport = gateway
    transport.deliver("office/hq/2/orion/pir", {"occupancy": True, "ts": DAY})
    assert gw.now() == DAY
    assert gw.room("orion") is not None
    assert gw.room("orion").state.occupancy.state.value == "occupied"  # type: ignore[union-attr]
    # Ten minutes and a second later in device time (the meeting room's timeout is 600 s),
    # a reading of another device: the ticker wakes on the clock and the room empties,
    # dated at the motion's deadline, within real milliseconds.
    transport.deliver("office/hq/2/orion/env", {"co2": 600, "ts": DAY + 601})
    wait_until(lambda: (gw.ticker.ticked_at or 0) >= DAY + 601, 5.0, "a tick at the new device time")
    occupancy = gw.room("orion").state.occupancy  # type: ignore[union-attr]
    assert occupancy.state.value == "vacant"
    assert occupancy.since == DAY + 600
    assert gw.stats.processed == 2


def test_the_clock_status_says_the_mode_the_time_the_last_tick_and_the_counts(
    gateway: tuple[Gateway, FakeTransport],
) -> None:
    gw, transport = gateway
    transport.deliver("office/hq/2/orion/pir", {"occupancy": True, "ts": DAY})
    wait_until(lambda: (gw.ticker.ticked_at or 0) >= DAY, 5.0, "a tick")
    status = gw.clock_status()
    assert (status.mode, status.now, status.ticked_at) == ("device", DAY, DAY)
    assert status.messages_processed == 1
    # After the tick it said so on its clock topic, for a simulator to wait on.
    said = [p.json() for p in transport.published if p.topic == "officegw/gateway/officegw/clock"]
    assert said[-1] == {"gateway": "officegw", "ticked_at": DAY, "messages_processed": 1, "commands_sent": 0}


def test_the_metrics_say_the_clock_mode_the_time_and_the_last_tick() -> None:
    from prometheus_client import generate_latest

    from gateway.ingest.stats import IngestStats
    from gateway.runtime.metrics import GaugeSources, build_registry

    stats = IngestStats(processed=7)
    gauges = GaugeSources(
        counts=lambda: (0, 0, 0),
        connected=lambda: True,
        clock=lambda: ("device", DAY, DAY - 1),
        connects=lambda: 2,
    )
    text = generate_latest(build_registry(stats, gauges)).decode()
    assert 'officegw_clock_mode{mode="device"} 1.0' in text
    assert "officegw_clock_seconds 1.8938016e+09" in text
    assert "officegw_clock_ticked_seconds 1.893801599e+09" in text
    assert "officegw_messages_processed_total 7.0" in text
    assert "officegw_mqtt_connects_total 2.0" in text
    assert "process_resident_memory_bytes" in text
