"""What happened: occupancy changes, commands, overrides and alerts, paged by cursor
(alerts with their lifecycle: api/routes/alerts.py).

A key scoped to buildings sees the events of rooms in those buildings and the dead
letters of topics of those buildings only; events of no room (rule reloads, audit of
refused calls) and dead letters of no building need a key without a scope. The
filter comes before `limit`: a page is short only at the end of the log, and
`next_after` is the last event returned (the request's `after` when none).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import Viewer
from api.deps import EventLogDep, GatewayDep
from api.errors import AUTH, responses
from api.schemas import as_time
from gateway.automation.event_log import EventKind, LoggedEvent

# GET /v1/events, which an API replica serves too (from the shared store).
log_router = APIRouter(tags=["events"])
# The gateway's own: dead letters.
router = APIRouter(tags=["events"])


class EventOut(BaseModel):
    seq: int
    at: datetime | None
    kind: str
    room_id: str | None
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    # Pass as `after` to get the next page; equal to the request's when nothing is new.
    next_after: int


def event_page(events: list[LoggedEvent], after: int) -> EventPage:
    return EventPage(
        events=[
            EventOut(seq=e.seq, at=as_time(e.at), kind=e.kind, room_id=e.room_id, data=e.data) for e in events
        ],
        next_after=events[-1].seq if events else after,
    )


Limit = Annotated[int, Query(ge=1, le=1000)]


@log_router.get(
    "/v1/events",
    response_model=EventPage,
    summary="Events (of the key's buildings), oldest first, after a cursor",
    responses=responses(*AUTH, 422),
)
def list_events(
    source: EventLogDep,
    who: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 100,
    kind: EventKind | None = None,
    room: str | None = None,
) -> EventPage:
    events = source.events_page(after=after, limit=limit, kind=kind, room_id=room, buildings=who.buildings)
    return event_page(events, after)


class DeadLetterOut(BaseModel):
    seq: int
    at: datetime | None
    topic: str
    reason: str
    detail: str
    payload: str
    size: int


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterOut]
    next_after: int


@router.get(
    "/v1/dead-letters",
    response_model=DeadLetterPage,
    summary="Rejected messages (newest 1,000; of the key's buildings), oldest first, after a cursor",
    responses=responses(*AUTH, 422),
)
def list_dead_letters(
    gateway: GatewayDep,
    who: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 100,
    reason: str | None = None,
) -> DeadLetterPage:
    letters = gateway.dead_letters_page(after=after, limit=limit, reason=reason, buildings=who.buildings)
    return DeadLetterPage(
        dead_letters=[
            DeadLetterOut(
                seq=letter.seq,
                at=as_time(letter.at),
                topic=letter.topic,
                reason=letter.reason,
                detail=letter.detail,
                payload=letter.payload,
                size=letter.size,
            )
            for letter in letters
        ],
        next_after=letters[-1].seq if letters else after,
    )
