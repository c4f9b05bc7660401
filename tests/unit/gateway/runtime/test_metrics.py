"""The InfluxDB exporter's counters on /metrics: absent when export is off."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.ingest.stats import IngestStats
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
