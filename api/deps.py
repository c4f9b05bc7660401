"""Typed dependencies: the pieces of the app that routes need, taken from `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.backends import AvailabilitySource, BookingDesk, CalendarFeed, EventLog, HealthSource, StreamSource
from gateway.runtime.gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    # A coroutine, so FastAPI does not hand it to a worker thread (see api.auth.principal).
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_booking_desk(request: Request) -> BookingDesk:
    desk: BookingDesk = request.app.state.booking_desk
    return desk


async def get_availability_source(request: Request) -> AvailabilitySource:
    source: AvailabilitySource = request.app.state.availability_source
    return source


async def get_stream_source(request: Request) -> StreamSource:
    source: StreamSource = request.app.state.stream_source
    return source


async def get_health_source(request: Request) -> HealthSource:
    source: HealthSource = request.app.state.health_source
    return source


async def get_event_log(request: Request) -> EventLog:
    log: EventLog = request.app.state.event_log
    return log


async def get_calendar_feed(request: Request) -> CalendarFeed:
    feed: CalendarFeed = request.app.state.calendar_feed
    return feed


# A gateway's, or an API replica's (api/backends.py).
BookingDeskDep = Annotated[BookingDesk, Depends(get_booking_desk)]
AvailabilityDep = Annotated[AvailabilitySource, Depends(get_availability_source)]
StreamDep = Annotated[StreamSource, Depends(get_stream_source)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
HealthDep = Annotated[HealthSource, Depends(get_health_source)]
CalendarFeedDep = Annotated[CalendarFeed, Depends(get_calendar_feed)]
