"""Live room status."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import Viewer
from api.booking_schemas import may_see_details
from api.deps import GatewayDep
from api.schemas import HistoryOut, HistoryPoint, RoomList, RoomOut
from rules.occupancy import Occupancy

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])


@router.get("", response_model=RoomList, summary="All rooms with live status")
def list_rooms(
    gateway: GatewayDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    occupied: bool | None = None,
    bookable: bool | None = None,
) -> RoomList:
    now = gateway.now()
    booked = gateway.room_bookings()
    details = may_see_details(who, "operator")
    rooms = [
        RoomOut.of(room, now, booked.get(room.config.id, (None, None)), details=details)
        for room in gateway.rooms()
        if who.can_see(room.config.building)
        and (building is None or room.config.building == building)
        and (floor is None or room.config.floor == floor)
        and (type is None or room.config.type == type)
        and (bookable is None or room.config.bookable == bookable)
        and (occupied is None or (room.state.occupancy.state == Occupancy.OCCUPIED) == occupied)
    ]
    rooms.sort(key=lambda r: (r.building, r.floor, r.id))
    return RoomList(rooms=rooms, count=len(rooms))


@router.get("/{room_id}", response_model=RoomOut, summary="One room's live status")
def get_room(room_id: str, gateway: GatewayDep, who: Viewer) -> RoomOut:
    room = gateway.room(room_id)
    # A room in a building the key may not see is reported as absent, not forbidden,
    # so keys cannot probe other buildings' room ids.
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail=f"room {room_id!r} not found")
    booked = gateway.room_bookings().get(room_id, (None, None))
    return RoomOut.of(room, gateway.now(), booked, details=may_see_details(who, "operator"))


MAX_HISTORY_POINTS = 10_000
DEFAULT_HISTORY_WINDOW = 86_400.0


@router.get(
    "/{room_id}/history",
    response_model=HistoryOut,
    summary="A room's recorded readings of one metric, downsampled",
    responses={422: {"description": "bad window or step"}},
)
def room_history(
    room_id: str,
    gateway: GatewayDep,
    who: Viewer,
    metric: Annotated[str, Query(min_length=1, max_length=64, description="e.g. co2, temperature, power")],
    start: Annotated[datetime | None, Query(description="ISO 8601; default end - 24 h")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None,
    step: Annotated[
        float | None, Query(gt=0, description="seconds per point; default: the window in <= 500 points")
    ] = None,
) -> HistoryOut:
    room = gateway.room(room_id)
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail=f"room {room_id!r} not found")
    until = end.timestamp() if end is not None else gateway.now()
    since = start.timestamp() if start is not None else until - DEFAULT_HISTORY_WINDOW
    if since >= until:
        raise HTTPException(422, detail="start must be before end")
    seconds = step if step is not None else max(1.0, math.ceil((until - since) / 500))
    if (until - since) / seconds > MAX_HISTORY_POINTS:
        raise HTTPException(
            422, detail=f"{(until - since) / seconds:.0f} points asked for; at most {MAX_HISTORY_POINTS}"
        )
    rows = gateway.room_history(room_id, metric, since, until, seconds)
    return HistoryOut(
        room_id=room_id,
        metric=metric,
        start=datetime.fromtimestamp(since, UTC),
        end=datetime.fromtimestamp(until, UTC),
        step=seconds,
        points=[
            HistoryPoint(t=datetime.fromtimestamp(t, UTC), mean=mean, min=low, max=high, count=n)
            for t, mean, low, high, n in rows
        ],
    )
