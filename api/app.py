"""The HTTP side: `create_app(settings, gateway)` puts the routes around a gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from api.gateway_stream import GatewayStream
from api.limits import AuthBeforeBody, BodyLimit
from api.methods import method_not_allowed
from api.query import one_value_each
from api.room_documents import RoomDocuments
from api.rooms_fast_path import RoomsFastPath
from api.routes import (
    alerts,
    availability,
    bookings,
    calendar,
    control,
    devices,
    discovery,
    events,
    health,
    report_archive,
    reports,
    rooms,
    rules,
    service_report,
    stream,
    webhooks,
)
from gateway.config import Settings
from gateway.runtime.gateway import Gateway


def create_app(
    settings: Settings, gateway: Gateway, *, room_documents: RoomDocuments | None = None
) -> FastAPI:
    """The API around `gateway` (built by the composition root, `gateway.cli.assembly`);
    the gateway runs for as long as the app's lifespan. `room_documents`: the ones the
    gateway's state publisher renders through (so a room is rendered once per change);
    without, the app keeps its own."""
    gw = gateway

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw.start()
        try:
            yield
        finally:
            gw.stop()

    app = FastAPI(
        title="officegw",
        version="0.1.0",
        summary="Live room status and availability for smart offices",
        lifespan=lifespan,
        dependencies=[Depends(one_value_each)],
    )
    mount_offline_docs(app)
    app.state.settings = settings
    app.state.gateway = gw
    # What an API replica serves too (api/backends.py): here, the gateway itself.
    desk: BookingDesk = gw
    availability_source: AvailabilitySource = gw
    stream_source: StreamSource = GatewayStream(gw)
    app.state.booking_desk = desk
    app.state.availability_source = availability_source
    app.state.stream_source = stream_source
    health_source: HealthSource = gw
    event_log: EventLog = gw
    calendar_feed: CalendarFeed = gw
    app.state.health_source = health_source
    app.state.event_log = event_log
    app.state.calendar_feed = calendar_feed
    app.state.metrics = gw.metrics_registry()
    # Availability answers kept until what they rest on changes (one set per app).
    answers = app.state.availability_answers = AvailabilityAnswers()
    # Room documents kept between changes, shared with the gateway's state publisher.
    documents = app.state.room_documents = room_documents or RoomDocuments()
    guard = AuthGuard(settings.api, gw.audit)
    app.state.guard = guard
    app.add_exception_handler(RequestValidationError, validation_error)
    # 405s list the methods of every route at the path, not of the first one only.
    app.add_exception_handler(405, method_not_allowed)
    # The last added runs first: the size limit, then authentication of requests
    # with a body, both before anything reads the body; then availability for now
    # from a kept answer, when there is one; then room listings from kept documents.
    app.add_middleware(RoomsFastPath, guard=guard, gateway=gw, documents=documents)
    app.add_middleware(AvailabilityFastPath, guard=guard, gateway=gw, answers=answers)
    app.add_middleware(AuthBeforeBody, guard=guard, router=app.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api.max_body_bytes,
        paths={calendar.IMPORT_PATH: settings.bookings.import_max_bytes},
    )
    # The probes first: FastAPI (0.165) builds an included router's per-route state
    # (pydantic fields of every parameter and response) at the first request matched
    # against it, in this order: a readiness probe after a start no longer pays for
    # the fifteen routers before it. No other router's paths overlap the probes'.
    for router in (
        health.probes_router,
        health.router,
        rooms.router,
        devices.router,
        discovery.router,
        availability.router,
        bookings.router,
        calendar.router,
        calendar.feed_router,
        control.router,
        events.log_router,
        events.router,
        alerts.router,
        rules.router,
        stream.router,
        webhooks.router,
        service_report.router,
        report_archive.router,
        reports.router,
    ):
        app.include_router(router)
    mount_dashboard(app)
    if guard.enabled:
        document_bearer_keys(app)
    return app


def end_streams(app: FastAPI) -> None:
    """Ends the app's open event streams (GET /v1/stream): the server waits for every
    open response before it shuts down, and a stream never ends by itself. A server
    stopped by a signal needs no call: sse-starlette ends them then."""
    source: StreamSource | None = getattr(app.state, "stream_source", None)
    if source is not None:  # a standby's app (api.standby_app) has none
        source.end_streams()
