"""Bookings from a booking system: create (or re-send), read, move, cancel, check in;
ad-hoc bookings from a room panel; no-show counts.

Keys with role `booking` and above write, `viewer` keys read. A key scoped to
buildings neither sees nor books another building's rooms: those are 404, like
rooms that do not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from api.auth import Operator, Principal, Viewer, require
from api.backends import BookingDesk
from api.booking_schemas import (
    BookingIn,
    BookingList,
    BookingOut,
    BookingPatch,
    BookNowIn,
    NoShowGroupOut,
    NoShowsOut,
    Status,
    may_see_details,
)
from api.deps import BookingDeskDep
from api.errors import AUTH, BODY, ErrorOut, responses
from api.query import QueryTime
from gateway.bookings.scope import RoomScope
from gateway.bookings.service import (
    BookingConflict,
    BookingDraft,
    BookingError,
    BookingNotFound,
    InvalidBooking,
    StorageUnavailable,
)
from gateway.storage.bookings_store import BookingQuery
from rules.bookings import Booking, BookingStatus

router = APIRouter(tags=["bookings"])

BookingRole = Annotated[Principal, require("booking")]
DEFAULT_NO_SHOW_PERIOD = timedelta(days=30)


def _refusal(exc: BookingError) -> JSONResponse:
    """The service's refusal as an HTTP error; a clash names the booking it clashes with."""
    if isinstance(exc, BookingNotFound):
        code = 404
    elif isinstance(exc, InvalidBooking):
        code = 422
    elif isinstance(exc, StorageUnavailable):
        code = 503
    else:
        code = 409
    content: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, BookingConflict) and exc.clash is not None:
        clash = exc.clash
        content["booking"] = {
            "id": clash.id,
            "room_id": clash.room_id,
            "start": _iso(clash.start),
            "end": _iso(clash.end),
            "status": clash.status.value,
        }
    return JSONResponse(content, status_code=code)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _visible(gateway: BookingDesk, who: Principal) -> RoomScope:
    return RoomScope(who.buildings, gateway.building_of)


def _visible_rooms(gateway: BookingDesk, who: Principal) -> frozenset[str] | None:
    if who.buildings is None:
        return None
    return gateway.rooms_in(who.buildings)


def _room_or_404(gateway: BookingDesk, who: Principal, room_id: str) -> None:
    building = gateway.building_of(room_id)
    if building is None or not who.can_see(building):
        raise HTTPException(404, detail="room not found")


def _out(booking: Booking, who: Principal) -> BookingOut:
    return BookingOut.of(booking, details=may_see_details(who, "booking"))


_ERRORS: dict[int | str, dict[str, object]] = {
    **responses(*AUTH, 413, 503),
    404: {
        "model": ErrorOut,
        "description": "no such booking or room (or one in a building the key may not see)",
    },
    409: {
        "model": ErrorOut,
        "description": "overlaps another booking (`booking` names it), or the status forbids it",
    },
    422: {
        "model": ErrorOut,
        "description": "bad window: end not after start, too long, already over, no time zone",
    },
}
# Routes that read a JSON body also answer 400 (bytes not UTF-8) and 413 (too large).
_BODY_ERRORS: dict[int | str, dict[str, object]] = {**responses(*BODY), **_ERRORS}


@router.post(
    "/v1/bookings",
    response_model=BookingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Book a room (or re-send a booking: a known external_id updates it)",
    responses={200: {"description": "re-sent: the booking with that external_id, updated"}, **_BODY_ERRORS},
)
def create_booking(
    body: BookingIn, response: Response, gateway: BookingDeskDep, who: BookingRole
) -> BookingOut | JSONResponse:
    _room_or_404(gateway, who, body.room_id)
    draft = BookingDraft(
        room_id=body.room_id,
        start=body.start.timestamp(),
        end=body.end.timestamp(),
        title=body.title,
        organizer=body.organizer,
        external_id=body.external_id,
        series_id=body.series_id,
    )
    try:
        booking, outcome = gateway.create_booking(draft, actor=who.name, visible=_visible(gateway, who))
    except BookingError as exc:
        return _refusal(exc)
    if outcome != "created":
        response.status_code = status.HTTP_200_OK
    return _out(booking, who)


@router.get(
    "/v1/bookings",
    response_model=BookingList,
    summary="Bookings, by start time",
    responses=responses(*AUTH, 422),
)
def list_bookings(
    gateway: BookingDeskDep,
    who: Viewer,
    room_id: str | None = None,
    start: Annotated[QueryTime | None, Query(description="bookings ending after this")] = None,
    end: Annotated[QueryTime | None, Query(description="bookings starting before this")] = None,
    status_: Annotated[list[Status] | None, Query(alias="status", description="repeat for several")] = None,
    organizer: str | None = None,
    external_id: str | None = None,
    series_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> BookingList:
    query = BookingQuery(
        rooms=_visible_rooms(gateway, who),
        room_id=room_id,
        start=_utc(start).timestamp() if start is not None else None,
        end=_utc(end).timestamp() if end is not None else None,
        statuses=frozenset(BookingStatus(s) for s in status_) if status_ else None,
        organizer=organizer,
        external_id=external_id,
        series_id=series_id,
        limit=limit + 1,
        offset=offset,
    )
    found = gateway.bookings_page(query)
    page = found[:limit]
    return BookingList(
        bookings=[_out(b, who) for b in page],
        count=len(page),
        next_offset=offset + limit if len(found) > limit else None,
    )


@router.get(
    "/v1/bookings/no-shows",
    response_model=NoShowsOut,
    summary="No-shows (bookings released because nobody came) per organizer or recurring series",
    responses=responses(*AUTH, 422),
)
def no_shows(
    gateway: BookingDeskDep,
    who: Operator,
    by: Literal["organizer", "series"] = "organizer",
    start: Annotated[
        QueryTime | None, Query(description="bookings starting from; default end - 30 d")
    ] = None,
    end: Annotated[QueryTime | None, Query(description="bookings starting before; default now")] = None,
) -> NoShowsOut:
    until = _utc(end) if end is not None else datetime.fromtimestamp(gateway.now(), UTC)
    try:
        since = _utc(start) if start is not None else until - DEFAULT_NO_SHOW_PERIOD
    except OverflowError:
        raise HTTPException(422, detail="start outside the years 1 to 9999") from None
    if since >= until:
        raise HTTPException(422, detail="start must be before end")
    rows = gateway.no_shows(by, since.timestamp(), until.timestamp(), _visible_rooms(gateway, who))
    return NoShowsOut(
        by=by,
        start=since,
        end=until,
        groups=[NoShowGroupOut(key=row.key, bookings=row.bookings, no_shows=row.no_shows) for row in rows],
    )


@router.get("/v1/bookings/{booking_id}", response_model=BookingOut, summary="One booking", responses=_ERRORS)
def get_booking(booking_id: str, gateway: BookingDeskDep, who: Viewer) -> BookingOut:
    booking = gateway.booking(booking_id)
    if booking is None or not _visible(gateway, who)(booking.room_id):
        raise HTTPException(404, detail="booking not found")
    return _out(booking, who)


@router.patch(
    "/v1/bookings/{booking_id}",
    response_model=BookingOut,
    summary="Move or rename a booking",
    responses=_BODY_ERRORS,
)
def update_booking(
    booking_id: str, body: BookingPatch, gateway: BookingDeskDep, who: BookingRole
) -> BookingOut | JSONResponse:
    visible = _visible(gateway, who)
    current = gateway.booking(booking_id)
    if current is None or not visible(current.room_id):
        raise HTTPException(404, detail="booking not found")
    given = body.model_fields_set
    room_id = body.room_id if body.room_id is not None else current.room_id
    _room_or_404(gateway, who, room_id)
    draft = BookingDraft(
        room_id=room_id,
        start=body.start.timestamp() if body.start is not None else current.start,
        end=body.end.timestamp() if body.end is not None else current.end,
        title=body.title if "title" in given else current.title,
        organizer=body.organizer if "organizer" in given else current.organizer,
        external_id=current.external_id,
        series_id=body.series_id if "series_id" in given else current.series_id,
    )
    try:
        booking = gateway.update_booking(booking_id, draft, actor=who.name, visible=visible)
    except BookingError as exc:
        return _refusal(exc)
    return _out(booking, who)


@router.delete(
    "/v1/bookings/{booking_id}",
    response_model=BookingOut,
    summary="Cancel a booking (kept, with status cancelled)",
    description=(
        "Cancels the booking, which frees its slot; it is not removed: it is kept with status "
        "`cancelled` and `cancelled_at`, and `GET /v1/bookings/{booking_id}` and the listings still "
        "answer it (a booking system sees its cancellations). Cancelling a cancelled booking "
        "answers it unchanged; one released or ended is a 409."
    ),
    responses=_ERRORS,
)
def cancel_booking(booking_id: str, gateway: BookingDeskDep, who: BookingRole) -> BookingOut | JSONResponse:
    try:
        booking = gateway.cancel_booking(booking_id, actor=who.name, visible=_visible(gateway, who))
    except BookingError as exc:
        return _refusal(exc)
    return _out(booking, who)


@router.post(
    "/v1/bookings/{booking_id}/checkin",
    response_model=BookingOut,
    summary="Check a booking in (sites without presence sensors, room panels)",
    responses=_ERRORS,
)
def check_in(booking_id: str, gateway: BookingDeskDep, who: BookingRole) -> BookingOut | JSONResponse:
    try:
        booking = gateway.check_in_booking(booking_id, actor=who.name, visible=_visible(gateway, who))
    except BookingError as exc:
        return _refusal(exc)
    return _out(booking, who)


@router.post(
    "/v1/rooms/{room_id}/book-now",
    response_model=BookingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Book a room from now, checked in (a room panel); 409 when it is booked or occupied",
    responses=_BODY_ERRORS,
)
def book_now(
    room_id: str, body: BookNowIn, gateway: BookingDeskDep, who: BookingRole
) -> BookingOut | JSONResponse:
    _room_or_404(gateway, who, room_id)
    try:
        booking = gateway.book_now(room_id, body.minutes * 60.0, actor=who.name)
    except BookingError as exc:
        return _refusal(exc)
    return _out(booking, who)


def _utc(value: datetime) -> datetime:
    # A query time without offset is taken as UTC, the API's time zone (as in availability).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
