"""The device registry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.auth import Principal, Viewer
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.schemas import DeviceList, DeviceOut
from devices.registry import DeviceView
from gateway.runtime.gateway import Gateway

router = APIRouter(prefix="/v1/devices", tags=["devices"])


def _visible(gateway: Gateway, who: Principal, view: DeviceView) -> bool:
    if who.buildings is None:
        return True
    room = gateway.room(view.room_id)
    return room is not None and who.can_see(room.config.building)


@router.get(
    "",
    response_model=DeviceList,
    summary="All devices (of rooms in the key's buildings)",
    responses=responses(*AUTH, 422),
)
def list_devices(
    gateway: GatewayDep, who: Viewer, room: str | None = None, online: bool | None = None
) -> DeviceList:
    devices = [
        DeviceOut.of(view)
        for view in gateway.devices(room)
        if (online is None or view.online is online) and _visible(gateway, who, view)
    ]
    devices.sort(key=lambda d: (d.room_id, d.id))
    return DeviceList(devices=devices, count=len(devices))


@router.get(
    "/{device_id}", response_model=DeviceOut, summary="One device", responses=responses(*AUTH, 404, 422)
)
def get_device(device_id: str, gateway: GatewayDep, who: Viewer) -> DeviceOut:
    view = gateway.device(device_id)
    if view is None or not _visible(gateway, who, view):
        raise HTTPException(404, detail="device not found")
    return DeviceOut.of(view)
