"""Typed dependencies: the pieces of the app that routes need, taken from `app.state`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from api.backends import AvailabilitySource, BookingDesk, CalendarFeed, EventLog, HealthSource, StreamSource
from gateway.runtime.gateway import Gateway


def _from_state(name: str) -> Callable[[Request], Coroutine[Any, Any, Any]]:
    """A dependency giving `app.state.<name>`. A coroutine, so FastAPI does not hand it
    to a worker thread (see api.auth.principal)."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = f"get_{name}"
    return get


GatewayDep = Annotated[Gateway, Depends(_from_state("gateway"))]
# A gateway's, or an API replica's (api/backends.py).
BookingDeskDep = Annotated[BookingDesk, Depends(_from_state("booking_desk"))]
AvailabilityDep = Annotated[AvailabilitySource, Depends(_from_state("availability_source"))]
StreamDep = Annotated[StreamSource, Depends(_from_state("stream_source"))]
EventLogDep = Annotated[EventLog, Depends(_from_state("event_log"))]
CalendarFeedDep = Annotated[CalendarFeed, Depends(_from_state("calendar_feed"))]
HealthDep = Annotated[HealthSource, Depends(_from_state("health_source"))]
