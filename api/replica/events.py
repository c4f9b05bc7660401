"""GET /v1/events on a replica: the gateways' event log, read from the shared store,
with the gateway's filters and building scope (api/routes/events.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Viewer
from api.errors import AUTH, responses
from api.replica.deps import ReplicaDep
from api.routes.events import EventPage, Limit, event_page
from gateway.automation.event_log import EventKind

router = APIRouter(tags=["events"])


@router.get(
    "/v1/events",
    response_model=EventPage,
    summary="Events (of the key's buildings), oldest first, after a cursor",
    responses=responses(*AUTH, 422),
)
def list_events(
    replica: ReplicaDep,
    who: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 100,
    kind: EventKind | None = None,
    room: str | None = None,
) -> EventPage:
    events = replica.events_page(after=after, limit=limit, kind=kind, room_id=room, buildings=who.buildings)
    return event_page(events, after)
