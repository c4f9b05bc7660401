"""The gateway process: MQTT transport, ingest pipeline, live state and the ticker, wired once."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from prometheus_client.registry import CollectorRegistry

from devices import identity
from devices.commands import refusal
from devices.pseudonym import Pseudonymizer
from devices.registry import DeviceView
from gateway.automation.actuator import Decision
from gateway.automation.alert_lifecycle import AlertLifecycles, AlertView
from gateway.automation.event_log import EventKind, EventLog, LoggedEvent
from gateway.automation.runner import Automation, load_rule_set
from gateway.bookings.availability_inputs import AvailabilityInputs, AvailabilityVersion
from gateway.bookings.calendar_export import FEED_PAST, room_calendar
from gateway.bookings.calendar_import import ImportPlan, plan_import
from gateway.bookings.calendar_sync import SyncReport
from gateway.bookings.metrics import BookingsCollector
from gateway.bookings.service import BookingDraft, Bookings, InvalidBooking, Outcome
from gateway.clock import Clock, DeviceClock, SystemClock
from gateway.codec import decode_as, dumps
from gateway.config import Settings
from gateway.ingest.backpressure import IngestBacklog
from gateway.ingest.dead_letters import DeadLetter
from gateway.ingest.discovery import DiscoveredDevice, Discovery, DiscoveryCollector
from gateway.ingest.pipeline import IngestPipeline, Route
from gateway.ingest.routes import RouteTable
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveRoom, LiveState, RoomsView
from gateway.logs import kv
from gateway.mqtt.transport import Ack, InboundMessage, Transport
from gateway.push.fanout import EventPush, Fanout, StreamFilter, Subscription
from gateway.push.webhooks import WebhookDispatcher
from gateway.reports.archive import ArchivedFile, ArchiveEntry, ReportArchive, archive_url
from gateway.reports.catalog import build_report
from gateway.reports.rooms import report_rooms
from gateway.reports.service import build_service
from gateway.reports.table import Report, ReportWindow
from gateway.runtime.bookings_announcer import BookingsAnnouncer
from gateway.runtime.command_handler import CommandHandler
from gateway.runtime.gc_schedule import FullCollections, prefer_latency
from gateway.runtime.heap import glibc_heap
from gateway.runtime.metrics import GaugeSources, build_registry
from gateway.runtime.migrations import migrate_device_ids
from gateway.runtime.push_metrics import PushCollector, PushSources
from gateway.runtime.replica_metrics import ReplicaCommandsCollector
from gateway.runtime.report_scheduler import ReportScheduler, ScheduledReport
from gateway.runtime.room_state_publisher import RoomRenderer, RoomStatePublisher
from gateway.runtime.service_watchdog import HUNG_AFTER, stale_loop
from gateway.runtime.shard_role import ShardCollector, ShardRole
from gateway.runtime.snapshotter import Snapshotter
from gateway.runtime.ticker import Ticker
from gateway.runtime.topics import clock_topic, event_topic, routes
from gateway.shard_commands import COMMAND_ROOT
from gateway.storage.alert_store import AlertStateName
from gateway.storage.bookings_store import BookingQuery, NoShowCount, NoShowGroup
from gateway.storage.history_writer import HistoryWriter
from gateway.storage.open_stores import open_stores
from gateway.storage.records import KIND_OF_METRIC, DeviceState, Reading, StoredEvent, recorded_metric
from gateway.storage.report_queries import SqliteReportSource
from gateway.storage.sql import STORE_ERRORS
from gateway.storage.webhook_store import Delivery
from gateway.storage.webhook_store import Subscription as WebhookSubscription
from rules.bookings import (
    Booking,
    BookingPolicy,
    BookingStatus,
    Transition,
    current_and_next,
)
from rules.engine import RuleMemory, RulesError, RuleSet
from rules.occupancy import Occupancy
from rules.room_model import RoomState
from rules.types import Priority

if TYPE_CHECKING:
    from gateway.storage.influx.exporter import InfluxExporter

log = logging.getLogger("officegw.gateway")


EVENTS_KEPT_IN_MEMORY = 10_000
# The event kind each booking transition is logged (and published) as.
BOOKING_EVENT_KINDS: dict[BookingStatus, EventKind] = {
    BookingStatus.CHECKED_IN: "booking_checked_in",
    BookingStatus.RELEASED: "booking_released",
    BookingStatus.ENDED: "booking_ended",
}
# Of the 5 s a service manager gives us after SIGTERM.
SHUTDOWN_FLUSH_TIMEOUT = 3.0
# Reading resumes once half the bound's messages and bytes are committed: a lower
# mark would leave the writer idle before the next batch arrives, a higher one
# would stop and start the reader for every batch.
BACKLOG_RESUME_BELOW = 0.5


class NoLights(LookupError):
    """The room has no device of kind "light" to switch."""


class UnknownMetric(LookupError):
    """A history metric that is neither in the gateway's vocabulary (a field or a
    room-status name) nor recorded in the room."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        # Field names; each also answers to its status name (STATUS_NAME_OF_FIELD).
        self.known = known


class CommandRefused(ValueError):
    """The device is not of a kind that takes the command (a setpoint to a light)."""


@dataclass(frozen=True, slots=True)
class ManualCommand:
    """A person's command to one device, and what the actuator made of it."""

    device_id: str
    payload: dict[str, Any]
    decision: Decision


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """Where the gateway is in time, and how far it got with what it was sent."""

    gateway: str  # gateway.id (its clock topic is officegw/gateway/<id>/clock)
    mode: str  # "system" or "device"
    now: float
    # The time of the last tick that ran to its end (timers, rules, bookings); None before one.
    ticked_at: float | None
    messages_processed: int
    commands_sent: int


@dataclass(frozen=True, slots=True)
class RulesInForce:
    rules: RuleSet
    # Taken at the same moment as `rules` (a reload drops what belonged to rules gone).
    memory: RuleMemory


class Gateway:
    """The running gateway: everything behind the transport, assembled from the settings.

    The transport comes from outside (the CLI builds a `PahoTransport`; unit tests
    a `FakeTransport`): the gateway hands it the message handler when it starts.
    The HTTP API uses only the methods under "What the API may ask and command".

    `room_status` renders a room as GET /v1/rooms/{id} does (the composition root
    passes the API's renderer, so the two never differ); with it, room states are
    published retained on MQTT and streamed as `room` events. Without it, neither.

    `shard` is the role of a gateway that holds its shard's lock (storage.url set;
    taken by the CLI before the gateway is built): in /metrics and /readyz.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport,
        clock: Clock | None = None,
        manage_gc: bool = False,
        room_status: RoomRenderer | None = None,
        shard: ShardRole | None = None,
    ) -> None:
        self.settings = settings
        self._shard = shard
        if clock is None:
            clock = DeviceClock() if settings.clock.mode == "device" else SystemClock()
        self._clock: Clock = clock
        # Device time (simulations): ingest moves it, the ticker follows it.
        self._device_clock = clock if isinstance(clock, DeviceClock) else None
        # Broker connections opened since start: a rise means the gateway reconnected.
        self.connects = 0
        self.stats = IngestStats()
        self._manage_gc = manage_gc
        self._gc = FullCollections()
        # What a registration storm leaves free in the C heap goes back to the system
        # once the history writer is quiet after it (gateway.runtime.heap).
        heap = glibc_heap() if manage_gc else None
        self.transport = transport
        self._live = LiveState(settings)
        # The SQLite file (readings), and where events, states, bookings, webhooks and
        # alerts live: the same file, or the shared PostgreSQL (storage.url).
        self._stores = open_stores(settings)
        self._store = self._stores.history
        self._state = self._stores.state
        # Reports read the same file on connections of their own (one per report), and
        # the bookings from the shared store when there is one.
        self._reports = SqliteReportSource(Path(settings.storage.path), bookings=self._stores.shared)
        # Everything committed to the history is also exported, when influxdb.url is set.
        self._influx = _influx_exporter(settings)
        retention = settings.storage.retention
        self._fanout = Fanout()
        self._webhook_store = self._stores.webhooks
        self._webhooks = WebhookDispatcher(
            self._webhook_store,
            settings.push.webhooks,
            gateway_id=settings.gateway.id,
            place=self._place,
            on_pause=self._webhook_paused,
            clock=self._clock.now,
        )
        # What was read from the broker and is not yet committed, bounded (back-pressure).
        self._backlog = IngestBacklog(
            settings.storage.max_uncommitted_messages,
            settings.storage.max_uncommitted_bytes,
            resume_below=BACKLOG_RESUME_BELOW,
        )
        self._history = HistoryWriter(
            self._store,
            dumps,
            export=self._committed,
            acknowledge=transport.ack_many,
            settle=self._backlog.settle,
            max_delay=settings.storage.commit_interval,
            retention=(retention.readings * 86_400, retention.events * 86_400),
            clock=self._clock.now,
            shared=self._stores.sink,
            after_release=heap.trim if heap is not None else None,
        )
        self._events = EventLog(sink=self._persist_event)
        # Set once `_restore` took the stores' numbering; only then does a stop note its end.
        self._numbering_taken = False
        # Between the end of `start` and the beginning of `stop` (what `hung` judges).
        self._running = False
        self._alerts = AlertLifecycles(self._stores.alerts)
        # Bookings on a connection of their own to the same file, or in the shared store.
        self._booking_store = self._stores.bookings
        self._bookings = Bookings(
            self._booking_store,
            policy_for=self._booking_policy,
            presence=self._live.presence,
            on_transition=self._booking_transition,
            max_duration=settings.bookings.max_duration,
            retention=retention.events * 86_400,
        )
        # One calendar import at a time: each may take seconds of CPU (see
        # gateway.bookings.calendar_import); concurrent ones wait their turn.
        self._import_lock = threading.Lock()
        self._automation = Automation(
            settings,
            self._live,
            self._events,
            load_rule_set(settings),
            publish=self._publish,
            next_booking=self._bookings.next_start,
        )
        key = settings.gateway.pseudonym_key or secrets.token_hex(32)
        # Topics of devices mapped by the config, and of discovered ones as they come
        # and go; also which room a topic belongs to, for scoping dead letters.
        self._routes: RouteTable[Route] = RouteTable(routes(settings))
        self._discovery = (
            Discovery(
                settings,
                live=self._live,
                routes=self._routes,
                subscribe=transport.subscribe,
                unsubscribe=transport.unsubscribe,
                automation=self._automation,
            )
            if settings.discovery.enabled
            else None
        )
        # Kinds the site config gives; other devices' kinds are inferred from their reports.
        self._configured_kinds = {d.id: d.kind for d in settings.site.devices if d.kind is not None}
        self._pipeline = IngestPipeline(
            topic_prefix=settings.mqtt.topic_prefix,
            live=self._live,
            stats=self.stats,
            clock=self._clock,
            pseudonymizer=Pseudonymizer(key.encode()),
            automation=self._automation,
            routes=self._routes,
            announcements=self._discovery,
            reconnect_grace=settings.quality.reconnect_grace,
            recorder=self._record_message,
            record_readings=settings.storage.history,
            registry=settings.registry,
            device_clock=self._device_clock,
        )
        # A tenth of the shortest vacancy timeout keeps "vacant" within 10 % of its
        # deadline; never busier than 20 ticks a second nor lazier than one.
        interval = min(1.0, max(0.05, self._live.min_vacancy_timeout() / 10))
        self.ticker = Ticker(
            self._live,
            self._clock,
            interval,
            self._automation,
            release_throttled=self._pipeline.release_throttled,
            record_rooms=self._record_rooms,
            after_tick=self._bookings.tick,
            forget_silent=self._pipeline.forget_silent,
            device_clock=self._device_clock,
            on_ticked=self._say_ticked if self._device_clock is not None else lambda now: None,
        )
        self.snapshotter = Snapshotter(self._state, self._capture, settings.storage.snapshot_interval)
        state = settings.push.state
        self._room_states = (
            RoomStatePublisher(
                self._live,
                room_status,
                self._clock,
                self._fanout,
                publish=self._publish_retained if state.enabled else None,
                connected=lambda: self.transport.connected,
                min_interval=state.min_interval,
                buildings=frozenset(settings.gateway.buildings) or None,
                bookings=self._bookings.rooms,
            )
            if room_status is not None
            else None
        )
        # API replicas' commands for this shard's buildings, and the notices that tell
        # them its bookings changed (gateway/shard_commands.py).
        own_buildings = frozenset(settings.gateway.buildings) or None
        self._commands = (
            CommandHandler(
                self,
                set_lights=self._set_lights_for_replica,
                command_device=lambda device, payload, actor: self.command_device(
                    device, payload, actor=actor
                ),
                publish=self._publish,
                buildings=own_buildings,
            )
            if settings.gateway.commands
            else None
        )
        self._bookings_announcer = BookingsAnnouncer(
            self._bookings.rooms,
            lambda room_id: config.building if (config := self._live.room_config(room_id)) else None,
            self._publish,
            gateway_id=settings.gateway.id,
            connected=lambda: self.transport.connected,
        )
        self._archive = ReportArchive(settings.reports.archive_path(settings.storage.path))
        self._report_scheduler = ReportScheduler(
            settings,
            self._state,
            self._archive,
            self._archived_reports(),
            clock=self._clock,
            buildings=self._report_buildings,
            announce=self._report_archived,
        )

    # What is recorded (each called on the thread that produced it; never blocks)

    def _receive(self, message: InboundMessage) -> None:
        """The transport's message handler (its network thread): waits at the backlog's
        bound, so reading stops while the history catches up."""
        if message.topic.startswith(COMMAND_ROOT + "/"):
            # A replica's command: never a device's message (outside the device prefix).
            if self._commands is not None:
                self._commands.receive(message)
            elif message.ack is not None:
                message.ack()
            return
        self._backlog.admit(len(message.payload))
        self._pipeline.handle(message)

    def _record_message(
        self,
        readings: list[Reading],
        room: RoomState | None,
        device: DeviceState | None,
        ack: Ack | None,
        message_bytes: int | None,
    ) -> None:
        # With storage.history off there are no readings and no acks (paho acknowledged).
        if readings or room is not None or device is not None or ack is not None:
            self._history.submit(readings, (), room, ack, device, message_bytes)
        elif message_bytes is not None:
            self._backlog.settle(1, message_bytes)  # nothing to commit: no longer pending

    def _record_rooms(self, rooms: list[RoomState]) -> None:
        for room in rooms:
            self._history.submit((), (), room)

    def _persist_event(self, event: LoggedEvent) -> None:
        building, floor = self._place(event.room_id, event.data)
        record = StoredEvent(event.kind, event.room_id, building, floor, event.at, event.data)
        self._history.submit((), ((event.seq, record),))
        # Live stream clients (each a bounded queue; never blocks).
        self._fanout.offer(EventPush(event, building, floor))

    def _place(
        self, room_id: str | None, data: Mapping[str, Any] | None = None
    ) -> tuple[str | None, str | None]:
        """(building, floor) of an event: its room's; for an event of a whole building
        (a report archived: no room, `building` in its data) that building and no
        floor; (None, None) for an event of no room and no building, or a room never seen."""
        if room_id is None:
            building = data.get("building") if data is not None else None
            return (building, None) if isinstance(building, str) else (None, None)
        room = self._live.room_config(room_id)
        return (room.building, str(room.floor)) if room is not None else (None, None)

    def _committed(self, readings: Sequence[Reading], events: Sequence[StoredEvent]) -> None:
        """After each history commit (on the writer's thread)."""
        if self._influx is not None:
            self._influx.submit(readings, events)
        if events:
            # They are in the webhook outbox now, committed with them.
            self._webhooks.wake()

    def _webhook_paused(self, subscription_id: str, failures: int, error: str) -> None:
        self._events.append(
            self._clock.now(),
            "alert",
            None,
            rule="webhooks",
            severity="warning",
            message=f"webhook {subscription_id} paused after {failures} failed deliveries: {error}",
            subscription=subscription_id,
        )

    def _booking_policy(self, room_id: str) -> BookingPolicy:
        return self.settings.booking_policy_for(self._live.room_config(room_id))

    def _booking_transition(self, booking: Booking, transition: Transition) -> None:
        """A booking checked in, released or ended: logged, and published on MQTT."""
        kind = BOOKING_EVENT_KINDS[transition.status]
        data = {
            "booking": booking.id,
            "external_id": booking.external_id,
            "series_id": booking.series_id,
            "status": booking.status.value,
            "start": _iso(booking.start),
            "end": _iso(booking.end),
            "reason": transition.reason,
        }
        event = self._events.append(transition.at, kind, booking.room_id, **data)
        room = self._live.room_config(booking.room_id)
        building, floor = (room.building, room.floor) if room is not None else ("unknown", None)
        payload = {
            "seq": event.seq,
            "kind": kind,
            "at": _iso(transition.at),
            "building": building,
            "floor": floor,
            "room_id": booking.room_id,
            **data,
        }
        self._publish(event_topic(kind, building, booking.room_id), dumps(payload))
        log.info(
            kv(kind.replace("_", " "), booking=booking.id, room=booking.room_id, reason=transition.reason)
        )

    def _report_buildings(self) -> list[str]:
        """The buildings scheduled reports are written for: those of this gateway's shard
        (every building it knows of rooms in, without one)."""
        shard = set(self.settings.gateway.buildings)
        known = {room.config.building for room in self._live.rooms()}
        return sorted(known & shard if shard else known)

    def _report_archived(self, entry: ArchiveEntry) -> None:
        """A building's reports for a period were archived: logged as a `report` event
        (so on the stream and webhooks) and published on MQTT."""
        data = {
            "building": entry.building,
            "period": entry.period,
            "label": entry.label,
            "archive": entry.id,
            "start": _iso(entry.start),
            "end": _iso(entry.end),
            "files": [
                {"name": f.name, "format": f.format, "bytes": f.bytes, "url": archive_url(entry, f.name)}
                for f in entry.files
            ],
        }
        event = self._events.append(self._clock.now(), "report", None, **data)
        payload = {
            "seq": event.seq,
            "kind": "report",
            "at": _iso(event.at),
            "room_id": None,
            "floor": None,
            **data,
        }
        self._publish(event_topic("report", entry.building, entry.label), dumps(payload))

    # What the API may ask and command. Each method takes the locks it needs and
    # releases them before returning: callers never hold a lock of the gateway nor
    # reach into its parts.

    def now(self) -> float:
        return self._clock.now()

    def rooms(self) -> list[LiveRoom]:
        return self._live.rooms()

    def building_of(self, room_id: str) -> str | None:
        config = self._live.room_config(room_id)
        return config.building if config is not None else None

    def rooms_in(self, buildings: frozenset[str]) -> frozenset[str]:
        return frozenset(room.config.id for room in self._live.rooms() if room.config.building in buildings)

    def room(self, room_id: str) -> LiveRoom | None:
        return self._live.room(room_id)

    def devices(self, room_id: str | None = None) -> list[DeviceView]:
        """Every device, or those of `room_id`."""
        return self._live.device_views(self._clock.now(), room_id)

    def device(self, device_id: str) -> DeviceView | None:
        return self._live.device_view(device_id, self._clock.now())

    def discovered(self) -> list[DiscoveredDevice]:
        """Every device announced by discovery and what became of it (empty with
        discovery off)."""
        return self._discovery.report() if self._discovery is not None else []

    def explain_occupancy(self, room_id: str) -> dict[str, Any] | None:
        """The evidence, timers and reasoning behind the room's occupancy (instants in
        epoch seconds); None for a room never seen."""
        # Rooms are added, never removed: one known here is still known inside `explain`.
        if self._live.room_config(room_id) is None:
            return None
        return self._live.explain(room_id, self._clock.now())

    def command_device(self, device_id: str, payload: dict[str, Any], *, actor: str) -> Decision:
        """A person's command to one device: it pauses the rules for that device until
        the room is next vacant. Audited as `actor`'s. The device must be known and have
        a command topic (the API checks both first, to answer 404 and 409). Raises
        CommandRefused (not audited) when the device's kind does not take the command:
        the configured kind, else the one its reports show (a device of neither takes anything)."""
        view = self.device(device_id)
        if view is not None:
            kind: str | None = self._configured_kinds.get(device_id)
            if kind is None and (view.capabilities or view.last_state):
                kind = view.kind
            reason = refusal(kind, view.capabilities, payload)
            if reason is not None:
                raise CommandRefused(reason)
        with self._live.lock:
            room_id = self._live.devices.room_of(device_id)
            decision = self._automation.manual_command(device_id, payload, self._clock.now())
        self.audit(
            actor, "device_command", room_id, device=device_id, payload=payload, outcome=decision.outcome
        )
        return decision

    def set_room_lights(
        self, room_id: str, on: bool, brightness_pct: float | None, *, actor: str
    ) -> list[ManualCommand]:
        """Switches (and, when on, dims) every light of the room, as a person's command
        (see `command_device`). Raises NoLights when the room has none."""
        payload: dict[str, Any] = {"state": "ON" if on else "OFF"}
        if on and brightness_pct is not None:
            # Commands carry brightness on the 0-254 scale of the native dialect.
            payload["brightness"] = round(brightness_pct * 254 / 100)
        with self._live.lock:
            lights = self._live.devices.by_kind(room_id).get("light", ())
            if not lights:
                raise NoLights(room_id)
            now = self._clock.now()
            commands = [
                ManualCommand(device, payload, self._automation.manual_command(device, payload, now))
                for device in lights
            ]
        self.audit(actor, "room_lights", room_id, payload=payload, devices=list(lights))
        return commands

    def _set_lights_for_replica(
        self, room_id: str, on: bool, brightness_pct: float | None, actor: str
    ) -> list[tuple[str, dict[str, Any], Decision]]:
        return [
            (c.device_id, c.payload, c.decision)
            for c in self.set_room_lights(room_id, on, brightness_pct, actor=actor)
        ]

    def rules_in_force(self) -> RulesInForce:
        with self._live.lock:
            return RulesInForce(self._automation.rules, self._automation.memory)

    def reload_rules(self, *, actor: str) -> RulesInForce:
        """Reads the rules file again. A file that does not validate raises RulesError,
        one that cannot be read OSError; either way the rules in force stay. Audited
        as `actor`'s, refused or not."""
        try:
            with self._live.lock:
                self._automation.reload(self.settings, self._clock.now())
                in_force = RulesInForce(self._automation.rules, self._automation.memory)
        except RulesError as exc:
            self.audit(actor, "rules_reload", None, outcome="refused", problems=len(exc.problems))
            raise
        except OSError:
            self.audit(actor, "rules_reload", None, outcome="refused", problems=1)
            raise
        self.audit(actor, "rules_reload", None, outcome="reloaded")
        return in_force

    def events_page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        kind: EventKind | None = None,
        room_id: str | None = None,
        buildings: Collection[str] | None = None,
    ) -> list[LoggedEvent]:
        """Events after the cursor `after` (a sequence number), oldest first. With
        `buildings`, only events of rooms in those buildings: events of no room (rule
        reloads, audit of site-wide actions) are left out. Filtered before `limit`, so
        pages are full until the end of the log."""
        where = None if buildings is None else self._in_buildings(buildings)
        return self._events.page(after=after, limit=limit, kind=kind, room_id=room_id, where=where)

    def alerts_page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        room_id: str | None = None,
        buildings: Collection[str] | None = None,
        states: Collection[AlertStateName] | None = None,
    ) -> list[AlertView]:
        """Alerts with their lifecycle, as `events_page`; with `states`, only those in one of them."""
        visible = None if buildings is None else self._in_buildings(buildings)
        alerts = self._alerts

        def wanted(event: LoggedEvent) -> bool:
            return (visible is None or visible(event)) and (
                states is None or alerts.of(event.seq).state in states
            )

        events = self._events.page(after=after, limit=limit, kind="alert", room_id=room_id, where=wanted)
        return [self._alert_view(event) for event in events]

    def alert(self, seq: int) -> AlertView | None:
        """The alert with this id (its event's seq), from memory or the store; None when
        there is none (or its event was pruned by retention)."""
        found = self._events.page(after=seq - 1, limit=1) if seq > 0 else []
        if found and found[0].seq == seq:
            event: LoggedEvent | None = found[0]
        else:
            stored = self._state.event(seq) if seq > 0 else None
            event = (
                None
                if stored is None
                else LoggedEvent(stored[0], stored[1], cast(EventKind, stored[2]), stored[3], stored[4])
            )
        if event is None or event.kind != "alert":
            return None
        return self._alert_view(event)

    def acknowledge_alert(self, seq: int, *, actor: str, note: str | None) -> AlertView:
        """Acknowledges an alert (see `alert`; the caller checks it exists and may be
        seen). An alert acknowledged before keeps its first acknowledgement and nothing
        is audited; raises AlreadyResolved for a resolved one. Audited as `actor`'s."""
        view = self._known_alert(seq)
        lifecycle, changed = self._alerts.acknowledge(seq, actor, note, self._clock.now())
        if changed:
            self._audit_alert(actor, "alert_ack", view, note)
        return AlertView(view.event, view.building, lifecycle)

    def resolve_alert(self, seq: int, *, actor: str, note: str | None) -> AlertView:
        """Resolves an alert, acknowledging it too if nobody had (in the same instant).
        Raises AlreadyResolved. Audited as `actor`'s."""
        view = self._known_alert(seq)
        lifecycle = self._alerts.resolve(seq, actor, note, self._clock.now())
        self._audit_alert(actor, "alert_resolve", view, note)
        return AlertView(view.event, view.building, lifecycle)

    def _known_alert(self, seq: int) -> AlertView:
        view = self.alert(seq)
        if view is None:
            raise LookupError(f"no alert {seq}")
        return view

    def _alert_view(self, event: LoggedEvent) -> AlertView:
        return AlertView(event, self._place(event.room_id, event.data)[0], self._alerts.of(event.seq))

    def _audit_alert(self, actor: str, action: str, view: AlertView, note: str | None) -> None:
        data = view.event.data
        self.audit(
            actor,
            action,
            view.event.room_id,
            alert=view.event.seq,
            rule=data.get("rule"),
            severity=data.get("severity"),
            note=note,
        )

    def _in_buildings(self, buildings: Collection[str]) -> Callable[[LoggedEvent], bool]:
        def visible(event: LoggedEvent) -> bool:
            building = self._place(event.room_id, event.data)[0]
            return building is not None and building in buildings

        return visible

    def dead_letters_page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        reason: str | None = None,
        buildings: Collection[str] | None = None,
    ) -> list[DeadLetter]:
        """Rejected messages (the newest 1,000) after the cursor `after`, oldest first.
        With `buildings`, only letters whose topic belongs to those buildings alone
        (see `_topic_buildings`); letters of no building are left out."""

        def visible(letter: DeadLetter) -> bool:
            assert buildings is not None
            found = self._topic_buildings(letter.topic)
            return bool(found) and all(b in buildings for b in found)

        return self._pipeline.dead_letters.page(
            after=after, limit=limit, reason=reason, where=None if buildings is None else visible
        )

    def _topic_buildings(self, topic: str) -> frozenset[str]:
        """The buildings a topic speaks for: a mapped device's room's building, or for a
        native topic its building level and the buildings of the room and device it
        names, when those are known (a topic naming a room of another building belongs
        to both). Empty for a topic of no building (the bare topic prefix)."""
        route: Route | None = self._routes.get(topic)
        if route is not None:
            room = self._live.room_config(route.room_id)
            return frozenset() if room is None else frozenset({room.building})
        prefix = self.settings.mqtt.topic_prefix
        if not topic.startswith(prefix + "/"):
            return frozenset()
        levels = topic[len(prefix) + 1 :].split("/")
        found = {levels[0]} if levels[0] else set()
        if len(levels) > 2:
            room = self._live.room_config(levels[2])
            if room is not None:
                found.add(room.building)
        if len(levels) > 3:
            device_room = self._live.devices.room_of(levels[3])
            room = self._live.room_config(device_room) if device_room is not None else None
            if room is not None:
                found.add(room.building)
        return frozenset(found)

    def history_metric(self, room_id: str, name: str) -> str:
        """The field the room's readings of `name` are recorded under: `co2` for the
        status name `co2_ppm` or for `co2` itself. UnknownMetric unless it is a
        metric of the gateway's vocabulary or one recorded in the room."""
        metric = recorded_metric(name)
        recorded = self._store.metrics(room_id)
        if metric in KIND_OF_METRIC or metric in recorded:
            return metric
        raise UnknownMetric(name, sorted({*KIND_OF_METRIC, *recorded}))

    def room_history(
        self, room_id: str, metric: str, since: float, until: float, step: float
    ) -> list[tuple[float, float, float, float, int]]:
        """(bucket start, mean, min, max, count) for each bucket of `step` seconds,
        aligned to multiples of `step` since the epoch, that has readings of
        `metric` (a recorded field name) in the room within [since, until)."""
        return self._store.history(room_id, metric, since, until, step)

    # Reports (computed from the store, on read connections of their own: Store.reader)

    def service_report(self, window: ReportWindow) -> Report:
        """Command confirmation and alert response times (gateway/reports/service.py)."""
        lifecycles = None
        if self._stores.shared is not None:  # alert states are in the shared store, not the file
            lifecycles = {a: (s.acked_at, s.resolved_at) for a, s in self._stores.alerts.all().items()}
        return build_service(self._store, window, self.settings, snapshot=self._state, lifecycles=lifecycles)

    def _archived_reports(self) -> list[ScheduledReport]:
        """The reports the schedule writes for every building, in the summary's order."""
        return [
            ("utilization", lambda window: self.report("utilization", window, buildings=None)),
            ("energy", lambda window: self.report("energy", window, buildings=None)),
            ("comfort", lambda window: self.report("comfort", window, buildings=None)),
            ("service", self.service_report),
        ]

    def archived_reports(self, buildings: frozenset[str] | None) -> list[ArchiveEntry]:
        """The scheduled reports written so far (of `buildings`; None: all), newest first."""
        return self._archive.entries(buildings)

    def archived_file(self, building: str, label: str, name: str) -> tuple[Path, ArchivedFile] | None:
        """One archived file, if the archive of that building and period lists it."""
        return self._archive.file(building, label, name)

    # Reports (GET /v1/reports/...)

    def report(self, name: str, window: ReportWindow, *, buildings: Collection[str] | None) -> Report:
        """The report `name` (gateway.reports.catalog.BUILDERS) over `window`, of the rooms
        in `buildings` (None: every room). Raises ReportRefused past the bounds of
        `reports.max_days` and `reports.max_rows`."""
        configs = [room.config for room in self._live.rooms()]
        if buildings is not None:
            configs = [config for config in configs if config.building in buildings]
        rooms = report_rooms(configs, self.settings)
        return build_report(name, self._reports, window, rooms, self.settings.reports)

    # The event stream (GET /v1/stream)

    def open_stream(self, selector: StreamFilter, wakeup: Callable[[], None]) -> Subscription:
        """A live feed of events and room states that `selector` accepts, from now on, in
        a queue of `push.stream.queue_size`; `wakeup` (which must not block) is called
        from the producing thread when the queue stops being empty, overflows or closes."""
        return self._fanout.open(selector, self.settings.push.stream.queue_size, wakeup)

    def close_stream(self, subscription: Subscription) -> None:
        self._fanout.close(subscription)

    def end_streams(self) -> None:
        """Ends every open stream (the HTTP server is shutting down)."""
        self._fanout.close_all()

    def last_event_seq(self) -> int:
        return self._events.last_seq

    def events_since(self, after: int, limit: int) -> list[EventPush]:
        """Up to `limit` events after the sequence number `after`, oldest first, with their
        place: from memory, or from the store for those memory no longer holds."""
        recent = self._events.page(after=after, limit=limit)
        if recent and recent[0].seq > after + 1:
            older = self._state.events_after(after, recent[0].seq, limit)
            if older:
                recent = [
                    LoggedEvent(seq, at, cast(EventKind, kind), room, data)
                    for seq, at, kind, room, data in older
                ]
        return [EventPush(event, *self._place(event.room_id, event.data)) for event in recent]

    # Webhooks (admin)

    def webhooks(self) -> list[WebhookSubscription]:
        return self._webhook_store.all()

    def webhook(self, subscription_id: str) -> WebhookSubscription | None:
        return self._webhook_store.get(subscription_id)

    def create_webhook(
        self, url: str, kinds: list[str], buildings: list[str], secret: str, *, actor: str
    ) -> WebhookSubscription:
        """A subscription for events committed from now on (the URL is checked by the caller:
        gateway.push.delivery.url_problem)."""
        created = self._webhook_store.create(
            url, kinds, buildings, secret, created_by=actor, at=self._clock.now()
        )
        self.audit(actor, "webhook_create", None, webhook=created.id, kinds=kinds, buildings=buildings)
        return created

    def delete_webhook(self, subscription_id: str, *, actor: str) -> bool:
        deleted = self._webhook_store.delete(subscription_id)
        if deleted:
            self.audit(actor, "webhook_delete", None, webhook=subscription_id)
        return deleted

    def resume_webhook(self, subscription_id: str, *, actor: str) -> WebhookSubscription | None:
        resumed = self._webhook_store.resume(subscription_id)
        if resumed is not None:
            self.audit(actor, "webhook_resume", None, webhook=subscription_id)
            self._webhooks.wake()
        return resumed

    def webhook_deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        """The subscription's newest delivery attempts first."""
        return self._webhook_store.deliveries(subscription_id, limit)

    def room_readings(
        self,
        room_id: str,
        metric: str,
        since: float,
        until: float,
        *,
        after: tuple[float, str] | None = None,
        limit: int,
    ) -> list[tuple[float, str, float]]:
        """(ts, device, value) of the room's readings of `metric` in [since, until),
        in (ts, device) order, past the cursor `after`, at most `limit`."""
        return self._store.readings(room_id, metric, since, until, after=after, limit=limit)

    def room_metrics(self, room_id: str) -> list[tuple[str, float, float]]:
        """(metric, first ts, last ts) of every metric the room has readings of."""
        return self._store.series_spans(room_id)

    # Bookings. `visible` says which rooms the caller may see: a booking in another
    # room is reported as not found.

    def _bookable(self, room_id: str) -> None:
        room = self._live.room_config(room_id)
        if room is None or not room.bookable:
            raise InvalidBooking(f"room {room_id!r} is not bookable")

    def create_booking(
        self, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> tuple[Booking, Outcome]:
        """A new booking; or, for a known `external_id`, that booking updated (a re-send).
        Raises InvalidBooking, BookingConflict (overlap: `clash`) or StorageUnavailable."""
        self._bookable(draft.room_id)
        booking, outcome = self._bookings.create(draft, self._clock.now(), actor=actor, visible=visible)
        if outcome != "unchanged":
            self.audit(
                actor,
                f"booking_{'create' if outcome == 'created' else 'update'}",
                booking.room_id,
                booking=booking.id,
                external_id=booking.external_id,
            )
        return booking, outcome

    def update_booking(
        self, booking_id: str, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> Booking:
        self._bookable(draft.room_id)
        booking, outcome = self._bookings.update(booking_id, draft, self._clock.now(), visible=visible)
        if outcome != "unchanged":
            self.audit(actor, "booking_update", booking.room_id, booking=booking.id)
        return booking

    def cancel_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking:
        booking = self._bookings.cancel(booking_id, self._clock.now(), visible=visible)
        self.audit(actor, "booking_cancel", booking.room_id, booking=booking.id)
        return booking

    def check_in_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking:
        booking = self._bookings.check_in(booking_id, self._clock.now(), visible=visible)
        self.audit(actor, "booking_checkin", booking.room_id, booking=booking.id)
        return booking

    def book_now(self, room_id: str, seconds: float, *, actor: str) -> Booking:
        """An ad-hoc booking from now (a room panel), checked in at once; refused
        (BookingConflict) when the room is occupied or booked in that time."""
        self._bookable(room_id)
        room = self._live.room(room_id)
        occupied = room is not None and room.state.occupancy.state == Occupancy.OCCUPIED
        booking = self._bookings.book_now(room_id, seconds, self._clock.now(), actor=actor, occupied=occupied)
        self.audit(actor, "booking_book_now", room_id, booking=booking.id)
        return booking

    def import_calendar(
        self, data: bytes, *, actor: str, visible: Callable[[str], bool]
    ) -> tuple[ImportPlan, SyncReport]:
        """An iCalendar file's events booked into the rooms `visible` says the caller may
        see, its recurring series expanded over `bookings.import_horizon` days. Raises
        CalendarError (the file cannot be read) or StorageUnavailable (nothing written).
        Audited once, with the counts."""
        b = self.settings.bookings
        rooms = [room.config for room in self._live.rooms() if visible(room.config.id)]
        with self._import_lock:
            now = self._clock.now()
            plan = plan_import(
                data,
                rooms,
                now=now,
                horizon=b.import_horizon * 86_400,
                max_occurrences=b.import_max_occurrences,
                timezone=ZoneInfo(self.settings.site.timezone),
            )
            report = self._bookings.sync(plan, now, actor=actor, visible=visible)
        self.audit(
            actor,
            "bookings_import",
            None,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            cancelled=report.cancelled,
            skipped=len(report.skipped),
        )
        return plan, report

    def room_calendar(self, room_id: str, *, details: bool) -> bytes | None:
        """The room's bookings that hold it, from a week ago to the import horizon, as
        an iCalendar feed (titles and organizers with `details`); None for no such room."""
        room = self._live.room_config(room_id)
        if room is None:
            return None
        now = self._clock.now()
        since, until = now - FEED_PAST, now + self.settings.bookings.import_horizon * 86_400
        bookings = [b for b in self._bookings.of_room(room_id) if b.end > since and b.start < until]
        return room_calendar(room, bookings, details=details)

    def booking(self, booking_id: str) -> Booking | None:
        return self._bookings.get(booking_id)

    def bookings_page(self, query: BookingQuery) -> list[Booking]:
        return self._bookings.find(query)

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]:
        """Released (no-show) bookings per organizer or series, of bookings starting in [start, end)."""
        return self._bookings.no_shows(by, start, end, rooms)

    def availability_version(self) -> AvailabilityVersion:
        """Changes whenever a booking, the set of rooms, a room's occupancy or a presence
        sensor's being online may have changed (read without locks: cheap enough for
        every request)."""
        live = self._live
        return AvailabilityVersion(
            self._bookings.version, live.rooms_version, live.occupancy_version, live.sensors_version
        )

    def availability_inputs(self, *, includes_now: bool) -> AvailabilityInputs:
        """The bookable rooms, every room's state and, for a window that includes now,
        the rooms whose sensors are offline; with the version taken just before."""
        version = self.availability_version()
        booked = self._bookings.rooms()
        rooms, states = self._live.availability_view()
        offline = self._live.rooms_with_sensors_offline() if includes_now else frozenset()
        return AvailabilityInputs(version, booked, rooms, states, offline)

    def rooms_view(self) -> tuple[RoomsView, Mapping[str, tuple[Booking, ...]]]:
        """Every room's description and state, and every room's active bookings (a
        snapshot, replaced whole on every booking write): what room listings are made of."""
        return self._live.rooms_view(), self._bookings.rooms()

    def bookings_of_room(self, room_id: str) -> tuple[Booking, ...]:
        """The room's active bookings, sorted by start (the tuple `rooms_view` holds)."""
        return self._bookings.of_room(room_id)

    def room_booking(self, room_id: str) -> tuple[Booking | None, Booking | None]:
        """The room's booking in progress and its next one."""
        return current_and_next(self._bookings.of_room(room_id), self._clock.now())

    def room_bookings(self) -> dict[str, tuple[Booking | None, Booking | None]]:
        """Per room with bookings: (the booking in progress, the next one)."""
        now = self._clock.now()
        return {room: current_and_next(bookings, now) for room, bookings in self._bookings.rooms().items()}

    def health_checks(self) -> dict[str, bool]:
        """What readiness is judged on: "mqtt", "storage" and, with the export on, "influxdb";
        "shard_lock" (always true: a gateway that loses it exits) with storage.url set."""
        checks = {"mqtt": self.ready, "storage": self._history.stats.healthy}
        if self._shard is not None:
            checks["shard_lock"] = self._shard.active
        if self._influx is not None:
            checks["influxdb"] = self._influx.stats().healthy
        return checks

    def metrics_registry(self) -> CollectorRegistry:
        """A new Prometheus registry reading this gateway at scrape time (one per app:
        see `build_registry`)."""
        influx = self._influx
        registry = build_registry(
            self.stats,
            GaugeSources(
                counts=self._live.counts,
                connected=lambda: self.transport.connected,
                energy=lambda: self._live.energy(self._clock.now()),
                automation=self.automation_counts,
                quality=lambda: self._live.quality_flags(self._clock.now()),
                history=lambda: self._history.stats,
                influx=influx.stats if influx is not None else lambda: None,
                broker=self.transport.broker_stats,
                backlog=self._backlog.stats,
                subscriptions_pending=self.transport.subscriptions_pending,
                clock=self._clock_figures,
                connects=lambda: self.connects,
            ),
        )
        states = self._room_states
        registry.register(
            PushCollector(
                PushSources(
                    fanout=self._fanout,
                    states_published=lambda: states.published if states is not None else 0,
                    webhooks=self._webhooks.stats,
                    webhook_counts=self._webhook_counts,
                )
            )
        )
        registry.register(BookingsCollector(self._bookings))
        commands = self._commands
        registry.register(
            ReplicaCommandsCollector(
                commands.outcomes if commands is not None else dict,
                lambda: self._bookings_announcer.announced,
            )
        )
        if self._shard is not None:
            registry.register(ShardCollector(self._shard))
        if self._discovery is not None:
            registry.register(DiscoveryCollector(self._discovery))
        return registry

    def _say_ticked(self, now: float) -> None:
        """On device time, after each tick: how far the gateway got, pushed to whoever
        drives the clock (a simulator waits on it instead of asking GET /v1/clock)."""
        status = self.clock_status()
        payload = {
            "gateway": self.settings.gateway.id,
            "ticked_at": now,
            "messages_processed": status.messages_processed,
            "commands_sent": status.commands_sent,
        }
        self.transport.publish(clock_topic(self.settings.gateway.id), dumps(payload), qos=0)

    def clock_status(self) -> ClockStatus:
        """What a simulator driving the gateway in device time waits on (GET /v1/clock)."""
        mode, now, ticked = self._clock_figures()
        return ClockStatus(
            self.settings.gateway.id, mode, now, ticked, self.stats.processed, self._automation.commands_sent
        )

    def _clock_figures(self) -> tuple[str, float, float | None]:
        """(clock mode, now, the time the ticker last ticked at)."""
        mode = "system" if self._device_clock is None else "device"
        return mode, self._clock.now(), self.ticker.ticked_at

    def _webhook_counts(self) -> tuple[int, int, int] | None:
        try:
            return self._webhook_store.counts()
        except STORE_ERRORS:
            return None

    def audit(self, actor: str, action: str, room_id: str | None, **detail: Any) -> None:
        """The audit log: an API action by `actor`, kept with the events (kind "audit")."""
        self._events.append(self._clock.now(), "audit", room_id, actor=actor, action=action, **detail)
        log.info(kv("audit", actor=actor, action=action, room=room_id, **detail))

    def counts(self) -> tuple[int, int, int]:
        """(rooms, occupied rooms, devices)."""
        return self._live.counts()

    def automation_counts(self) -> tuple[int, int, int]:
        """(commands sent, alerts raised, devices under a manual override)."""
        with self._live.lock:
            overrides = sum(
                1
                for claim in self._automation.actuator.claims(self._clock.now()).values()
                if claim.priority == Priority.MANUAL
            )
        return self._automation.commands_sent, self._automation.alerts_raised, overrides

    def _publish(self, topic: str, payload: bytes) -> None:
        self.transport.publish(topic, payload, qos=1)

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        self.transport.publish(topic, payload, qos=1, retain=True)

    def _on_connection(self, up: bool) -> None:
        if up:
            self.connects += 1
            resumed = self._shard.session_resumed() if self._shard is not None else None
            if resumed is not None:
                shard = self.settings.gateway.id
                log.info(kv("shard session resumed", shard=shard, after_lock_s=round(resumed, 3)))
            self._pipeline.connection_up()
            if self._room_states is not None:
                self._room_states.resend()

    @property
    def running(self) -> bool:
        """Started (stores open, state restored, the broker connection under way) and not stopping."""
        return self._running

    def hung(self, after: float = HUNG_AFTER) -> str | None:
        """Why the gateway is hung (its ticker or history writer has not come round for
        `after` s), or None; None too before it started and once it stops."""
        if not self._running:
            return None
        beats = (("ticker", self.ticker.beat_at), ("history writer", self._history.beat_at))
        return stale_loop(beats, time.monotonic(), after)

    @property
    def ready(self) -> bool:
        # Not at CONNACK: until the broker has acknowledged our subscriptions a message
        # published now may miss us (RabbitMQ routes nothing to a binding not made yet).
        return self.transport.receiving

    def _capture(self) -> dict[str, Any]:
        with self._live.lock:
            rooms = self._live.export()
            memory = self._automation.memory
            actuator = self._automation.actuator.export()
        captured = {
            "auto_rooms": rooms["auto_rooms"],
            "rule_memory": memory.to_dict(),
            "actuator": actuator,
            "device_id_scheme": identity.ID_SCHEME,
        }
        # Announcements only when they changed: the snapshot keeps a key not saved again.
        announcements = self._discovery.export() if self._discovery is not None else None
        if announcements is not None:
            captured["discovery"] = announcements
        return captured

    def _restore(self) -> None:
        saved = self._state.load_snapshot()
        # Room states: the committed ones, over those of a file from before they were
        # committed with the readings (schema 1 kept them in the snapshot).
        stored_rooms = {**saved.get("rooms", {}), **self._state.room_states()}
        states = {room_id: decode_as(RoomState, data) for room_id, data in stored_rooms.items()}
        if (saved or states) and saved.get("device_id_scheme") != identity.ID_SCHEME:
            states = migrate_device_ids(self._state, saved, states, self.settings, self._clock.now())
        # Committed with the room states: where each device's readings had reached.
        devices = [
            DeviceState(device, room, data.get("ts"), data.get("digest"), data.get("last_state") or {})
            for device, (room, data) in self._state.device_states().items()
        ]
        with self._live.lock:
            restored = self._live.restore(states, saved.get("auto_rooms", []), self._clock.now())
        if self._discovery is not None and isinstance(saved.get("discovery"), dict):
            # Before the broker connection opens: what discovered devices published
            # meanwhile (queued in the session) must find their routes.
            announced = self._discovery.restore(saved["discovery"], self._clock.now())
            for state in announced.rooms.values():
                self._history.submit((), (), state)
        with self._live.lock:
            self._pipeline.restore_devices(devices)
            if "rule_memory" in saved:
                self._automation.memory = RuleMemory.from_dict(saved["rule_memory"])
            self._automation.actuator.restore(saved.get("actuator", {}))
        self._alerts.load()
        self._events.resume(
            (
                LoggedEvent(seq, at, cast(EventKind, kind), room, data)
                for seq, at, kind, room, data in self._state.recent_events(EVENTS_KEPT_IN_MEMORY)
            ),
            # Never below the file's (a shared store behind it was caught up at open),
            # and past a gap after a crash (gateway/storage/event_numbering.py).
            self._stores.take_numbering(),
        )
        self._numbering_taken = True
        if saved or stored_rooms or devices:
            log.info(
                kv("state restored", rooms=restored, devices=len(devices), path=self.settings.storage.path)
            )
        bookings = self._bookings.load()
        if bookings:
            log.info(kv("bookings loaded", active=bookings))

    def start(self) -> None:
        self._restore()
        if self._manage_gc:
            # Full collections on our schedule (the first one, a few seconds from
            # now, freezes what start-up built): see FullCollections. Only for a
            # process that owns the interpreter: in a test run freezing would pin
            # every earlier test's objects.
            self._gc.start()
            prefer_latency(self.settings.gateway.gil_switch_interval)
        log.info(
            kv(
                "gateway starting",
                id=self.settings.gateway.id,
                clock=self.settings.clock.mode if self._device_clock is None else "device",
                rooms=len(self.settings.site.rooms),
                devices=len(self.settings.site.devices),
            )
        )
        self.ticker.start()
        if self._influx is not None:
            self._influx.start()
        self._history.start()
        self.snapshotter.start()
        self._webhooks.start()
        self._report_scheduler.start()
        if self._room_states is not None:
            self._room_states.start()
        self._bookings_announcer.start()
        if self._commands is not None:
            self._commands.start()
        self.transport.start(self._receive, self._on_connection)
        self._running = True

    def stop(self) -> None:
        self._running = False
        # New messages stay unacknowledged (the broker delivers them next time);
        # what was handled is committed and acknowledged before we disconnect.
        self.transport.pause()
        # A network thread waiting at the bound must not hold up the shutdown.
        self._backlog.close()
        self.ticker.stop()
        self._report_scheduler.stop()
        self._fanout.close_all()
        if self._room_states is not None:
            self._room_states.stop()
        if self._commands is not None:
            self._commands.stop()
        self._bookings_announcer.stop()
        if not self._history.flush(SHUTDOWN_FLUSH_TIMEOUT):
            log.warning(kv("history not flushed in time", unacknowledged="redelivered on restart"))
        self.transport.stop()
        self.snapshotter.stop()
        self._history.stop()
        self._webhooks.stop()
        if self._influx is not None:
            # What it cannot send in time stays in its on-disk buffer for next start.
            self._influx.stop(timeout=1.0)
        if self._numbering_taken:
            self._note_numbering_end()
        self._stores.close()
        self._gc.stop()
        log.info(kv("gateway stopped", received=self.stats.received, accepted=self.stats.accepted))

    def _note_numbering_end(self) -> None:
        try:
            self._stores.mark_numbering_end(self._events.last_seq)
        except Exception as exc:  # the stores failing at stop: the next start leaves a gap
            log.warning(kv("clean stop not noted; the next start numbers events past a gap", error=str(exc)))


def _influx_exporter(settings: Settings) -> InfluxExporter | None:
    """The InfluxDB exporter when `influxdb.url` is set. influxdb-client (with reactivex
    under it) is imported only then: it is a sixth of the gateway's import time."""
    if settings.influxdb is None or not settings.influxdb.enabled:
        return None
    from gateway.storage.influx.exporter import InfluxExporter

    return InfluxExporter.from_settings(settings)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
