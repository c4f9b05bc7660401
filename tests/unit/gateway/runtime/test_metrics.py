"""The InfluxDB exporter's counters on /metrics: absent when export is off."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.ingest.stats import IngestStats
from gateway.mqtt.broker_stats import BrokerStats
from gateway.runtime.metrics import GaugeSources, build_registry
from gateway.storage.influx.exporter import InfluxStats


def exposition(influx: InfluxStats | None, wired: bool = True) -> str:
    gauges = GaugeSources(counts=lambda: (0, 0, 0), connected=lambda: True)
    if wired:
        gauges = GaugeSources(counts=lambda: (0, 0, 0), connected=lambda: True, influx=lambda: influx)
    return generate_latest(build_registry(IngestStats(), gauges)).decode()


def test_no_influx_metrics_when_export_is_off() -> None:
    assert "officegw_influx" not in exposition(None, wired=False)
    assert "officegw_influx" not in exposition(None)


def test_every_counter_is_exposed() -> None:
    stats = InfluxStats(
        exported=120,
        buffered=30,
        dropped=4,
        rejected=2,
        invalid=1,
        write_failures=7,
        last_error="NewConnectionError: refused",
        last_success_at=1_700_000_000.0,
        healthy=False,
    )
    text = exposition(stats)
    for sample in (
        "officegw_influx_points_exported_total 120.0",
        'officegw_influx_points_dropped_total{reason="buffer_full"} 4.0',
        'officegw_influx_points_dropped_total{reason="rejected"} 2.0',
        'officegw_influx_points_dropped_total{reason="invalid"} 1.0',
        "officegw_influx_points_buffered 30.0",
        "officegw_influx_write_failures_total 7.0",
        "officegw_influx_healthy 0.0",
        "officegw_influx_last_success_timestamp_seconds 1.7e+09",
    ):
        assert sample in text.splitlines(), sample


def broker_exposition(broker: BrokerStats | None) -> list[str]:
    gauges = GaugeSources(counts=lambda: (0, 0, 0), connected=lambda: True, broker=lambda: broker)
    return generate_latest(build_registry(IngestStats(), gauges)).decode().splitlines()


def test_no_broker_metrics_when_broker_stats_are_off() -> None:
    assert not any("officegw_broker" in line for line in broker_exposition(None))


def test_before_the_broker_said_anything_only_the_counter() -> None:
    samples = [line for line in broker_exposition(BrokerStats()) if line.startswith("officegw_broker")]
    assert samples == ["officegw_broker_drops_seen_total 0.0"]


def test_broker_counters_are_exposed() -> None:
    lines = broker_exposition(BrokerStats(dropped=11_800, stored=53, uptime=86, drops_seen=300))
    for sample in (
        "officegw_broker_drops_seen_total 300.0",
        "officegw_broker_messages_dropped 11800.0",
        "officegw_broker_messages_stored 53.0",
        "officegw_broker_uptime_seconds 86.0",
        "# TYPE officegw_broker_messages_dropped gauge",
        "# TYPE officegw_broker_drops_seen_total counter",
    ):
        assert sample in lines, sample
