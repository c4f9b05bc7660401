"""InfluxDB export against a real server speaking the InfluxDB v2 write API (VictoriaMetrics)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import InfluxSection
from gateway.storage.influx.exporter import InfluxExporter
from gateway.storage.records import Reading, StoredEvent
from simulators.broker import free_port
from tests.support import wait_until
from tests.victoria import MAX_LINE_BYTES, Sample, VictoriaMetrics

FAST = {"flush_interval": 0.1, "retry_min_delay": 0.1, "retry_max_delay": 1.0, "timeout": 5.0}


def section(url: str, **overrides: Any) -> InfluxSection:
    return InfluxSection(
        url=url, token="test-token", org="officegw", bucket="officegw", **{**FAST, **overrides}
    )


@pytest.fixture
def building() -> str:
    """A building name of its own: tests sharing the server select their series by it."""
    return f"b{uuid.uuid4().hex[:8]}"


@pytest.fixture
def exporters() -> Iterator[list[InfluxExporter]]:
    started: list[InfluxExporter] = []
    yield started
    for exporter in started:
        exporter.stop(timeout=2.0)


def readings(
    building: str, count: int, start: float, *, metric: str = "co2", step: float = 0.001
) -> list[Reading]:
    # From a whole millisecond: the exporter writes milliseconds (round(ts * 1000)), and
    # from an arbitrary start two readings `step` apart could round to the same one
    # (a start half-way between two ms, and a double's error at 1.8e9 s), which the
    # server keeps as one sample: 1,594 stored of 1,595 sent, none missing.
    start = round(start, 3)
    return [
        Reading(
            device_id=f"{building}-dev",
            room_id="orion",
            building=building,
            floor="2",
            metric=metric,
            value=400.0 + index,
            ts=start + index * step,
            received_at=start,
            kind="environment",
        )
        for index in range(count)
    ]


def arrived(
    server: VictoriaMetrics,
    building: str,
    count: int,
    timeout: float = 15.0,
    exporter: InfluxExporter | None = None,
) -> list[Sample]:
    """Polls the server until `count` samples of `building` are stored; returns them.
    On a timeout the failure says how many arrived, what the exporter saw and what
    the server logged, so a failure on a loaded machine tells its cause."""
    samples: list[Sample] = []

    def enough() -> bool:
        nonlocal samples
        samples = server.export(f'{{building="{building}"}}')
        return len(samples) >= count

    def progress() -> str:
        stats = "" if exporter is None else f"exporter {exporter.stats()}; "
        running = server.is_running()
        return f"have {len(samples)}; {stats}server running: {running}; log: {server.log_tail(600)}"

    wait_until(enough, timeout, f"{count} samples of {building}", progress)
    return samples


def test_every_reading_and_event_arrives_with_its_tags_fields_and_time(
    victoria: VictoriaMetrics, building: str, tmp_path: Path, exporters: list[InfluxExporter]
) -> None:
    exporter = InfluxExporter(section(victoria.url), tmp_path / "buffer")
    exporters.append(exporter)
    exporter.start()
    now = round(time.time(), 3)
    batch = [
        Reading("pir-1", "orion", building, "2", "occupancy", 1.0, now, now, "occupancy"),
        Reading("pir-1", "orion", building, "2", "people", 3.0, now + 0.001, now, "occupancy"),
        Reading("co2-1", "orion", building, "2", "co2", 612.0, now + 0.002, now, "environment"),
        Reading("co2-1", "orion", building, "2", "temperature", 21.5, now + 0.003, now, "environment"),
        Reading("light 1", "lyra", building, "B1", "power", 9.75, now + 0.004, now, "energy"),
    ]
    events = [
        StoredEvent("occupancy", "orion", building, "2", now + 0.005, {"old": "vacant", "new": "occupied"}),
        StoredEvent(
            "command",
            "lyra",
            building,
            "B1",
            now + 0.006,
            {"device": "light 1", "payload": {"state": "OFF"}, "attempt": 2, "status": "sent"},
        ),
    ]
    exporter.submit(batch, events)

    samples = arrived(victoria, building, 12)
    got = {(s.name, tuple(sorted(s.labels.items())), s.value, s.ts_ms) for s in samples}
    ms = round(now * 1000)
    orion = {"building": building, "floor": "2", "room": "orion"}
    lyra = {"building": building, "floor": "B1", "room": "lyra"}

    def key(name: str, labels: dict[str, str], value: float, offset: int) -> tuple[Any, ...]:
        return (name, tuple(sorted(labels.items())), value, ms + offset)

    expected = {
        key("occupancy_occupancy", {**orion, "device": "pir-1"}, 1.0, 0),
        key("occupancy_people", {**orion, "device": "pir-1"}, 3.0, 1),
        key("environment_co2", {**orion, "device": "co2-1"}, 612.0, 2),
        key("environment_temperature", {**orion, "device": "co2-1"}, 21.5, 3),
        key("energy_power", {**lyra, "device": "light 1"}, 9.75, 4),
        # String fields are stored by VictoriaMetrics as series of value 0.
        key("events_count", {**orion, "kind": "occupancy"}, 1.0, 5),
        key("events_old", {**orion, "kind": "occupancy"}, 0.0, 5),
        key("events_new", {**orion, "kind": "occupancy"}, 0.0, 5),
        key("events_count", {**lyra, "kind": "command", "device": "light 1"}, 1.0, 6),
        key("events_attempt", {**lyra, "kind": "command", "device": "light 1"}, 2.0, 6),
        key("events_payload", {**lyra, "kind": "command", "device": "light 1"}, 0.0, 6),
        key("events_status", {**lyra, "kind": "command", "device": "light 1"}, 0.0, 6),
    }
    assert expected <= got
    assert len(got) == 12  # the 12 above and nothing else (5 + 3 + 4 lines' fields)
    wait_until(lambda: exporter.stats().buffered == 0, 5.0, "buffer drained")
    stats = exporter.stats()
    assert (stats.exported, stats.dropped, stats.rejected, stats.invalid) == (7, 0, 0, 0)
    assert stats.healthy and stats.write_failures == 0


def test_a_point_the_server_refuses_is_dropped_alone_and_counted(
    victoria: VictoriaMetrics,
    building: str,
    tmp_path: Path,
    exporters: list[InfluxExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InfluxExporter(section(victoria.url), tmp_path / "buffer")
    exporters.append(exporter)
    now = time.time()
    before = readings(building, 40, now - 10)
    after = readings(building, 40, now - 5)
    # Longer than the server accepts: it answers 400 to every request holding it.
    huge = StoredEvent("alert", "orion", building, "2", now, {"message": "x" * (64 * MAX_LINE_BYTES)})
    nan = Reading("co2-1", "orion", building, "2", "co2", float("nan"), now, now, "environment")
    exporter.submit(before, [])
    exporter.submit([nan], [huge])
    exporter.submit(after, [])
    exporter.start()

    samples = arrived(victoria, building, 80)
    assert {s.ts_ms for s in samples} == {round(r.ts * 1000) for r in before + after}
    assert all(s.name == "environment_co2" for s in samples)
    wait_until(lambda: exporter.stats().buffered == 0, 5.0, "buffer drained")
    stats = exporter.stats()
    assert (stats.exported, stats.rejected, stats.invalid, stats.dropped) == (80, 1, 1, 0)
    assert stats.healthy
    rejections = [r for r in caplog.records if "influx rejected a point" in r.getMessage()]
    assert len(rejections) == 1 and "status=400" in rejections[0].getMessage()


def test_a_full_buffer_refuses_new_points_and_counts_each(
    victoria: VictoriaMetrics, building: str, tmp_path: Path, exporters: list[InfluxExporter]
) -> None:
    exporter = InfluxExporter(section(victoria.url, buffer_max_rows=10), tmp_path / "buffer")
    exporters.append(exporter)
    batch = readings(building, 25, time.time() - 60)
    exporter.submit(batch[:7], [])
    exporter.submit(batch[7:], [])
    stats = exporter.stats()
    assert (stats.buffered, stats.dropped) == (10, 15)

    exporter.start()
    samples = arrived(victoria, building, 10)
    # The oldest stay: what was queued first is what arrives.
    assert sorted(s.ts_ms for s in samples) == [round(r.ts * 1000) for r in batch[:10]]
    wait_until(lambda: exporter.stats().exported == 10, 5.0, "10 exported")
    assert exporter.stats().dropped == 15


def test_points_buffered_while_the_server_is_down_survive_an_exporter_restart(
    building: str, tmp_path: Path, exporters: list[InfluxExporter]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # nothing listens yet
    first = InfluxExporter(section(url), tmp_path / "buffer")
    first.start()
    batch = readings(building, 300, time.time() - 30)
    first.submit(batch, [])
    wait_until(lambda: first.stats().write_failures >= 1, 5.0, "a failed write")
    first.stop(timeout=1.0)
    stats = first.stats()
    assert (stats.buffered, stats.exported, stats.dropped) == (300, 0, 0)
    assert not stats.healthy and stats.last_error

    with VictoriaMetrics(port=port).start() as server:
        second = InfluxExporter(section(url), tmp_path / "buffer")
        exporters.append(second)
        assert second.stats().buffered == 300
        second.start()
        samples = arrived(server, building, 300)
        assert sorted(s.ts_ms for s in samples) == [round(r.ts * 1000) for r in batch]
        wait_until(lambda: second.stats().buffered == 0, 5.0, "buffer drained")
        assert second.stats().exported == 300


@pytest.mark.timeout(120)
def test_thirty_seconds_of_database_outage_lose_nothing(
    building: str, tmp_path: Path, exporters: list[InfluxExporter]
) -> None:
    server = VictoriaMetrics().start()
    try:
        exporter = InfluxExporter(section(server.url, retry_max_delay=2.0), tmp_path / "buffer")
        exporters.append(exporter)
        exporter.start()
        sent: list[Reading] = []

        def submit_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                # 5 readings every 0.1 s: 50 points a second, each its own ms.
                batch = readings(building, 5, time.time())
                exporter.submit(batch, [])
                sent.extend(batch)
                time.sleep(0.1)

        submit_for(1.0)
        wait_until(lambda: exporter.stats().exported == len(sent), 10.0, "first points exported")
        # In the server's storage, not only acknowledged, before it goes away: what a
        # server loses of what it acknowledged is not the exporter's to keep.
        arrived(server, building, len(sent), exporter=exporter)
        stopped_at = time.time()
        server.stop_process()
        submit_for(30.0)
        assert exporter.stats().write_failures >= 1
        assert not exporter.stats().healthy
        assert exporter.stats().buffered > 0
        restarted_at = time.time()
        server.start()
        submit_for(1.0)

        # Generous: the whole backlog must arrive, and on a loaded machine the server's
        # restart and the exporter's next attempt (at most retry_max_delay away) share
        # two cores with everything else; a pass takes a few seconds.
        try:
            samples = arrived(server, building, len(sent), timeout=60.0, exporter=exporter)
        except AssertionError as exc:
            # Which ones are missing, relative to the outage (before it, during, after).
            have = {s.ts_ms for s in server.export(f'{{building="{building}"}}')}
            missing = sorted(round(r.ts * 1000) for r in sent if round(r.ts * 1000) not in have)
            phases = [
                "before" if ms < stopped_at * 1000 else "during" if ms < restarted_at * 1000 else "after"
                for ms in missing
            ]
            raise AssertionError(f"{exc}; missing {list(zip(missing, phases, strict=True))[:10]}") from None
        assert sorted(s.ts_ms for s in samples) == sorted(round(r.ts * 1000) for r in sent)
        wait_until(lambda: exporter.stats().buffered == 0, 10.0, "buffer drained")
        stats = exporter.stats()
        assert stats.exported == len(sent)
        assert (stats.dropped, stats.rejected, stats.invalid) == (0, 0, 0)
        assert stats.healthy
    finally:
        server.close()
