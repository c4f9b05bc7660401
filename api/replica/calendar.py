"""GET /v1/rooms/{room_id}/calendar.ics on a replica: the room's bookings from the shared
store, as a gateway serves the feed (api/routes/calendar.py). Calendar imports write
bookings in bulk and go to a gateway."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from api.auth import Viewer
from api.booking_schemas import may_see_details
from api.errors import AUTH, responses
from api.replica.deps import ReplicaDep
from api.routes.calendar import CALENDAR_TYPE

router = APIRouter(tags=["calendars"])


@router.get(
    "/v1/rooms/{room_id}/calendar.ics",
    response_class=Response,
    summary="A room's bookings as an iCalendar feed (from a week ago to the import horizon)",
    responses={
        200: {
            "content": {CALENDAR_TYPE: {"schema": {"type": "string"}}},
            "description": "a VCALENDAR (titles and organizers for booking keys and above)",
        },
        **responses(*AUTH, 404),
    },
)
def room_calendar(room_id: str, replica: ReplicaDep, who: Viewer) -> Response:
    building = replica.building_of(room_id)
    body = (
        replica.room_calendar(room_id, details=may_see_details(who, "booking"))
        if building is not None and who.can_see(building)
        else None
    )
    if body is None:
        raise HTTPException(404, detail="room not found")
    return Response(
        body,
        media_type=f"{CALENDAR_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{room_id}.ics"'},
    )
