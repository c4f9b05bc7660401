"""An API replica's runtime (`officegw api`): what the REST API asks of it, answered
from the retained room states, the shared store and the owning gateways' answers to
commands. It ingests no device, runs no rule and writes nothing itself.

Answers depend only on what every replica reads alike (the retained topics, the
store, the gateways' answers), so any number of replicas behind a load balancer
answer the same, up to the delays in README "API replicas".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

from gateway.automation.event_log import EventKind, LoggedEvent
from gateway.bookings.availability_inputs import AvailabilityInputs, AvailabilityVersion
from gateway.bookings.calendar_export import FEED_PAST, room_calendar
from gateway.bookings.scope import RoomScope
from gateway.bookings.service import (
    BookingDraft,
    BookingNotFound,
    InvalidBooking,
    Outcome,
)
from gateway.clock import Clock, SystemClock
from gateway.config import RoomConfig, Settings
from gateway.logs import kv
from gateway.mqtt.transport import InboundMessage, Transport
from gateway.push.fanout import EventPush, RoomPush, StreamFilter, Subscription
from gateway.replica.booking_view import BookingView
from gateway.replica.command_client import CommandClient, NotAnswered
from gateway.replica.event_feed import EventFeed
from gateway.replica.forwarding import (
    CommandFailed,
    ShardUnanswered,
    booking_of,
    booking_refusal,
    buildings_of,
    draft_args,
)
from gateway.replica.room_documents import RoomDocument, RoomDocuments
from gateway.replica.stores import ReplicaStores
from gateway.runtime.periodic import PeriodicThread
from gateway.runtime.service_watchdog import HUNG_AFTER, stale_loop
from gateway.shard_commands import BOOKINGS_ROOT, REPLY_ROOT, CommandReply, Operation
from gateway.storage.bookings_store import BookingQuery, NoShowCount, NoShowGroup
from rules.bookings import Booking, current_and_next
from rules.occupancy import OccupancyState
from rules.room_model import RoomState

log = logging.getLogger("officegw.replica")

# How often a notice of changed bookings is looked for (the reload itself is a query).
BOOKINGS_CHECK_INTERVAL = 0.05


class Replica:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport,
        stores: ReplicaStores,
        name: str,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.transport = transport
        self._clock: Clock = clock or SystemClock()
        self._stores = stores
        self.documents = RoomDocuments()
        self.bookings = BookingView(stores.bookings)
        self.commands = CommandClient(name, self._publish, timeout=settings.replica.command_timeout)
        # Rooms and devices of the site config: where a room not yet published is, and
        # which building's gateway a device belongs to.
        self._configured: dict[str, RoomConfig] = {room.id: room for room in settings.site.rooms}
        self._device_rooms = {device.id: device.room for device in settings.site.devices}
        self._reload_wanted = threading.Event()
        self._bookings_loop = PeriodicThread(
            "replica-bookings", BOOKINGS_CHECK_INTERVAL, self._check_bookings
        )
        self.events = EventFeed(
            stores.events,
            self._place,
            queue_size=settings.push.stream.queue_size,
            poll_interval=settings.replica.events_poll,
        )
        # Availability inputs, rebuilt when the rooms or their occupancy change.
        self._availability_lock = threading.Lock()
        self._availability_key: tuple[int, int] | None = None
        self._bookable: tuple[RoomConfig, ...] = ()
        self._states: Mapping[str, RoomState] = {}
        self._offline: frozenset[str] = frozenset()
        # Between the end of `start` and the beginning of `stop` (what `hung` judges).
        self._running = False

    # Running

    def start(self) -> None:
        self.bookings.reload()
        log.info(kv("replica starting", id=self.name, rooms_configured=len(self._configured)))
        self._bookings_loop.start()
        self.events.start()
        self.transport.start(self._receive)
        self._running = True

    @property
    def running(self) -> bool:
        return self._running

    def hung(self, after: float = HUNG_AFTER) -> str | None:
        """Why the replica is hung (its bookings reload or event feed loop has not come
        round for `after` s: gateway/runtime/service_watchdog.py), or None."""
        if not self._running:
            return None
        beats = (("bookings reload", self._bookings_loop.beat_at), ("event feed", self.events.beat_at))
        return stale_loop(beats, time.monotonic(), after)

    def stop(self) -> None:
        self._running = False
        self.transport.pause()
        self.events.stop()
        self.transport.stop()
        self._bookings_loop.stop()
        self._stores.close()
        log.info(kv("replica stopped", id=self.name))

    @property
    def ready(self) -> bool:
        # As a gateway's: once the broker acknowledged the subscriptions (Transport.receiving).
        return self.transport.receiving

    def health_checks(self) -> dict[str, bool]:
        return {"mqtt": self.transport.receiving, "storage": self.bookings.reloads > 0}

    def _publish(self, topic: str, payload: bytes) -> None:
        self.transport.publish(topic, payload, qos=1)

    def _receive(self, message: InboundMessage) -> None:
        topic = message.topic
        if topic.startswith(REPLY_ROOT + "/"):
            self.commands.receive(message.payload)
        elif topic.startswith(BOOKINGS_ROOT + "/"):
            self._reload_wanted.set()
        else:
            document = self.documents.take(topic, message.payload)
            if document is not None:
                self.events.offer(
                    RoomPush(document.room_id, document.building, document.floor, document.json)
                )

    def _check_bookings(self) -> None:
        due = time.monotonic() - self.bookings.loaded_at >= self.settings.replica.bookings_reload
        if self._reload_wanted.is_set() or due:
            self._reload_wanted.clear()
            self.bookings.reload()

    # Rooms

    def now(self) -> float:
        return self._clock.now()

    def room_documents(self) -> Mapping[str, RoomDocument]:
        return self.documents.rooms()

    def room_document(self, room_id: str) -> RoomDocument | None:
        return self.documents.room(room_id)

    def building_of(self, room_id: str) -> str | None:
        """The room's building: as published, else as configured; None for no such room."""
        building = self.documents.building_of(room_id)
        if building is None:
            config = self._configured.get(room_id)
            building = config.building if config is not None else None
        return building

    def rooms_in(self, buildings: frozenset[str]) -> frozenset[str]:
        rooms = {room_id for room_id, d in self.documents.rooms().items() if d.building in buildings}
        rooms.update(room_id for room_id, c in self._configured.items() if c.building in buildings)
        return frozenset(rooms)

    def room_bookings(self) -> dict[str, tuple[Booking | None, Booking | None]]:
        now = self._clock.now()
        return {room: current_and_next(bookings, now) for room, bookings in self.bookings.rooms().items()}

    def room_calendar(self, room_id: str, *, details: bool) -> bytes | None:
        """As a gateway's feed: the room's bookings that hold it, from FEED_PAST ago to
        the import horizon (from the store); None for a room this replica does not know."""
        document = self.documents.room(room_id)
        config = self._configured.get(room_id) or (document.config if document is not None else None)
        if config is None:
            return None
        now = self._clock.now()
        since, until = now - FEED_PAST, now + self.settings.bookings.import_horizon * 86_400
        bookings = [b for b in self.bookings.of_room(room_id) if b.end > since and b.start < until]
        return room_calendar(config, bookings, details=details)

    # Availability (api.availability_answers)

    def availability_version(self) -> AvailabilityVersion:
        docs = self.documents
        return AvailabilityVersion(self.bookings.version, docs.rooms_version, docs.occupancy_version, (0, 0))

    def availability_inputs(self, *, includes_now: bool) -> AvailabilityInputs:
        """As a gateway's, from the documents: a room's occupancy, and whether its
        presence sensors are all offline, are its document's."""
        version = self.availability_version()
        booked = self.bookings.rooms()
        with self._availability_lock:
            key = (version.rooms, version.occupancy)
            if key != self._availability_key:
                documents = self.documents.rooms()
                bookable = tuple(d.config for d in documents.values() if d.config.bookable)
                if bookable != self._bookable:
                    self._bookable = bookable
                self._states = {
                    room_id: RoomState(room_id, occupancy=OccupancyState(state=d.occupancy))
                    for room_id, d in documents.items()
                }
                self._offline = frozenset(room_id for room_id, d in documents.items() if d.sensors_offline)
                self._availability_key = key
            offline = self._offline if includes_now else frozenset()
            return AvailabilityInputs(version, booked, self._bookable, self._states, offline)

    # Bookings: reads from the store, writes through the owning gateway

    def booking(self, booking_id: str) -> Booking | None:
        return self._stores.bookings.get(booking_id)

    def bookings_page(self, query: BookingQuery) -> list[Booking]:
        return self._stores.bookings.find(query)

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]:
        return self._stores.bookings.no_shows(by, start, end, rooms)

    def create_booking(
        self, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> tuple[Booking, Outcome]:
        result = self._booking_command(draft.room_id, "booking.create", draft_args(draft), actor, visible)
        return booking_of(result), cast(Outcome, result.get("outcome", "created"))

    def update_booking(
        self, booking_id: str, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> Booking:
        current = self._visible_booking(booking_id, visible)
        if self.building_of(draft.room_id) != self.building_of(current.room_id):
            raise InvalidBooking(
                "a booking moves to a room of another building only by cancelling it and booking that room"
            )
        args = {"booking_id": booking_id, **draft_args(draft)}
        return booking_of(self._booking_command(current.room_id, "booking.update", args, actor, visible))

    def cancel_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking:
        current = self._visible_booking(booking_id, visible)
        args = {"booking_id": booking_id}
        return booking_of(self._booking_command(current.room_id, "booking.cancel", args, actor, visible))

    def check_in_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking:
        current = self._visible_booking(booking_id, visible)
        args = {"booking_id": booking_id}
        return booking_of(self._booking_command(current.room_id, "booking.check_in", args, actor, visible))

    def book_now(self, room_id: str, seconds: float, *, actor: str) -> Booking:
        # The route found the room in the caller's buildings before calling.
        args = {"room_id": room_id, "seconds": seconds}
        scope = RoomScope(None, self.building_of)
        return booking_of(self._booking_command(room_id, "booking.book_now", args, actor, scope))

    def _visible_booking(self, booking_id: str, visible: Callable[[str], bool]) -> Booking:
        booking = self._stores.bookings.get(booking_id)
        if booking is None or not visible(booking.room_id):
            raise BookingNotFound("booking not found")
        return booking

    def _booking_command(
        self, room_id: str, op: Operation, args: Mapping[str, Any], actor: str, visible: Callable[[str], bool]
    ) -> Mapping[str, Any]:
        building = self.building_of(room_id)
        if building is None:
            raise BookingNotFound("room not found")
        reply = self._ask(building, op, args, actor, buildings_of(visible))
        if not reply.ok:
            raise booking_refusal(reply, building)
        # Read-your-writes on this replica: the booking is committed when the answer comes.
        self.bookings.reload()
        return reply.result or {}

    def _ask(
        self,
        building: str,
        op: Operation,
        args: Mapping[str, Any],
        actor: str,
        buildings: frozenset[str] | None,
    ) -> CommandReply:
        try:
            return self.commands.request(building, op, args, actor=actor, buildings=buildings)
        except NotAnswered as exc:
            raise ShardUnanswered(str(exc)) from None

    # Control: through the owning gateway

    def set_room_lights(
        self,
        room_id: str,
        on: bool,
        brightness_pct: float | None,
        *,
        actor: str,
        buildings: frozenset[str] | None,
    ) -> list[dict[str, Any]]:
        building = self.building_of(room_id)
        if building is None:
            raise CommandFailed("not_found", "room not found")
        args = {"room_id": room_id, "on": on, "brightness_pct": brightness_pct}
        result = self._command(building, "room.lights", args, actor, buildings)
        commands: list[dict[str, Any]] = result.get("commands", [])
        return commands

    def device_building(self, device_id: str) -> str | None:
        """The building of a device of the site config (discovered devices are known to
        their gateway only)."""
        room = self._device_rooms.get(device_id)
        return self.building_of(room) if room is not None else None

    def command_device(
        self, device_id: str, payload: dict[str, Any], *, actor: str, buildings: frozenset[str] | None
    ) -> dict[str, Any]:
        building = self.device_building(device_id)
        if building is None:
            raise CommandFailed("not_found", "device not found")
        return dict(
            self._command(
                building, "device.command", {"device_id": device_id, "payload": payload}, actor, buildings
            )
        )

    def _command(
        self,
        building: str,
        op: Operation,
        args: Mapping[str, Any],
        actor: str,
        buildings: frozenset[str] | None,
    ) -> Mapping[str, Any]:
        try:
            reply = self.commands.request(building, op, args, actor=actor, buildings=buildings)
        except NotAnswered as exc:
            raise CommandFailed("unanswered", str(exc)) from None
        if not reply.ok:
            raise CommandFailed(str(reply.error), reply.detail or "refused")
        return reply.result or {}

    # Events and the stream: from the store

    def last_event_seq(self) -> int:
        return self.events.last_seq()

    def _place(self, room_id: str | None, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """As the gateway places an event (its room's building and floor; a building's
        event names its building in its data)."""
        if room_id is None:
            building = data.get("building")
            return (building, None) if isinstance(building, str) else (None, None)
        document = self.documents.room(room_id)
        if document is not None:
            return document.building, document.floor
        config = self._configured.get(room_id)
        return (config.building, str(config.floor)) if config is not None else (None, None)

    def events_since(self, after: int, limit: int) -> list[EventPush]:
        return self.events.since(after, limit)

    def events_page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        kind: EventKind | None = None,
        room_id: str | None = None,
        buildings: Collection[str] | None = None,
    ) -> list[LoggedEvent]:
        return self.events.page(after=after, limit=limit, kind=kind, room_id=room_id, buildings=buildings)

    def open_stream(self, selector: StreamFilter, wakeup: Callable[[], None]) -> Subscription:
        return self.events.open(selector, wakeup)

    def close_stream(self, subscription: Subscription) -> None:
        self.events.close(subscription)

    def end_streams(self) -> None:
        self.events.end_all()

    def room_statuses(self, selector: StreamFilter) -> list[bytes]:
        """The current document of every room `selector` accepts (a stream's snapshot)."""
        return [
            d.json
            for d in self.documents.rooms().values()
            if selector.accepts("room", d.room_id, d.building, d.floor)
        ]
