"""Manual control through a replica: the command goes to the gateway that owns the room
(gateway/shard_commands.py), which carries it out, audits it as the caller's and
answers; the replica answers with the gateway's outcome, or 503 when none came within
`replica.command_timeout` (the gateway refuses it after that)."""

from __future__ import annotations

from typing import NoReturn

from fastapi import APIRouter, HTTPException

from api.auth import Operator
from api.errors import AUTH, BODY, responses
from api.replica.deps import ReplicaDep
from api.routes.control import CommandOut, CommandsOut, DeviceCommandIn, LightsIn
from gateway.replica.forwarding import CommandFailed

router = APIRouter(tags=["control"])

# The owning gateway's refusals as HTTP statuses; anything else (not answered, not its
# building, expired, busy) is 503: try again.
_STATUS = {"not_found": 404, "refused": 409, "conflict": 409, "invalid": 422}


def _refused(exc: CommandFailed) -> NoReturn:
    raise HTTPException(_STATUS.get(exc.kind, 503), detail=str(exc)) from None


@router.post(
    "/v1/devices/{device_id}/commands",
    response_model=CommandOut,
    summary="Command one device of the site config, through the gateway of its building",
    responses=responses(*AUTH, 404, 409, 503, *BODY),
)
def command_device(device_id: str, body: DeviceCommandIn, replica: ReplicaDep, who: Operator) -> CommandOut:
    building = replica.device_building(device_id)
    if building is None or not who.can_see(building):
        raise HTTPException(404, detail="device not found")
    payload = body.model_dump(exclude_none=True)
    try:
        result = replica.command_device(device_id, payload, actor=who.name, buildings=who.buildings)
    except CommandFailed as exc:
        _refused(exc)
    return CommandOut.model_validate(result)


@router.post(
    "/v1/rooms/{room_id}/lights",
    response_model=CommandsOut,
    summary="Switch or dim a room's lights, through the gateway of its building",
    responses=responses(*AUTH, 404, 409, 503, *BODY),
)
def room_lights(room_id: str, body: LightsIn, replica: ReplicaDep, who: Operator) -> CommandsOut:
    building = replica.building_of(room_id)
    if building is None or not who.can_see(building):
        raise HTTPException(404, detail="room not found")
    try:
        commands = replica.set_room_lights(
            room_id, body.on, body.brightness_pct, actor=who.name, buildings=who.buildings
        )
    except CommandFailed as exc:
        _refused(exc)
    return CommandsOut(commands=[CommandOut.model_validate(c) for c in commands])
