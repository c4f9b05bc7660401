"""Manual control: a person's command to a light or any device. It pauses the rules
for that device until the room is next vacant (see gateway.automation.actuator).

Bodies are strict (no `"yes"` for true, no `"5"` for 5, no NaN or Infinity), and a
command must suit the device: its kind decides what it takes (devices.commands)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Operator
from api.deps import GatewayDep
from api.errors import AUTH, BODY, responses
from gateway.automation.actuator import Decision
from gateway.runtime.gateway import CommandRefused, NoLights

router = APIRouter(tags=["control"])


class DeviceCommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    state: Literal["ON", "OFF", "LOCK", "UNLOCK"] | None = None
    brightness: int | None = Field(default=None, ge=0, le=254)
    setpoint: float | None = Field(default=None, ge=5, le=35, allow_inf_nan=False)
    mode: Literal["off", "heat", "cool", "auto", "eco", "fan"] | None = None

    @model_validator(mode="after")
    def _something(self) -> DeviceCommandIn:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one of state, brightness, setpoint, mode")
        return self


class LightsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    on: bool
    brightness_pct: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)


class CommandOut(BaseModel):
    device_id: str
    payload: dict[str, Any]
    outcome: Literal["sent", "unchanged", "deferred", "suppressed"]
    detail: str


class CommandsOut(BaseModel):
    commands: list[CommandOut]


def _out(device_id: str, payload: dict[str, Any], decision: Decision) -> CommandOut:
    return CommandOut(device_id=device_id, payload=payload, outcome=decision.outcome, detail=decision.detail)


@router.post(
    "/v1/devices/{device_id}/commands",
    response_model=CommandOut,
    summary="Command one device (what its kind takes: lights state ON/OFF and brightness, ...)",
    responses=responses(*AUTH, 404, 409, *BODY),
)
def command_device(device_id: str, body: DeviceCommandIn, gateway: GatewayDep, who: Operator) -> CommandOut:
    view = gateway.device(device_id)
    room = gateway.room(view.room_id) if view else None
    if view is None or room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail="device not found")
    if view.topic is None:
        raise HTTPException(409, detail=f"device {device_id!r} has no command topic")
    payload = body.model_dump(exclude_none=True)
    try:
        decision = gateway.command_device(device_id, payload, actor=who.name)
    except CommandRefused as exc:
        raise HTTPException(409, detail=f"device {device_id!r}: {exc}") from None
    return _out(device_id, payload, decision)


@router.post(
    "/v1/rooms/{room_id}/lights",
    response_model=CommandsOut,
    summary="Switch or dim a room's lights",
    responses=responses(*AUTH, 404, 409, *BODY),
)
def room_lights(room_id: str, body: LightsIn, gateway: GatewayDep, who: Operator) -> CommandsOut:
    room = gateway.room(room_id)
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail="room not found")
    try:
        commands = gateway.set_room_lights(room_id, body.on, body.brightness_pct, actor=who.name)
    except NoLights:
        raise HTTPException(409, detail=f"room {room_id!r} has no lights") from None
    return CommandsOut(commands=[_out(c.device_id, c.payload, c.decision) for c in commands])
