"""GET /v1/rooms and /v1/rooms/{id} on a replica: the documents the gateways publish,
as they came (the same JSON as the owning gateway's answer for a viewer key).

Keys that may see booking titles (operator and above) get them filled in from the
shared store: the published document never carries them. A room no gateway has
published yet is not listed (a replica knows a room's state only from its document).

On the event loop: an answer is a dictionary lookup and the bytes kept (a listing is
sorted and joined again only after a change: a few milliseconds for a campus).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from api.auth import Viewer
from api.booking_schemas import may_see_details
from api.errors import AUTH, responses
from api.replica.deps import ReplicaDep
from api.schemas import RoomList, RoomOut
from gateway.replica.replica import Replica
from gateway.replica.room_documents import RoomDocument

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])

# Listings kept (one per distinct key scope, detail level and filters).
LISTINGS_KEPT = 256

# (the key's buildings, titles shown, building, floor, type, occupied, bookable)
_ListingKey = tuple[frozenset[str] | None, bool, str | None, str | None, str | None, bool | None, bool | None]


class RoomListings:
    """Whole listings kept until a document changes (the documents' mapping is replaced
    on every change) or, with titles, the bookings do: a campus of 2,000 rooms is
    sorted and joined once per change, not once per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[_ListingKey, tuple[object, int, bytes]] = OrderedDict()

    def get(self, key: _ListingKey, documents: object, bookings_version: int) -> bytes | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] is not documents or kept[1] != bookings_version:
                return None
            self._kept.move_to_end(key)
            return kept[2]

    def keep(self, key: _ListingKey, documents: object, bookings_version: int, body: bytes) -> None:
        with self._lock:
            self._kept[key] = (documents, bookings_version, body)
            self._kept.move_to_end(key)
            while len(self._kept) > LISTINGS_KEPT:
                self._kept.popitem(last=False)


def listings_of(request: Request) -> RoomListings:
    listings: RoomListings = request.app.state.room_listings
    return listings


def _wanted(
    d: RoomDocument,
    building: str | None,
    floor: str | None,
    type: str | None,
    occupied: bool | None,
    bookable: bool | None,
) -> bool:
    c = d.config
    return (
        (building is None or d.building == building)
        and (floor is None or d.floor == floor)
        and (type is None or c.type == type)
        and (bookable is None or c.bookable == bookable)
        and (occupied is None or (d.occupancy.value == "occupied") == occupied)
    )


def _with_titles(replica: Replica, d: RoomDocument) -> bytes:
    """The document with the titles and organizers of its bookings, from the store."""
    booking = d.data.get("booking")
    if not isinstance(booking, dict) or not any(booking.get(slot) for slot in ("current", "next")):
        return d.json
    known = {b.id: b for b in replica.bookings.of_room(d.room_id)}
    filled: dict[str, Any] = {}
    for slot in ("current", "next"):
        summary = booking.get(slot)
        found = known.get(str(summary.get("id"))) if isinstance(summary, Mapping) else None
        filled[slot] = (
            {**summary, "title": found.title, "organizer": found.organizer}
            if found is not None and isinstance(summary, Mapping)
            else summary
        )
    return orjson.dumps({**d.data, "booking": filled})


def _body(replica: Replica, d: RoomDocument, details: bool) -> bytes:
    return _with_titles(replica, d) if details else d.json


@router.get(
    "",
    response_model=RoomList,
    summary="All rooms with live status (of the key's buildings), as their gateways last published them",
    responses=responses(*AUTH, 422),
)
async def list_rooms(
    request: Request,
    replica: ReplicaDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    occupied: bool | None = None,
    bookable: bool | None = None,
) -> Response:
    details = may_see_details(who, "operator")
    listings = listings_of(request)
    key: _ListingKey = (who.buildings, details, building, floor, type, occupied, bookable)
    current = replica.room_documents()
    # Without titles a listing rests on the documents alone.
    version = replica.bookings.version if details else 0
    body = listings.get(key, current, version)
    if body is None:
        documents = sorted(
            (
                d
                for d in current.values()
                if who.can_see(d.building) and _wanted(d, building, floor, type, occupied, bookable)
            ),
            key=lambda d: (d.building, d.floor, d.room_id),
        )
        rooms = b",".join(_body(replica, d, details) for d in documents)
        body = b'{"rooms":[' + rooms + b'],"count":%d}' % len(documents)
        listings.keep(key, current, version, body)
    return Response(body, media_type="application/json")


@router.get(
    "/{room_id}",
    response_model=RoomOut,
    summary="One room's live status, as its gateway last published it",
    responses=responses(*AUTH, 404, 422),
)
async def get_room(room_id: str, replica: ReplicaDep, who: Viewer) -> Response:
    d = replica.room_document(room_id)
    # As on a gateway: a room of a building the key may not see is absent, not forbidden.
    if d is None or not who.can_see(d.building):
        raise HTTPException(404, detail="room not found")
    return Response(_body(replica, d, may_see_details(who, "operator")), media_type="application/json")
