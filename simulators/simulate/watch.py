"""Watching the gateway for the faults the world injects: what in its view of a device
(`GET /v1/devices/{id}`) shows each kind, looked at while the fault lasts and a
little after."""

from __future__ import annotations

import math
from typing import Any

from simulators.simulate.gateway_http import GatewayHttp
from simulators.simulate.plan import SimDevice, SitePlan
from simulators.simulate.truth import FaultRecord

FAULT_GRACE = 120.0  # simulated seconds a fault is still looked for after it ended


class FaultWatch:
    """Looks at the gateway's view of each device under a fault until it shows it."""

    def __init__(self, plan: SitePlan, gateway: GatewayHttp) -> None:
        self._plan, self._gateway = plan, gateway
        self._active: dict[int, FaultRecord] = {}
        self._until: dict[int, float] = {}
        self._ids: dict[str, str] = {}

    @property
    def watching(self) -> bool:
        return bool(self._active)

    def begin(self, record: FaultRecord) -> None:
        self._active[record.index] = record
        self._until[record.index] = math.inf

    def ended(self, record: FaultRecord, at: float) -> None:
        self._until[record.index] = at + FAULT_GRACE

    def check(self, now: float) -> None:
        for index, record in list(self._active.items()):
            if record.detected or now > self._until[index]:
                del self._active[index]
                continue
            view = self._view(self._plan.devices[record.device or ""])
            found = evidence(record.kind, view) if view is not None else None
            if found is not None:
                record.detected, record.detected_at, record.evidence = True, now, found

    def _view(self, device: SimDevice) -> dict[str, Any] | None:
        known = self._ids.get(device.key)
        for device_id in [known] if known else self._plan.gateway_ids(device):
            view = self._gateway.device(device_id)
            if view is not None:
                self._ids[device.key] = device_id
                return view
        return None


def evidence(kind: str, view: dict[str, Any]) -> str | None:
    """What in the gateway's view of a device shows the fault (`GET /v1/devices/{id}`)."""
    quality = view.get("quality") or {}
    if kind == "device_offline" and view.get("online") is False:
        return "online: false"
    if kind == "stuck_sensor" and quality.get("stuck"):
        return "quality.stuck"
    if kind == "flood" and quality.get("flooding"):
        return f"quality.flooding ({quality.get('throttled')} throttled)"
    if kind == "schema_drift" and quality.get("schema_drift"):
        return "quality.schema_drift: " + ", ".join(quality["schema_drift"])
    if kind == "battery_drain" and quality.get("battery_low"):
        return f"quality.battery_low (battery {view.get('battery')} %)"
    return None
