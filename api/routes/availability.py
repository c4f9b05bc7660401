"""Which rooms a booking system can offer for a window.

Every matching bookable room is listed with `available` and the `reasons`: a room
is free when no booking (booked or checked in) overlaps the window and, for a
window that includes now, it is not occupied. Best fit first: available rooms
before the others, the smallest that fits first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import Viewer
from api.booking_schemas import BookingSummary, as_time, may_see_details
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.query import QueryTime
from api.schemas import AvailabilityOut, AvailableRoom
from gateway.config import RoomConfig

router = APIRouter(prefix="/v1/availability", tags=["availability"])

# The window asked about when none is given: "free now" means free for a short meeting.
DEFAULT_WINDOW = timedelta(minutes=30)
MAX_WINDOW = timedelta(days=31)


def _utc(value: datetime) -> datetime:
    # A time without offset is taken as UTC, the API's time zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get(
    "",
    response_model=AvailabilityOut,
    summary="Bookable rooms of the key's buildings, free or not, for a window",
    responses=responses(*AUTH, 422),
)
def availability(
    gateway: GatewayDep,
    who: Viewer,
    start: Annotated[QueryTime | None, Query(description="ISO 8601; default now")] = None,
    end: Annotated[QueryTime | None, Query(description="ISO 8601; default start + 30 min")] = None,
    min_capacity: Annotated[int, Query(ge=0)] = 0,
    features: Annotated[
        list[str] | None, Query(description="repeat or comma-separate; case-insensitive")
    ] = None,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    available: Annotated[bool | None, Query(description="only free (true) or taken (false) rooms")] = None,
) -> AvailabilityOut:
    now = datetime.fromtimestamp(gateway.now(), UTC)
    try:
        window_start = _utc(start) if start else now
        window_end = _utc(end) if end else window_start + DEFAULT_WINDOW
    except OverflowError:
        raise HTTPException(422, detail="start or end outside the years 1 to 9999") from None
    if window_end <= window_start:
        raise HTTPException(422, detail="end must be after start")
    if window_end <= now:
        raise HTTPException(422, detail="the window is entirely in the past")
    if window_end - window_start > MAX_WINDOW:
        raise HTTPException(422, detail=f"the window may span at most {MAX_WINDOW.days} days")
    wanted_features = {f.strip().casefold() for item in features or [] for f in item.split(",") if f.strip()}
    includes_now = window_start <= now < window_end

    def wanted(c: RoomConfig) -> bool:
        return (
            who.can_see(c.building)
            and (building is None or c.building == building)
            and (floor is None or c.floor == floor)
            and (type is None or c.type == type)
            and c.capacity >= min_capacity
            and wanted_features <= {f.casefold() for f in c.features}
        )

    details = may_see_details(who, "operator")
    rooms = [
        AvailableRoom(
            **AvailableRoom.fields_of(room.config),
            available=free.available,
            reasons=list(free.reasons),
            free_until=as_time(free.free_until),
            next_booking=BookingSummary.of(free.next_booking, details=details),
            occupancy=room.state.occupancy.state.value if includes_now else None,
        )
        for room, free in gateway.availability(window_start.timestamp(), window_end.timestamp(), wanted)
        if available is None or free.available == available
    ]
    rooms.sort(key=lambda r: (not r.available, r.capacity, r.building, r.floor, r.id))
    return AvailabilityOut(
        start=window_start, end=window_end, includes_now=includes_now, rooms=rooms, count=len(rooms)
    )
