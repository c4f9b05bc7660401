"""The gateway process: MQTT transport, ingest pipeline, live state and the ticker, wired once."""

from __future__ import annotations

import gc
import logging
import secrets
from pathlib import Path
from typing import Any, cast

from devices import identity
from devices.pseudonym import Pseudonymizer
from gateway.automation.event_log import EventKind, EventLog, LoggedEvent
from gateway.automation.runner import Automation, load_rule_set
from gateway.clock import Clock, SystemClock
from gateway.codec import decode_as, dumps
from gateway.config import Settings
from gateway.ingest.pipeline import IngestPipeline
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from gateway.logs import kv
from gateway.mqtt.transport import Ack, Transport
from gateway.runtime.gc_schedule import FullCollections
from gateway.runtime.migrations import migrate_device_ids
from gateway.runtime.snapshotter import Snapshotter
from gateway.runtime.ticker import Ticker
from gateway.runtime.topics import routes
from gateway.storage.history_writer import HistoryWriter
from gateway.storage.influx.exporter import InfluxExporter
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.sqlite_store import Store
from rules.engine import RuleMemory
from rules.room_model import RoomState
from rules.types import Priority

log = logging.getLogger("officegw.gateway")


EVENTS_KEPT_IN_MEMORY = 10_000
# Of the 5 s a service manager gives us after SIGTERM.
SHUTDOWN_FLUSH_TIMEOUT = 3.0


class Gateway:
    """The running gateway: everything behind the transport, assembled from the settings.

    The transport comes from outside (the CLI builds a `PahoTransport`; unit tests
    a `FakeTransport`): the gateway hands it the message handler when it starts.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport,
        clock: Clock | None = None,
        manage_gc: bool = False,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.stats = IngestStats()
        self._manage_gc = manage_gc
        self._gc = FullCollections()
        self.transport = transport
        self.live = LiveState(settings)
        self.store = Store(Path(settings.storage.path))
        # Everything committed to the history is also exported, when influxdb.url is set.
        self.influx = InfluxExporter.from_settings(settings)
        retention = settings.storage.retention
        self.history = HistoryWriter(
            self.store,
            dumps,
            export=self.influx.submit if self.influx is not None else None,
            acknowledge=transport.ack_many,
            max_delay=settings.storage.commit_interval,
            retention=(retention.readings * 86_400, retention.events * 86_400),
        )
        self.events = EventLog(sink=self._persist_event)
        self.automation = Automation(
            settings, self.live, self.events, load_rule_set(settings), publish=self._publish
        )
        key = settings.gateway.pseudonym_key or secrets.token_hex(32)
        self.pipeline = IngestPipeline(
            topic_prefix=settings.mqtt.topic_prefix,
            live=self.live,
            stats=self.stats,
            clock=self.clock,
            pseudonymizer=Pseudonymizer(key.encode()),
            automation=self.automation,
            routes=routes(settings),
            reconnect_grace=settings.quality.reconnect_grace,
            recorder=self._record_message,
            record_readings=settings.storage.history,
            registry=settings.registry,
        )
        # A tenth of the shortest vacancy timeout keeps "vacant" within 10 % of its
        # deadline; never busier than 20 ticks a second nor lazier than one.
        interval = min(1.0, max(0.05, self.live.min_vacancy_timeout() / 10))
        self.ticker = Ticker(
            self.live,
            self.clock,
            interval,
            self.automation,
            release_throttled=self.pipeline.release_throttled,
            record_rooms=self._record_rooms,
            forget_silent=self.pipeline.forget_silent,
        )
        self.snapshotter = Snapshotter(self.store, self._capture, settings.storage.snapshot_interval)

    # What is recorded (each called on the thread that produced it; never blocks)

    def _record_message(self, readings: list[Reading], room: RoomState | None, ack: Ack | None) -> None:
        # With storage.history off there are no readings and no acks (paho acknowledged).
        if readings or room is not None or ack is not None:
            self.history.submit(readings, (), room, ack)

    def _record_rooms(self, rooms: list[RoomState]) -> None:
        for room in rooms:
            self.history.submit((), (), room)

    def _persist_event(self, event: LoggedEvent) -> None:
        building = floor = None
        if event.room_id is not None:
            room = self.live.room_config(event.room_id)
            if room is not None:
                building, floor = room.building, str(room.floor)
        record = StoredEvent(event.kind, event.room_id, building, floor, event.at, event.data)
        self.history.submit((), ((event.seq, record),))

    def audit(self, actor: str, action: str, room_id: str | None, **detail: Any) -> None:
        """The audit log: an API action by `actor`, kept with the events (kind "audit")."""
        self.events.append(self.clock.now(), "audit", room_id, actor=actor, action=action, **detail)
        log.info(kv("audit", actor=actor, action=action, room=room_id, **detail))

    def automation_counts(self) -> tuple[int, int, int]:
        with self.live.lock:
            overrides = sum(
                1
                for claim in self.automation.actuator.claims(self.clock.now()).values()
                if claim.priority == Priority.MANUAL
            )
        return self.automation.commands_sent, self.automation.alerts_raised, overrides

    def _publish(self, topic: str, payload: bytes) -> None:
        self.transport.publish(topic, payload, qos=1)

    def _on_connection(self, up: bool) -> None:
        if up:
            self.pipeline.connection_up()

    @property
    def ready(self) -> bool:
        return self.transport.connected

    def _capture(self) -> dict[str, Any]:
        with self.live.lock:
            rooms = self.live.export()
            memory = self.automation.memory
            actuator = self.automation.actuator.export()
        return {
            "auto_rooms": rooms["auto_rooms"],
            "rule_memory": memory.to_dict(),
            "actuator": actuator,
            "device_id_scheme": identity.ID_SCHEME,
        }

    def _restore(self) -> None:
        saved = self.store.load_snapshot()
        # Room states: the committed ones, over those of a file from before they were
        # committed with the readings (schema 1 kept them in the snapshot).
        stored_rooms = {**saved.get("rooms", {}), **self.store.room_states()}
        states = {room_id: decode_as(RoomState, data) for room_id, data in stored_rooms.items()}
        if (saved or states) and saved.get("device_id_scheme") != identity.ID_SCHEME:
            states = migrate_device_ids(self.store, saved, states, self.settings, self.clock.now())
        with self.live.lock:
            restored = self.live.restore(states, saved.get("auto_rooms", []), self.clock.now())
            if "rule_memory" in saved:
                self.automation.memory = RuleMemory.from_dict(saved["rule_memory"])
            self.automation.actuator.restore(saved.get("actuator", {}))
        self.events.resume(
            (
                LoggedEvent(seq, at, cast(EventKind, kind), room, data)
                for seq, at, kind, room, data in self.store.recent_events(EVENTS_KEPT_IN_MEMORY)
            ),
            self.store.last_event_seq(),
        )
        if saved or stored_rooms:
            log.info(kv("state restored", rooms=restored, path=self.settings.storage.path))

    def start(self) -> None:
        self._restore()
        # Everything built so far (libraries, config, registry) lives as long as the
        # process: move it out of the collector's sight, so a full collection only
        # walks what changes at run time. That took a 57 ms pause down to a few ms
        # (benchmarks/actuation.py), which is event-to-actuation latency.
        gc.collect()
        gc.freeze()
        if self._manage_gc:
            self._gc.start()
        log.info(
            kv(
                "gateway starting",
                id=self.settings.gateway.id,
                rooms=len(self.settings.site.rooms),
                devices=len(self.settings.site.devices),
            )
        )
        self.ticker.start()
        if self.influx is not None:
            self.influx.start()
        self.history.start()
        self.snapshotter.start()
        self.transport.start(self.pipeline.handle, self._on_connection)

    def stop(self) -> None:
        # New messages stay unacknowledged (the broker delivers them next time);
        # what was handled is committed and acknowledged before we disconnect.
        self.transport.pause()
        self.ticker.stop()
        if not self.history.flush(SHUTDOWN_FLUSH_TIMEOUT):
            log.warning(kv("history not flushed in time", unacknowledged="redelivered on restart"))
        self.transport.stop()
        self.snapshotter.stop()
        self.history.stop()
        if self.influx is not None:
            # What it cannot send in time stays in its on-disk buffer for next start.
            self.influx.stop(timeout=1.0)
        self.store.close()
        self._gc.stop()
        log.info(kv("gateway stopped", received=self.stats.received, accepted=self.stats.accepted))
