"""Devices that announced themselves (Zigbee2MQTT's device list, Home Assistant
discovery) and what became of each."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import Viewer
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.schemas import AnnouncedList, AnnouncedOut, AnnouncedStatus, UnsupportedOut

router = APIRouter(prefix="/v1/discovery", tags=["devices"])


@router.get(
    "",
    response_model=AnnouncedList,
    summary="Announced devices: mapped, or why not (a key scoped to buildings sees only theirs)",
    responses=responses(*AUTH, 422),
)
def list_announced(gateway: GatewayDep, who: Viewer, status: AnnouncedStatus | None = None) -> AnnouncedList:
    found: list[AnnouncedOut] = []
    for entry in gateway.discovered():
        # Devices in no room, or in a room of no known building, are site-wide.
        if who.buildings is not None and (entry.building is None or not who.can_see(entry.building)):
            continue
        if status is not None and entry.status != status:
            continue
        device = entry.device
        found.append(
            AnnouncedOut(
                id=device.id,
                source=device.source,  # type: ignore[arg-type]
                name=device.name,
                topic=device.topic,
                kind=device.kind,
                capabilities=sorted(device.capabilities),
                status=entry.status,  # type: ignore[arg-type]
                room_id=entry.room_id,
                rule=entry.rule,
                detail=entry.detail,
                unsupported=[UnsupportedOut(**problem.as_dict()) for problem in device.problems],
                ignored=list(device.ignored),
            )
        )
    found.sort(key=lambda device: device.id)
    return AnnouncedList(devices=found, count=len(found))
