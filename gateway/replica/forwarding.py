"""A booking write or a command that a replica forwarded, and the owning gateway's
answer turned into what the replica's API raises: the same exceptions as a gateway's
own bookings service (so the routes answer the same statuses), or CommandFailed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.bookings.scope import RoomScope
from gateway.bookings.service import (
    BookingConflict,
    BookingDraft,
    BookingError,
    BookingNotFound,
    InvalidBooking,
    StorageUnavailable,
)
from gateway.codec import decode_as
from gateway.shard_commands import CommandReply
from rules.bookings import Booking


class ShardUnanswered(StorageUnavailable):
    """The owning gateway did not answer a command in time, or refused it for a reason
    of its own (not its building, expired, too busy): a 503 (try again)."""


class CommandFailed(Exception):
    """A command (lights, device) the owning gateway refused: `kind` says why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def booking_refusal(reply: CommandReply, building: str) -> BookingError:
    """The owning gateway's refusal of a booking write, as its bookings service raises it."""
    detail = reply.detail or "refused"
    if reply.error == "not_found":
        return BookingNotFound(detail)
    if reply.error == "invalid":
        return InvalidBooking(detail)
    if reply.error == "conflict":
        clash = decode_as(Booking, dict(reply.clash)) if reply.clash is not None else None
        return BookingConflict(detail, clash)
    if reply.error == "storage":
        return StorageUnavailable(detail)
    return ShardUnanswered(f"the gateway of building {building!r} refused it: {detail}")


def buildings_of(visible: Callable[[str], bool]) -> frozenset[str] | None:
    """The caller's buildings, for the owning gateway to check again."""
    if isinstance(visible, RoomScope):
        return visible.buildings
    # Only RoomScope says its buildings; anything else is refused rather than widened.
    raise TypeError("a replica needs a RoomScope to forward a booking write")


def draft_args(draft: BookingDraft) -> dict[str, Any]:
    return {
        "room_id": draft.room_id,
        "start": draft.start,
        "end": draft.end,
        "title": draft.title,
        "organizer": draft.organizer,
        "external_id": draft.external_id,
        "series_id": draft.series_id,
    }


def booking_of(result: Mapping[str, Any]) -> Booking:
    data = result.get("booking")
    if not isinstance(data, dict):
        raise StorageUnavailable("the gateway's answer holds no booking")
    booking: Booking = decode_as(Booking, data)
    return booking
