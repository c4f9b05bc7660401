"""The Prometheus exposition of the gateway: counters and gauges read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from gateway.ingest.backpressure import BacklogStats
from gateway.ingest.stats import IngestStats
from gateway.mqtt.broker_stats import BrokerStats
from gateway.storage.history_writer import HistoryStats

if TYPE_CHECKING:
    from gateway.storage.influx.exporter import InfluxStats


@dataclass(frozen=True, slots=True)
class GaugeSources:
    """Where the collector reads the live gauges from, at scrape time."""

    counts: Callable[[], tuple[int, int, int]]  # rooms, occupied rooms, devices
    connected: Callable[[], bool]
    # (room, kWh today, kWh wasted today) for rooms with lighting energy.
    energy: Callable[[], list[tuple[str, float, float]]] = lambda: []
    # (commands sent, alerts raised, manual overrides active)
    automation: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)
    # Data-quality flag -> how many devices carry it.
    quality: Callable[[], dict[str, int]] = lambda: {}
    history: Callable[[], HistoryStats | None] = lambda: None
    # The InfluxDB exporter's counters (`InfluxExporter.stats`); None: export off,
    # and no officegw_influx_* metrics at all.
    influx: Callable[[], InfluxStats | None] = lambda: None
    # The broker's own counters (`Transport.broker_stats`); None: not followed, and
    # no officegw_broker_* metrics at all.
    broker: Callable[[], BrokerStats | None] = lambda: None
    # What was read from the broker and is not yet committed (back-pressure).
    backlog: Callable[[], BacklogStats | None] = lambda: None
    # Subscriptions sent and not yet acknowledged by the broker (`Transport.subscriptions_pending`).
    subscriptions_pending: Callable[[], int] = lambda: 0
    # (clock mode, the gateway's now, the clock's time when the ticker last ticked)
    clock: Callable[[], tuple[str, float, float | None]] | None = None
    # Broker connections opened since the gateway started.
    connects: Callable[[], int] = lambda: 0


class GatewayCollector(Collector):
    def __init__(self, stats: IngestStats, gauges: GaugeSources) -> None:
        self._stats = stats
        self._gauges = gauges

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._stats
        yield CounterMetricFamily(
            "officegw_messages_received", "MQTT messages received by the gateway", value=s.received
        )
        yield CounterMetricFamily(
            "officegw_messages_processed",
            "Messages received and done with: applied, rejected, ignored or throttled, and handed to "
            "the history writer",
            value=s.processed,
        )
        yield CounterMetricFamily(
            "officegw_messages_accepted", "Messages validated and applied to the room model", value=s.accepted
        )
        yield CounterMetricFamily(
            "officegw_messages_ignored",
            "Messages deliberately not processed (own commands, properties a dialect does not use)",
            value=s.ignored,
        )
        yield CounterMetricFamily(
            "officegw_messages_duplicate",
            "Exact repeats of an applied reading (broker redelivery), or retained replays of a state "
            "already held, not applied again",
            value=s.duplicates,
        )
        yield CounterMetricFamily(
            "officegw_messages_late",
            "Readings older than one already applied: recorded in the history, not applied to live state",
            value=s.late,
        )
        yield CounterMetricFamily(
            "officegw_messages_throttled",
            "Messages held back because their device exceeded quality.max_rate",
            value=s.throttled,
        )
        rejected = CounterMetricFamily(
            "officegw_messages_rejected", "Messages rejected as bad input, by reason", labels=["reason"]
        )
        for reason, count in sorted(s.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "officegw_handler_errors", "Messages whose processing raised unexpectedly", value=s.handler_errors
        )
        rooms, occupied, devices = self._gauges.counts()
        yield GaugeMetricFamily("officegw_rooms", "Rooms known to the gateway", value=rooms)
        yield GaugeMetricFamily("officegw_rooms_occupied", "Rooms currently occupied", value=occupied)
        yield GaugeMetricFamily("officegw_devices", "Devices known to the gateway", value=devices)
        yield GaugeMetricFamily(
            "officegw_mqtt_connected",
            "1 while the broker connection is up",
            value=int(self._gauges.connected()),
        )
        yield GaugeMetricFamily(
            "officegw_mqtt_subscriptions_pending",
            "Topic subscriptions sent and not yet acknowledged by the broker (discovered devices' "
            "topics are subscribed at run time; a message published before the acknowledgement may "
            "not be delivered)",
            value=self._gauges.subscriptions_pending(),
        )
        yield CounterMetricFamily(
            "officegw_mqtt_connects",
            "Broker connections opened since the gateway started (a rise: it reconnected)",
            value=self._gauges.connects(),
        )
        if self._gauges.clock is not None:
            yield from _clock_metrics(*self._gauges.clock())
        used = GaugeMetricFamily(
            "officegw_room_energy_kwh_today",
            "Lighting energy used today (a day of site.timezone)",
            labels=["room"],
        )
        wasted = GaugeMetricFamily(
            "officegw_room_energy_wasted_kwh_today",
            "Lighting energy used today while vacant",
            labels=["room"],
        )
        for room, kwh, waste in self._gauges.energy():
            used.add_metric([room], kwh)
            wasted.add_metric([room], waste)
        yield used
        yield wasted
        commands, alerts, overrides = self._gauges.automation()
        yield CounterMetricFamily(
            "officegw_commands_sent", "Device commands published (retries included)", value=commands
        )
        yield CounterMetricFamily("officegw_alerts", "Alerts raised by rules and actuation", value=alerts)
        yield GaugeMetricFamily(
            "officegw_manual_overrides", "Devices whose rules are paused by a person", value=overrides
        )
        flagged = GaugeMetricFamily(
            "officegw_devices_flagged",
            "Devices carrying a data-quality flag (flooding, stuck, schema_drift, battery_low, offline)",
            labels=["flag"],
        )
        for flag, count in sorted(self._gauges.quality().items()):
            flagged.add_metric([flag], count)
        yield flagged
        history = self._gauges.history()
        if history is not None:
            yield from _history_metrics(history)

        influx = self._gauges.influx()
        if influx is not None:
            yield from _influx_metrics(influx)

        broker = self._gauges.broker()
        if broker is not None:
            yield from _broker_metrics(broker)

        backlog = self._gauges.backlog()
        if backlog is not None:
            yield from _backlog_metrics(backlog)


def _backlog_metrics(b: BacklogStats) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    yield GaugeMetricFamily(
        "officegw_ingest_uncommitted_messages",
        "Messages read from the broker and not yet committed",
        value=b.pending_messages,
    )
    yield GaugeMetricFamily(
        "officegw_ingest_uncommitted_bytes",
        "Payload bytes of messages read from the broker and not yet committed",
        value=b.pending_bytes,
    )
    yield GaugeMetricFamily(
        "officegw_ingest_uncommitted_limit_messages",
        "storage.max_uncommitted_messages: reading stops at this many",
        value=b.max_messages,
    )
    yield GaugeMetricFamily(
        "officegw_ingest_uncommitted_limit_bytes",
        "storage.max_uncommitted_bytes: reading stops at this many",
        value=b.max_bytes,
    )
    yield CounterMetricFamily(
        "officegw_ingest_backpressure_pauses",
        "Times reading from the broker stopped at the bound until the history caught up",
        value=b.pauses,
    )
    yield CounterMetricFamily(
        "officegw_ingest_backpressure_seconds",
        "Seconds reading from the broker was stopped at the bound",
        value=b.paused_seconds,
    )
    yield GaugeMetricFamily(
        "officegw_ingest_backpressure_active",
        "1 while reading is stopped at the bound",
        value=int(b.paused_now),
    )


def _clock_metrics(
    mode: str, now: float, ticked_at: float | None
) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    info = GaugeMetricFamily(
        "officegw_clock_mode", "1 for the clock the gateway runs on (clock.mode)", labels=["mode"]
    )
    info.add_metric([mode], 1)
    yield info
    yield GaugeMetricFamily(
        "officegw_clock_seconds",
        "The gateway's time (epoch s); the newest device time with clock.mode device",
        value=now,
    )
    if ticked_at is not None:
        yield GaugeMetricFamily(
            "officegw_clock_ticked_seconds",
            "The gateway's time at the last tick that ran to its end (timers, rules, bookings)",
            value=ticked_at,
        )


def _history_metrics(h: HistoryStats) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    yield GaugeMetricFamily(
        "officegw_storage_healthy", "1 while the history store accepts writes", value=int(h.healthy)
    )
    yield CounterMetricFamily(
        "officegw_history_commits", "Transactions committed by the history writer", value=h.committed_batches
    )
    yield CounterMetricFamily(
        "officegw_history_readings_committed",
        "Readings committed by the history writer (durable; redelivered ones included)",
        value=h.readings_committed,
    )
    yield CounterMetricFamily(
        "officegw_history_readings_written", "Readings stored in the history", value=h.readings_written
    )
    yield CounterMetricFamily(
        "officegw_history_readings_duplicate",
        "Readings the history already held (redelivered messages), not stored again",
        value=h.readings_duplicate,
    )
    yield CounterMetricFamily(
        "officegw_history_events_written", "Events stored in the history", value=h.events_written
    )
    yield CounterMetricFamily(
        "officegw_history_write_failures",
        "Failed history commits (disk full, read-only)",
        value=h.write_failures,
    )
    yield CounterMetricFamily(
        "officegw_history_readings_dropped",
        "Readings lost while the store was failing and the memory buffer was full",
        value=h.readings_dropped,
    )
    yield CounterMetricFamily(
        "officegw_history_commit_seconds", "Time spent committing history", value=h.commit_seconds
    )
    yield CounterMetricFamily(
        "officegw_history_merges",
        "Merges of newly committed readings into their series (about once a second)",
        value=h.merges,
    )
    yield CounterMetricFamily(
        "officegw_history_merge_failures",
        "Failed merges (the readings stay committed and readable; retried a second later)",
        value=h.merge_failures,
    )
    yield CounterMetricFamily(
        "officegw_history_merge_seconds",
        "Time spent merging readings into their series",
        value=h.merge_seconds,
    )
    yield CounterMetricFamily(
        "officegw_history_memory_releases",
        "Times the history writer, quiet after a burst of readings, gave memory back "
        "(SQLite's page cache, and the C heap's free pages where the gateway owns the process)",
        value=h.memory_releases,
    )


def _influx_metrics(stats: InfluxStats) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    yield CounterMetricFamily(
        "officegw_influx_points_exported", "Points InfluxDB acknowledged", value=stats.exported
    )
    dropped = CounterMetricFamily(
        "officegw_influx_points_dropped",
        "Points that will never reach InfluxDB, by reason (buffer_full, rejected by the server, invalid)",
        labels=["reason"],
    )
    dropped.add_metric(["buffer_full"], stats.dropped)
    dropped.add_metric(["rejected"], stats.rejected)
    dropped.add_metric(["invalid"], stats.invalid)
    yield dropped
    yield GaugeMetricFamily(
        "officegw_influx_points_buffered",
        "Points on disk waiting for InfluxDB (influxdb.buffer_max_rows at most)",
        value=stats.buffered,
    )
    yield CounterMetricFamily(
        "officegw_influx_write_failures",
        "Write requests that failed for a transient reason (the points stayed buffered)",
        value=stats.write_failures,
    )
    yield GaugeMetricFamily(
        "officegw_influx_healthy", "1 while the last write to InfluxDB succeeded", value=int(stats.healthy)
    )
    if stats.last_success_at is not None:
        yield GaugeMetricFamily(
            "officegw_influx_last_success_timestamp_seconds",
            "When InfluxDB last acknowledged a write (Unix time)",
            value=stats.last_success_at,
        )


def _broker_metrics(b: BrokerStats) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    yield CounterMetricFamily(
        "officegw_broker_drops_seen",
        "Rises of the broker's dropped-messages count seen by this gateway (all clients; "
        "adds up across broker restarts)",
        value=b.drops_seen,
    )
    # The broker's own values: absent until it published them (a broker without
    # $SYS, or one that refuses them, never does).
    if b.dropped is not None:
        yield GaugeMetricFamily(
            "officegw_broker_messages_dropped",
            "Messages the broker dropped since it started, all clients, because a session's "
            "queue was full (mosquitto $SYS/broker/publish/messages/dropped; 0 after a broker restart)",
            value=b.dropped,
        )
    if b.stored is not None:
        yield GaugeMetricFamily(
            "officegw_broker_messages_stored",
            "Messages the broker holds: queued for sessions, in flight and retained "
            "(mosquitto $SYS/broker/store/messages/count)",
            value=b.stored,
        )
    if b.uptime is not None:
        yield GaugeMetricFamily(
            "officegw_broker_uptime_seconds",
            "Broker uptime as it last published it (every sys_interval, 10 s by default)",
            value=b.uptime,
        )


def build_registry(stats: IngestStats, gauges: GaugeSources) -> CollectorRegistry:
    # A registry per app, never the global one: two gateways in one process (tests)
    # must not share counters.
    registry = CollectorRegistry(auto_describe=True)
    registry.register(GatewayCollector(stats, gauges))
    # process_cpu_seconds_total, process_resident_memory_bytes, ... (from /proc on Linux;
    # nothing elsewhere): what a load test or a simulator reports the gateway used.
    ProcessCollector(registry=registry)
    return registry
