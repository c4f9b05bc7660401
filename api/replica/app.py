"""`create_replica_app(settings, replica)`: the REST API, stream and dashboard of an API
replica (README "API replicas").

The routes a replica can answer for the whole campus: room status, availability,
bookings (reads from the shared store, writes through the owning gateway), events,
the event stream, manual control (through the owning gateway) and the probes. The
routes that need a gateway's own memory (devices, history, rules, alerts, reports,
webhooks, dead letters, calendar import) are not served here: a 404 says so.
Authentication, roles and building scopes are the gateway's (api.auth), with the
same keys.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError

from api.auth import AuthGuard, document_bearer_keys
from api.availability_answers import AvailabilityAnswers
from api.availability_fast_path import AvailabilityFastPath
from api.backends import (
    AvailabilitySource,
    BookingDesk,
    CalendarFeed,
    EventLog,
    HealthSource,
    StreamSource,
)
from api.dashboard import mount_dashboard
from api.docs import mount_offline_docs
from api.errors import validation_error
from api.limits import AuthBeforeBody, BodyLimit
from api.methods import method_not_allowed
from api.query import one_value_each
from api.replica import control, rooms
from api.routes import availability, bookings, calendar, events, health, stream
from gateway.config import Settings
from gateway.logs import kv
from gateway.replica.replica import Replica

log = logging.getLogger("officegw.replica")


def _audit_to_log(actor: str, action: str, room_id: str | None, **detail: Any) -> None:
    # A replica writes nothing to the shared store: refused calls are logged here
    # (commands are audited by the gateway that carries them out).
    log.warning(kv("audit", actor=actor, action=action, room=room_id, **detail))


def create_replica_app(settings: Settings, replica: Replica) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replica.start()
        try:
            yield
        finally:
            replica.stop()

    app = FastAPI(
        title="officegw (API replica)",
        version="0.1.0",
        summary="Live room status and availability for smart offices: an API replica for the whole campus",
        lifespan=lifespan,
        dependencies=[Depends(one_value_each)],
    )
    mount_offline_docs(app)
    app.state.settings = settings
    app.state.replica = replica
    desk: BookingDesk = replica
    availability_source: AvailabilitySource = replica
    stream_source: StreamSource = replica
    app.state.booking_desk = desk
    app.state.availability_source = availability_source
    app.state.stream_source = stream_source
    health_source: HealthSource = replica
    event_log: EventLog = replica
    calendar_feed: CalendarFeed = replica
    app.state.health_source = health_source
    app.state.event_log = event_log
    app.state.calendar_feed = calendar_feed
    answers = app.state.availability_answers = AvailabilityAnswers()
    app.state.room_listings = rooms.RoomListings()
    guard = AuthGuard(settings.api, _audit_to_log)
    app.state.guard = guard
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(405, method_not_allowed)
    # As on a gateway (api/app.py): size limit, then authentication, then the fast path.
    app.add_middleware(AvailabilityFastPath, guard=guard, gateway=replica, answers=answers)
    app.add_middleware(AuthBeforeBody, guard=guard, router=app.router)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    for router in (
        rooms.router,
        calendar.feed_router,
        availability.router,
        bookings.router,
        control.router,
        events.log_router,
        stream.router,
        health.probes_router,
    ):
        app.include_router(router)
    mount_dashboard(app)
    if guard.enabled:
        document_bearer_keys(app)
    return app
