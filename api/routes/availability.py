"""Which rooms a booking system can offer for a window.

Every matching bookable room is listed with `available` and the `reasons`: a room
is free when no booking (booked or checked in) overlaps the window and, for a
window that includes now, it is not occupied. Best fit first: available rooms
before the others, the smallest that fits first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, Viewer
from api.availability_answers import Answer, AvailabilityAnswers, AvailabilityQuery
from api.booking_schemas import may_see_details
from api.deps import AvailabilityDep
from api.errors import AUTH, responses
from api.query import QueryTime
from api.schemas import AvailabilityOut

router = APIRouter(prefix="/v1/availability", tags=["availability"])

# The window asked about when none is given: "free now" means free for a short meeting.
DEFAULT_WINDOW = timedelta(minutes=30)
MAX_WINDOW = timedelta(days=31)


def _utc(value: datetime) -> datetime:
    # A time without offset is taken as UTC, the API's time zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def answers_of(request: Request) -> AvailabilityAnswers:
    answers: AvailabilityAnswers = request.app.state.availability_answers
    return answers


@router.get(
    "",
    response_model=AvailabilityOut,
    summary="Bookable rooms of the key's buildings, free or not, for a window",
    responses=responses(*AUTH, 422),
)
async def availability(
    request: Request,
    gateway: AvailabilityDep,
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
    # On the event loop: a kept answer costs two comparisons and a copy; only a
    # rebuild (api.availability_answers) goes to a worker thread.
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
    query = query_of(who, building, floor, type, min_capacity, features, available)
    answers = answers_of(request)
    window = Window(now, window_start, window_end)
    answer = answers.cached(gateway.availability_version(), query, *window.instants)
    if answer is None:
        answer = await run_in_threadpool(answers.answer, gateway, query, *window.instants)
    return Response(b"".join(window.json(answer)), media_type="application/json")


def query_of(
    who: Principal,
    building: str | None,
    floor: str | None,
    type: str | None,
    min_capacity: int,
    features: list[str] | None,
    available: bool | None,
) -> AvailabilityQuery:
    """The query, from the parameters as read (shared with the fast path)."""
    return AvailabilityQuery(
        buildings=who.buildings,
        details=may_see_details(who, "operator"),
        building=building,
        floor=floor,
        type=type,
        min_capacity=min_capacity,
        features=frozenset(
            f.strip().casefold() for item in features or [] for f in item.split(",") if f.strip()
        ),
        available=available,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """The window asked about (UTC), and now, as the response states them."""

    now: datetime
    start: datetime
    end: datetime

    @property
    def instants(self) -> tuple[float, float, float]:
        """(start, end, now) in epoch seconds, to the microsecond as the response states
        them, so that `includes_now` and the rooms' answers agree."""
        return self.start.timestamp(), self.end.timestamp(), self.now.timestamp()

    def json(self, answer: Answer) -> tuple[bytes, bytes, bytes]:
        """The response body, in the shape of AvailabilityOut, in three pieces: the
        window, the kept rooms as they are, the count (a server may send the rooms, a
        campus is 720 KB, without copying them). Plain bytes: a pydantic model per
        room was most of the cost of a request (see benchmarks/availability.py)."""
        window = {"start": self.start, "end": self.end, "includes_now": self.start <= self.now < self.end}
        head = orjson.dumps(window, option=orjson.OPT_UTC_Z)[:-1] + b',"rooms":'
        return head, answer.rooms, b',"count":%d}' % answer.count
