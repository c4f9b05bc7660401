"""Live room status."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from api.auth import Principal, Viewer
from api.booking_schemas import may_see_details
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.query import QueryTime
from api.room_documents import RoomDocuments, RoomsQuery
from api.schemas import (
    HistoryOut,
    HistoryPoint,
    HistoryReading,
    RecordedMetric,
    RoomList,
    RoomMetrics,
    RoomOut,
)
from gateway.runtime.gateway import UnknownMetric
from gateway.storage.records import KIND_OF_METRIC, STATUS_NAME_OF_FIELD

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])


def room_documents(request: Request) -> RoomDocuments:
    documents: RoomDocuments = request.app.state.room_documents
    return documents


DocumentsDep = Annotated[RoomDocuments, Depends(room_documents)]


def rooms_query(
    who: Principal,
    building: str | None,
    floor: str | None,
    type: str | None,
    occupied: bool | None,
    bookable: bool | None,
) -> RoomsQuery:
    return RoomsQuery(
        who.buildings, may_see_details(who, "operator"), building, floor, type, occupied, bookable
    )


@router.get(
    "",
    response_model=RoomList,
    summary="All rooms with live status (of the key's buildings)",
    description="Sorted by building, floor and id. Rooms' documents are kept between changes "
    "(see `api.room_documents`): a whole campus is joined from them, not rendered per request.",
    responses=responses(*AUTH, 422),
)
def list_rooms(
    gateway: GatewayDep,
    documents: DocumentsDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    occupied: bool | None = None,
    bookable: bool | None = None,
) -> Response:
    view, booked = gateway.rooms_view()
    query = rooms_query(who, building, floor, type, occupied, bookable)
    return json_response(documents.rooms(view, booked, query, gateway.now()))


@router.get(
    "/{room_id}",
    response_model=RoomOut,
    summary="One room's live status",
    responses=responses(*AUTH, 404, 422),
)
def get_room(room_id: str, gateway: GatewayDep, documents: DocumentsDep, who: Viewer) -> Response:
    room = gateway.room(room_id)
    # A room in a building the key may not see is reported as absent, not forbidden,
    # so keys cannot probe other buildings' room ids (and errors never repeat the id).
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail="room not found")
    body = documents.room(
        room, gateway.bookings_of_room(room_id), gateway.now(), details=may_see_details(who, "operator")
    )
    return json_response(body)


def json_response(body: bytes) -> Response:
    """What FastAPI sends for a response model (the headers of Starlette's Response)."""
    return Response(body, media_type="application/json")


# Buckets a request may ask for, and raw readings a page may hold.
MAX_HISTORY_POINTS = 10_000
DEFAULT_HISTORY_WINDOW = 86_400.0
# Finer buckets mean nothing for readings timed to the millisecond at best.
MIN_HISTORY_STEP = 0.001
# The earliest bucket start a response can carry (datetime's range starts at year 1).
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
# The instants a history window may span: what a datetime can hold, with a day to spare.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()


def _utc(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is taken as UTC (DESIGN.md §4)."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _cursor(ts: float, device: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, device]).encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[float, str]:
    try:
        ts, device = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise HTTPException(422, detail="after: not a cursor this endpoint returned") from exc
    if (
        not isinstance(ts, int | float)
        or isinstance(ts, bool)
        or not math.isfinite(ts)
        or not isinstance(device, str)
    ):
        raise HTTPException(422, detail="after: not a cursor this endpoint returned")
    return float(ts), device


def _unknown(exc: UnknownMetric) -> str:
    known = ", ".join(
        f"{field} ({STATUS_NAME_OF_FIELD[field]})"
        if field in STATUS_NAME_OF_FIELD and STATUS_NAME_OF_FIELD[field] != field
        else field
        for field in exc.known
    )
    return f"unknown metric {exc.name!r}; known metrics (status names in brackets): {known}"


@router.get(
    "/{room_id}/history",
    response_model=HistoryOut,
    summary="A room's recorded readings of one metric: raw, or in buckets of `step` seconds",
    description=(
        "Without `step`: the readings themselves, `{ts, value, device}`, oldest first, at most `limit` "
        "a call; when the window holds more, `next_after` is a cursor to pass as `after`. With `step`: "
        "`{t, mean, min, max, count}` per bucket, over all the room's devices, buckets aligned to "
        "multiples of `step` since the epoch (the first and last count only readings inside the "
        "window). `metric` is a device field (`co2`) or its room-status name (`co2_ppm`); the "
        "response names the field. `GET /v1/rooms/{room_id}/metrics` lists what the room recorded."
    ),
    responses=responses(*AUTH, 404, 422),
)
def room_history(
    room_id: str,
    gateway: GatewayDep,
    who: Viewer,
    metric: Annotated[
        str, Query(min_length=1, max_length=64, description="e.g. co2 or co2_ppm, temperature, power")
    ],
    start: Annotated[
        QueryTime | None, Query(description="ISO 8601, UTC without a zone; default end - 24 h")
    ] = None,
    end: Annotated[QueryTime | None, Query(description="ISO 8601, UTC without a zone; default now")] = None,
    step: Annotated[
        float | None,
        Query(
            ge=MIN_HISTORY_STEP,
            allow_inf_nan=False,
            description=f"seconds per bucket (at least {MIN_HISTORY_STEP}, at most {MAX_HISTORY_POINTS} "
            "buckets a request); default: raw readings",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_HISTORY_POINTS, description="raw readings only: at most this many")
    ] = MAX_HISTORY_POINTS,
    after: Annotated[
        str | None,
        Query(max_length=512, description="raw readings only: the `next_after` of the previous page"),
    ] = None,
) -> HistoryOut:
    room = gateway.room(room_id)
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail="room not found")
    until = _utc(end) if end is not None else gateway.now()
    since = _utc(start) if start is not None else until - DEFAULT_HISTORY_WINDOW
    if since < EARLIEST or until > LATEST:
        raise HTTPException(422, detail="start and end must be within the years 1 to 9999")
    if since >= until:
        raise HTTPException(422, detail="start must be before end")
    try:
        field = gateway.history_metric(room_id, metric)
    except UnknownMetric as exc:
        raise HTTPException(422, detail=_unknown(exc)) from exc
    if step is None:
        cursor = _after(after) if after is not None else None
        rows = gateway.room_readings(room_id, field, since, until, after=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return HistoryOut(
            room_id=room_id,
            metric=field,
            status_name=STATUS_NAME_OF_FIELD.get(field),
            start=datetime.fromtimestamp(since, UTC),
            end=datetime.fromtimestamp(until, UTC),
            step=None,
            points=[
                HistoryReading(ts=datetime.fromtimestamp(ts, UTC), value=value, device=device)
                for ts, device, value in rows
            ],
            next_after=_cursor(rows[-1][0], rows[-1][1]) if more else None,
        )

    if after is not None:
        raise HTTPException(422, detail="after pages raw readings: it cannot be combined with step")
    first = math.floor(since / step)
    buckets = math.ceil(until / step) - first
    if buckets > MAX_HISTORY_POINTS:
        raise HTTPException(
            422,
            detail=f"{buckets} buckets of {step:g} s asked for; at most {MAX_HISTORY_POINTS}: "
            "a larger step or a shorter window",
        )
    if first * step < _EARLIEST:
        raise HTTPException(422, detail=f"step {step:g} s puts the first bucket before year 1")
    buckets_rows = gateway.room_history(room_id, field, since, until, step)
    return HistoryOut(
        room_id=room_id,
        metric=field,
        status_name=STATUS_NAME_OF_FIELD.get(field),
        start=datetime.fromtimestamp(since, UTC),
        end=datetime.fromtimestamp(until, UTC),
        step=step,
        points=[
            HistoryPoint(t=datetime.fromtimestamp(t, UTC), mean=mean, min=low, max=high, count=n)
            for t, mean, low, high, n in buckets_rows
        ],
    )


@router.get(
    "/{room_id}/metrics",
    response_model=RoomMetrics,
    summary="The metrics a room has readings of, with the first and last kept",
    responses=responses(*AUTH, 404),
)
def room_metrics(room_id: str, gateway: GatewayDep, who: Viewer) -> RoomMetrics:
    room = gateway.room(room_id)
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail="room not found")
    metrics = [
        RecordedMetric(
            metric=metric,
            status_name=STATUS_NAME_OF_FIELD.get(metric),
            kind=KIND_OF_METRIC.get(metric, "device"),
            first=datetime.fromtimestamp(first, UTC),
            last=datetime.fromtimestamp(last, UTC),
        )
        for metric, first, last in gateway.room_metrics(room_id)
    ]
    return RoomMetrics(room_id=room_id, metrics=metrics, count=len(metrics))
