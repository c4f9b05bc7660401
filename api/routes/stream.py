"""GET /v1/stream: the event log and room changes, live, as Server-Sent Events.

One stream, in this order:
1. with a cursor (`Last-Event-ID`, else `?after=`): every event after it, from the
   gateway's memory or its store, so a client resumes after a disconnect or a
   gateway restart without a gap;
2. one `room` event per matching room with its current status (a snapshot: room
   events carry no id, so they never move the client's cursor);
3. `ready`, then everything live: events (`id:` = the event's sequence number,
   `event:` = its kind) and `room` events when a room's status changes.

A client that falls `push.stream.queue_size` items behind gets an `overflow` event
and the stream ends; reconnecting with its Last-Event-ID (browsers do that by
themselves) loses nothing. Comment lines (`: ping`) come every
`push.stream.ping_interval` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, get_args

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer, guard_of
from api.backends import StreamSource
from api.deps import StreamDep
from api.errors import AUTH
from api.errors import responses as error_responses
from gateway.automation.event_log import EventKind
from gateway.push.documents import event_json
from gateway.push.fanout import ROOM_KIND, EventPush, StreamFilter

router = APIRouter(tags=["stream"])

STREAM_KINDS = frozenset((*get_args(EventKind), ROOM_KIND))
# Events read per step of the catch-up.
PAGE = 500
# A client that takes this long to accept one write is gone (its socket is full).
SEND_TIMEOUT = 30.0


def _kinds(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    kinds = frozenset(part.strip() for value in values for part in value.split(",") if part.strip())
    if kinds - STREAM_KINDS:
        raise HTTPException(422, detail=f"unknown kind; known: {', '.join(sorted(STREAM_KINDS))}")
    return kinds


def _cursor(after: int | None, last_event_id: str | None, newest: int) -> int | None:
    """Where the client is: its Last-Event-ID (set by a reconnecting EventSource) over
    `after`. An id past the gateway's newest (a store from before a crash, another
    gateway's id) resumes from the newest."""
    # (The header's pattern, checked by FastAPI, makes it a number.)
    cursor = int(last_event_id) if last_event_id is not None else after
    return None if cursor is None else min(cursor, newest)


@router.get(
    "/v1/stream",
    response_class=EventSourceResponse,
    summary="Live events and room changes (Server-Sent Events), resumable with Last-Event-ID",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"},
        **error_responses(*AUTH, 404, 422),
    },
)
async def stream(
    request: Request,
    gateway: StreamDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    room: str | None = None,
    kind: Annotated[
        list[str] | None,
        Query(description="event kinds and/or `room`; repeated or comma-separated; default: all"),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, description="resume after this event (Last-Event-ID wins)")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            pattern=r"^[0-9]{1,18}$",
            description="the `id:` of the last event received (a reconnecting EventSource sends it)",
        ),
    ] = None,
) -> EventSourceResponse:
    if building is not None and not who.can_see(building):
        raise guard_of(request).forbidden(request.scope, who, "this key may not see that building")
    if room is not None:
        found = gateway.building_of(room)
        if found is None or not who.can_see(found):
            raise HTTPException(404, detail="room not found")
    selector = StreamFilter(
        buildings=frozenset({building}) if building is not None else who.buildings,
        floor=floor,
        room_id=room,
        kinds=_kinds(kind),
    )
    cursor = _cursor(after, last_event_id, gateway.last_event_seq())
    settings = request.app.state.settings
    return EventSourceResponse(
        event_stream(gateway, selector, cursor, settings.gateway.id),
        ping=settings.push.stream.ping_interval,
        send_timeout=SEND_TIMEOUT,
    )


def _event(gateway_id: str, push: EventPush) -> ServerSentEvent:
    event = push.event
    data = event_json(gateway_id, event, push.building, push.floor).decode()
    return ServerSentEvent(data=data, event=event.kind, id=str(event.seq))


def _room(status: bytes) -> ServerSentEvent:
    return ServerSentEvent(data=status.decode(), event=ROOM_KIND)


async def event_stream(
    gateway: StreamSource, selector: StreamFilter, cursor: int | None, gateway_id: str
) -> AsyncIterator[ServerSentEvent]:
    """The stream's events (see the module's docstring); `cursor` None: live only."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wakeup() -> None:
        # Called on the thread that produced an event (ingest, ticker, ...): hand over
        # to the event loop, never wait for it.
        # RuntimeError: the loop is closed, so this stream is over.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(ready.set)

    last = gateway.last_event_seq() if cursor is None else cursor
    # Catch up before listening, so that a long backlog cannot overflow the live queue.
    async for push in _events_after(gateway, last):
        last = push.event.seq
        if selector.accepts_push(push):
            yield _event(gateway_id, push)
    subscription = gateway.open_stream(selector, wakeup)
    try:
        # What came between the catch-up and opening (the live queue may hold some of it too).
        async for push in _events_after(gateway, last):
            last = push.event.seq
            if selector.accepts_push(push):
                yield _event(gateway_id, push)
        if selector.kinds is None or ROOM_KIND in selector.kinds:
            for status in await run_in_threadpool(gateway.room_statuses, selector):
                yield _room(status)
        yield ServerSentEvent(data=orjson.dumps({"last_id": last}).decode(), event="ready")
        while True:
            ready.clear()
            items = subscription.take()
            for item in items:
                if isinstance(item, EventPush):
                    if item.event.seq <= last:
                        continue
                    last = item.event.seq
                    yield _event(gateway_id, item)
                else:
                    yield _room(item.status)
            if items:
                continue
            if subscription.overflowed:
                detail = "this client fell behind and is dropped; reconnect with Last-Event-ID"
                yield ServerSentEvent(
                    data=orjson.dumps({"detail": detail, "last_id": last}).decode(), event="overflow"
                )
                return
            if subscription.closed:
                return
            await ready.wait()
    finally:
        gateway.close_stream(subscription)


async def _events_after(gateway: StreamSource, after: int) -> AsyncIterator[EventPush]:
    while True:
        page = await run_in_threadpool(gateway.events_since, after, PAGE)
        for push in page:
            yield push
        if len(page) < PAGE:
            return
        after = page[-1].event.seq
