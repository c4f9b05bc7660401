"""GET /v1/rooms and /v1/rooms/{id} on a replica: the documents the gateways publish,
as they came (the same JSON as the owning gateway's answer for a viewer key).

Keys that may see booking titles (operator and above) get them filled in from the
shared store: the published document never carries them. A room no gateway has
published yet is not listed (a replica knows a room's state only from its document).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Response

from api.auth import Viewer
from api.booking_schemas import may_see_details
from api.errors import AUTH, responses
from api.replica.deps import ReplicaDep
from api.schemas import RoomList, RoomOut
from gateway.replica.replica import Replica
from gateway.replica.room_documents import RoomDocument

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])


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
def list_rooms(
    replica: ReplicaDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    occupied: bool | None = None,
    bookable: bool | None = None,
) -> Response:
    details = may_see_details(who, "operator")
    documents = sorted(
        (
            d
            for d in replica.room_documents().values()
            if who.can_see(d.building) and _wanted(d, building, floor, type, occupied, bookable)
        ),
        key=lambda d: (d.building, d.floor, d.room_id),
    )
    rooms = b",".join(_body(replica, d, details) for d in documents)
    return Response(b'{"rooms":[' + rooms + b'],"count":%d}' % len(documents), media_type="application/json")


@router.get(
    "/{room_id}",
    response_model=RoomOut,
    summary="One room's live status, as its gateway last published it",
    responses=responses(*AUTH, 404, 422),
)
def get_room(room_id: str, replica: ReplicaDep, who: Viewer) -> Response:
    d = replica.room_document(room_id)
    # As on a gateway: a room of a building the key may not see is absent, not forbidden.
    if d is None or not who.can_see(d.building):
        raise HTTPException(404, detail="room not found")
    return Response(_body(replica, d, may_see_details(who, "operator")), media_type="application/json")
