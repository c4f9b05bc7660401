"""What some routes need, as protocols: a gateway serves them, and so does an API replica
(gateway/replica), from the retained room states, the shared store and commands to the
owning gateway. Routes that only a gateway can answer take the gateway itself
(`api.deps.GatewayDep`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from gateway.automation.event_log import EventKind, LoggedEvent
from gateway.bookings.availability_inputs import AvailabilityInputs, AvailabilityVersion
from gateway.bookings.service import BookingDraft, Outcome
from gateway.push.fanout import EventPush, StreamFilter, Subscription
from gateway.storage.bookings_store import BookingQuery, NoShowCount, NoShowGroup
from rules.bookings import Booking


class Rooms(Protocol):
    def now(self) -> float: ...

    def building_of(self, room_id: str) -> str | None:
        """The room's building; None for no such room."""

    def rooms_in(self, buildings: frozenset[str]) -> frozenset[str]:
        """The ids of the rooms in those buildings."""


class BookingDesk(Rooms, Protocol):
    """Bookings (api/routes/bookings.py). `visible` is the caller's RoomScope
    (gateway.bookings.scope): a booking in a room it may not see is not found."""

    def booking(self, booking_id: str) -> Booking | None: ...

    def bookings_page(self, query: BookingQuery) -> list[Booking]: ...

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]: ...

    def create_booking(
        self, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> tuple[Booking, Outcome]: ...

    def update_booking(
        self, booking_id: str, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> Booking: ...

    def cancel_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking: ...

    def check_in_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking: ...

    def book_now(self, room_id: str, seconds: float, *, actor: str) -> Booking: ...


class AvailabilitySource(Protocol):
    """Availability (api/routes/availability.py, api.availability_answers)."""

    def now(self) -> float: ...

    def availability_version(self) -> AvailabilityVersion: ...

    def availability_inputs(self, *, includes_now: bool) -> AvailabilityInputs: ...


class HealthSource(Protocol):
    """What the readiness probe reports (GET /readyz, api/routes/health.py)."""

    def health_checks(self) -> dict[str, bool]:
        """ "mqtt": the broker is connected; "storage": the stores answer."""


class EventLog(Protocol):
    """The event log, paged by cursor (GET /v1/events, api/routes/events.py)."""

    def events_page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        kind: EventKind | None = None,
        room_id: str | None = None,
        buildings: Collection[str] | None = None,
    ) -> list[LoggedEvent]: ...


class CalendarFeed(Rooms, Protocol):
    """A room's bookings as iCalendar (GET /v1/rooms/{id}/calendar.ics, api/routes/calendar.py)."""

    def room_calendar(self, room_id: str, *, details: bool) -> bytes | None:
        """None for no such room."""


class StreamSource(Rooms, Protocol):
    """The event stream (api/routes/stream.py)."""

    def last_event_seq(self) -> int: ...

    def events_since(self, after: int, limit: int) -> list[EventPush]: ...

    def open_stream(self, selector: StreamFilter, wakeup: Callable[[], None]) -> Subscription: ...

    def close_stream(self, subscription: Subscription) -> None: ...

    def end_streams(self) -> None:
        """Ends every open stream (the HTTP server is shutting down)."""

    def room_statuses(self, selector: StreamFilter) -> list[bytes]:
        """The current status (GET /v1/rooms/{id} JSON) of every room `selector` accepts."""
