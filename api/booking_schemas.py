"""Request and response models of bookings (DESIGN.md §4).

Times in are ISO 8601 with a time zone (`2026-12-01T09:00:00Z`,
`2026-12-01T10:00:00+01:00`), nothing else: no epoch numbers, no local times
without an offset. Times out are UTC. A booking's title and organizer are shown
only to keys that may book (`booking` and above) in booking listings, and only to
`operator` and above where rooms are listed (availability, room status), so a
lobby display with a viewer key does not show who meets where.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema

from api.auth import ROLE_RANK, Principal
from rules.bookings import Booking

Status = Literal["booked", "checked_in", "released", "ended", "cancelled"]


def parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time string with a time zone, e.g. 2026-12-01T09:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 time (e.g. 2026-12-01T09:00:00Z)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a time zone: end it with Z or an offset such as +01:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range") from None


IsoTime = Annotated[
    datetime,
    PlainValidator(parse_time),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-12-01T09:00:00Z"]}),
]
Text = Annotated[str, Field(min_length=1, max_length=200)]
RoomId = Annotated[str, Field(min_length=1, max_length=64)]


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    room_id: RoomId
    start: IsoTime
    end: IsoTime
    title: Text | None = None
    organizer: Text | None = None
    # The booking system's id: a POST with a known one updates that booking.
    external_id: Text | None = None
    # Groups the occurrences of a recurring series (no-shows are counted per series).
    series_id: Text | None = None


class BookingPatch(BaseModel):
    """The fields to change; a field left out stays as it is (`null` clears a title)."""

    model_config = ConfigDict(extra="forbid")

    room_id: RoomId | None = None
    start: IsoTime | None = None
    end: IsoTime | None = None
    title: Text | None = None
    organizer: Text | None = None
    series_id: Text | None = None


class BookNowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(default=30, ge=1, le=24 * 60)


def as_time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def may_see_details(who: Principal, role: str) -> bool:
    return ROLE_RANK[who.role] >= ROLE_RANK[role]


class BookingOut(BaseModel):
    id: str
    room_id: str
    start: datetime
    end: datetime
    title: str | None = Field(description="null for viewer keys")
    organizer: str | None = Field(description="null for viewer keys")
    external_id: str | None
    series_id: str | None
    status: Status
    checked_in_at: datetime | None
    released_at: datetime | None = Field(description="when a no-show was released")
    ended_at: datetime | None = Field(description="when it ended: early (room vacant) or at its end")
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None = Field(description="the name of the API key that made it")

    @classmethod
    def of(cls, b: Booking, *, details: bool) -> BookingOut:
        return cls(
            id=b.id,
            room_id=b.room_id,
            start=datetime.fromtimestamp(b.start, UTC),
            end=datetime.fromtimestamp(b.end, UTC),
            title=b.title if details else None,
            organizer=b.organizer if details else None,
            external_id=b.external_id,
            series_id=b.series_id,
            status=b.status.value,
            checked_in_at=as_time(b.checked_in_at),
            released_at=as_time(b.released_at),
            ended_at=as_time(b.ended_at),
            cancelled_at=as_time(b.cancelled_at),
            created_at=datetime.fromtimestamp(b.created_at, UTC),
            updated_at=datetime.fromtimestamp(b.updated_at, UTC),
            created_by=b.created_by,
        )


class BookingList(BaseModel):
    bookings: list[BookingOut]
    count: int
    # Pass as `offset` for the next page; null on the last one.
    next_offset: int | None


class BookingSummary(BaseModel):
    """A booking as rooms show it: title and organizer only for operator keys and above."""

    id: str
    start: datetime
    end: datetime
    status: Status
    title: str | None = None
    organizer: str | None = None

    @classmethod
    def of(cls, b: Booking | None, *, details: bool) -> BookingSummary | None:
        if b is None:
            return None
        return cls(
            id=b.id,
            start=datetime.fromtimestamp(b.start, UTC),
            end=datetime.fromtimestamp(b.end, UTC),
            status=b.status.value,
            title=b.title if details else None,
            organizer=b.organizer if details else None,
        )


class RoomBookingOut(BaseModel):
    current: BookingSummary | None = Field(description="the booking in progress")
    next: BookingSummary | None = Field(description="the next booking to start")


class NoShowGroupOut(BaseModel):
    key: str | None = Field(description="the organizer or series id (null: bookings without one)")
    bookings: int = Field(description="bookings over or released in the period (cancelled ones not counted)")
    no_shows: int = Field(description="of those, released because nobody came")


class NoShowsOut(BaseModel):
    by: Literal["organizer", "series"]
    start: datetime
    end: datetime
    groups: list[NoShowGroupOut]
