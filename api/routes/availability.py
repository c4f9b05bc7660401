"""Which rooms a booking system can offer for a window.

Until bookings exist every bookable room is free for a future window; a window
that includes the present also needs the room not to be occupied right now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import Viewer
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.schemas import AvailabilityOut, AvailableRoom, is_available_now

router = APIRouter(prefix="/v1/availability", tags=["availability"])

# The window asked about when none is given: "free now" means free for a short meeting.
DEFAULT_WINDOW = timedelta(minutes=30)


def _utc(value: datetime, name: str) -> datetime:
    # A time without offset is taken as UTC, the API's time zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get(
    "",
    response_model=AvailabilityOut,
    summary="Rooms (of the key's buildings) free for a time window",
    responses=responses(*AUTH, 422),
)
def availability(
    gateway: GatewayDep,
    who: Viewer,
    start: Annotated[datetime | None, Query(description="ISO 8601; default now")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default start + 30 min")] = None,
    min_capacity: Annotated[int, Query(ge=0)] = 0,
    features: Annotated[list[str] | None, Query(description="repeat or comma-separate")] = None,
    building: str | None = None,
    floor: str | None = None,
) -> AvailabilityOut:
    now = datetime.fromtimestamp(gateway.now(), UTC)
    try:
        window_start = _utc(start, "start") if start else now
        window_end = _utc(end, "end") if end else window_start + DEFAULT_WINDOW
    except OverflowError:
        raise HTTPException(422, detail="start or end outside the years 1 to 9999") from None
    if window_end <= window_start:
        raise HTTPException(422, detail="end must be after start")
    if window_end <= now:
        raise HTTPException(422, detail="the window is entirely in the past")
    wanted = {f.strip() for item in features or [] for f in item.split(",") if f.strip()}
    includes_now = window_start <= now < window_end

    rooms = []
    for room in gateway.rooms():
        c = room.config
        if not c.bookable or not who.can_see(c.building):
            continue
        if (building is not None and c.building != building) or (floor is not None and c.floor != floor):
            continue
        if c.capacity < min_capacity or not wanted.issubset(c.features):
            continue
        if includes_now and not is_available_now(room):
            continue
        rooms.append(AvailableRoom(**AvailableRoom.fields_of(c), occupancy=room.state.occupancy.state.value))
    rooms.sort(key=lambda r: (r.building, r.floor, r.id))
    return AvailabilityOut(
        start=window_start, end=window_end, includes_now=includes_now, rooms=rooms, count=len(rooms)
    )
