"""Manual control: a person's command to a light or any device. It pauses the rules
for that device until the room is next vacant (see gateway.automation.actuator)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Operator
from api.deps import GatewayDep
from gateway.automation.actuator import Decision

router = APIRouter(tags=["control"])


class DeviceCommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["ON", "OFF", "LOCK", "UNLOCK"] | None = None
    brightness: int | None = Field(default=None, ge=0, le=254)
    setpoint: float | None = Field(default=None, ge=5, le=35)
    mode: Literal["off", "heat", "cool", "auto", "eco", "fan"] | None = None

    @model_validator(mode="after")
    def _something(self) -> DeviceCommandIn:
        if not self.model_dump(exclude_none=True):
            raise ValueError("give at least one of state, brightness, setpoint, mode")
        return self


class LightsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool
    brightness_pct: float | None = Field(default=None, ge=0, le=100)


class CommandOut(BaseModel):
    device_id: str
    payload: dict[str, Any]
    outcome: Literal["sent", "unchanged", "deferred", "suppressed"]
    detail: str


class CommandsOut(BaseModel):
    commands: list[CommandOut]


def _out(device_id: str, payload: dict[str, Any], decision: Decision) -> CommandOut:
    return CommandOut(device_id=device_id, payload=payload, outcome=decision.outcome, detail=decision.detail)


@router.post("/v1/devices/{device_id}/commands", response_model=CommandOut, summary="Command one device")
def command_device(device_id: str, body: DeviceCommandIn, gateway: GatewayDep, who: Operator) -> CommandOut:
    view = gateway.live.device_view(device_id, gateway.clock.now())
    room = gateway.live.room(view.room_id) if view else None
    if view is None or room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail=f"device {device_id!r} not found")
    if view.topic is None:
        raise HTTPException(409, detail=f"device {device_id!r} has no command topic")
    payload = body.model_dump(exclude_none=True)
    with gateway.live.lock:
        decision = gateway.automation.manual_command(device_id, payload, gateway.clock.now())
    gateway.audit(
        who.name, "device_command", view.room_id, device=device_id, payload=payload, outcome=decision.outcome
    )
    return _out(device_id, payload, decision)


@router.post(
    "/v1/rooms/{room_id}/lights", response_model=CommandsOut, summary="Switch or dim a room's lights"
)
def room_lights(room_id: str, body: LightsIn, gateway: GatewayDep, who: Operator) -> CommandsOut:
    room = gateway.live.room(room_id)
    if room is None or not who.can_see(room.config.building):
        raise HTTPException(404, detail=f"room {room_id!r} not found")
    payload: dict[str, Any] = {"state": "ON" if body.on else "OFF"}
    if body.on and body.brightness_pct is not None:
        payload["brightness"] = round(body.brightness_pct * 254 / 100)
    with gateway.live.lock:
        lights = gateway.live.devices.by_kind(room_id).get("light", ())
        if not lights:
            raise HTTPException(409, detail=f"room {room_id!r} has no lights")
        now = gateway.clock.now()
        results = [
            _out(device, payload, gateway.automation.manual_command(device, payload, now))
            for device in lights
        ]
    gateway.audit(who.name, "room_lights", room_id, payload=payload, devices=[r.device_id for r in results])
    return CommandsOut(commands=results)
