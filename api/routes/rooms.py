"""Live room status."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.auth import Viewer
from api.deps import GatewayDep
from api.schemas import RoomList, RoomOut
from rules.occupancy import Occupancy

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])


@router.get("", response_model=RoomList, summary="All rooms with live status")
def list_rooms(
    gateway: GatewayDep,
    who: Viewer,
    building: str | None = None,
    floor: str | None = None,
    type: str | None = None,
    occupied: bool | None = None,
    bookable: bool | None = None,
) -> RoomList:
    now = gateway.clock.now()
    rooms = [
        RoomOut.of(room, now)
        for room in gateway.live.rooms()
        if who.can_see(room.config.building)
        and (building is None or room.config.building == building)
        and (floor is None or room.config.floor == floor)
        and (type is None or room.config.type == type)
        and (bookable is None or room.config.bookable == bookable)
        and (occupied is None or (room.state.occupancy.state == Occupancy.OCCUPIED) == occupied)
    ]
    rooms.sort(key=lambda r: (r.building, r.floor, r.id))
    return RoomList(rooms=rooms, count=len(rooms))


@router.get("/{room_id}", response_model=RoomOut, summary="One room's live status")
def get_room(room_id: str, gateway: GatewayDep, who: Viewer) -> RoomOut:
    room = gateway.live.room(room_id)
    # A room in a building the key may not see is reported as absent, not forbidden,
    # so keys cannot probe other buildings' room ids.
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail=f"room {room_id!r} not found")
    return RoomOut.of(room, gateway.clock.now())
