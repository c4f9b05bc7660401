"""Which rooms a booking system can offer for a window.

Every matching bookable room is listed with `available` and the `reasons`: a room
is free when no booking (booked or checked in) overlaps the window and, for a
window that includes now, it is not occupied. Best fit first: available rooms
before the others, the smallest that fits first.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Query, Response

from api.auth import Viewer
from api.booking_schemas import may_see_details
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.query import QueryTime
from api.schemas import AvailabilityOut
from gateway.config import RoomConfig
from rules.bookings import Booking

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
) -> Response:
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
            and (not wanted_features or wanted_features <= {f.casefold() for f in c.features})
        )

    details = may_see_details(who, "operator")
    # Plain data serialised by orjson, in the shape of AvailabilityOut: a whole campus is
    # thousands of rooms, and a pydantic model per room and booking was most of the
    # cost of a request (benchmarks/availability.py).
    rooms = []
    for room, free in gateway.availability(window_start.timestamp(), window_end.timestamp(), wanted):
        if available is not None and free.available != available:
            continue
        c = room.config
        rooms.append(
            {
                "id": c.id,
                "name": c.name,
                "building": c.building,
                "floor": c.floor,
                "type": c.type,
                "capacity": c.capacity,
                "features": c.features,
                "available": free.available,
                "reasons": free.reasons,
                "free_until": _time(free.free_until),
                "next_booking": _summary(free.next_booking, details),
                "occupancy": room.state.occupancy.state if includes_now else None,
            }
        )
    rooms.sort(key=lambda r: (not r["available"], r["capacity"], r["building"], r["floor"], r["id"]))
    body = {
        "start": window_start,
        "end": window_end,
        "includes_now": includes_now,
        "rooms": rooms,
        "count": len(rooms),
    }
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


@functools.lru_cache(maxsize=65_536)
def _utc_time(ts: float) -> datetime:
    # The same booking times come up in every request: converted once.
    return datetime.fromtimestamp(ts, UTC)


def _time(ts: float | None) -> datetime | None:
    return None if ts is None else _utc_time(ts)


def _summary(booking: Booking | None, details: bool) -> dict[str, Any] | None:
    """BookingSummary as plain data, made once per booking (bookings are immutable: a
    change is a new object, so a cached summary is of the booking as it is)."""
    if booking is None:
        return None
    key = (id(booking), details)
    cached = _SUMMARIES.get(key)
    # The entry holds the booking itself, so its id cannot be reused while cached.
    if cached is not None and cached[0] is booking:
        return cached[1]
    if len(_SUMMARIES) >= MAX_CACHED_SUMMARIES:
        _SUMMARIES.clear()
    summary = {
        "id": booking.id,
        "start": _utc_time(booking.start),
        "end": _utc_time(booking.end),
        # orjson writes an enum as its value.
        "status": booking.status,
        "title": booking.title if details else None,
        "organizer": booking.organizer if details else None,
    }
    _SUMMARIES[key] = (booking, summary)
    return summary


# What `_summary` made, by (id of the booking, details): a memo of pure functions of
# immutable objects, shared by the apps of a process (tests build many), bounded.
MAX_CACHED_SUMMARIES = 100_000
_SUMMARIES: dict[tuple[int, bool], tuple[Booking, dict[str, Any]]] = {}
