"""Calendars in and out: an iCalendar file imported as bookings, and a room's bookings
as a feed calendar clients subscribe to.

`POST /v1/bookings/import` takes `text/calendar` (role `booking` and above; bodies
up to `bookings.import_max_bytes`): see `gateway.bookings.calendar_import` for how
events find their rooms and how recurring series are expanded and bounded, and
`gateway.bookings.calendar_sync` for how a re-import updates, cancels and leaves
bookings alone. A key scoped to buildings books only there: events in other
buildings' rooms are skipped as unknown rooms.

`GET /v1/rooms/{room_id}/calendar.ics` (viewer and above) serves the room's
bookings that hold it (booked, checked in) from a week ago to the import horizon;
titles and organizers for keys that see them in booking listings (`booking` and
above).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, Viewer, require
from api.booking_schemas import may_see_details
from api.calendar_schemas import MAX_SKIPPED_LISTED, ImportReportOut, SkippedOut
from api.deps import CalendarFeedDep, GatewayDep
from api.errors import AUTH, ErrorOut, responses
from gateway.bookings.calendar_import import CalendarError
from gateway.bookings.service import StorageUnavailable
from gateway.runtime.gateway import Gateway

# The import (the gateway's own: it writes bookings in bulk).
router = APIRouter(tags=["calendars"])
# The feed, which an API replica serves too (from the shared store).
feed_router = APIRouter(tags=["calendars"])

IMPORT_PATH = "/v1/bookings/import"
CALENDAR_TYPE = "text/calendar"
BookingRole = Annotated[Principal, require("booking")]


def _visible(gateway: Gateway, who: Principal) -> Callable[[str], bool]:
    def visible(room_id: str) -> bool:
        room = gateway.room(room_id)
        return room is not None and who.can_see(room.config.building)

    return visible


@router.post(
    IMPORT_PATH,
    response_model=ImportReportOut,
    summary="Import an iCalendar file as bookings (recurring series expanded; re-imports update)",
    responses={
        **responses(*AUTH, 503),
        413: {"model": ErrorOut, "description": "body larger than bookings.import_max_bytes"},
        415: {"model": ErrorOut, "description": "not sent as text/calendar"},
        422: {
            "model": ErrorOut,
            "description": "not UTF-8, not iCalendar, or a malformed line or property (nothing is imported)",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {CALENDAR_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_calendar(
    request: Request, gateway: GatewayDep, who: BookingRole
) -> ImportReportOut | JSONResponse:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != CALENDAR_TYPE:
        return JSONResponse({"detail": f"send the calendar as {CALENDAR_TYPE}"}, status_code=415)
    data = await request.body()
    try:
        # Parsing and expanding take CPU: off the event loop.
        plan, report = await run_in_threadpool(
            gateway.import_calendar, data, actor=who.name, visible=_visible(gateway, who)
        )
    except CalendarError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    except StorageUnavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return ImportReportOut(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        cancelled=report.cancelled,
        skipped=[
            SkippedOut(uid=s.uid, reason=s.reason, recurrence_id=s.recurrence_id)
            for s in report.skipped[:MAX_SKIPPED_LISTED]
        ],
        skipped_count=len(report.skipped),
        changed=report.changed,
        occurrences=plan.found,
        limited=plan.limited,
        start=datetime.fromtimestamp(plan.start, UTC),
        end=datetime.fromtimestamp(plan.end, UTC),
    )


@feed_router.get(
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
def room_calendar(room_id: str, feed: CalendarFeedDep, who: Viewer) -> Response:
    building = feed.building_of(room_id)
    if building is None or not who.can_see(building):
        raise HTTPException(404, detail="room not found")
    body = feed.room_calendar(room_id, details=may_see_details(who, "booking"))
    if body is None:
        raise HTTPException(404, detail="room not found")
    return Response(
        body,
        media_type=f"{CALENDAR_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{room_id}.ics"'},
    )
