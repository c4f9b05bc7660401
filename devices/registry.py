"""Which devices exist, where they are, and what each last said.

Records are mutable and owned by the ingest thread; readers get `DeviceView`
snapshots so they never see a record half-updated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devices.fields import DevicePayload

# Fields that are part of the vocabulary; reported ones become capabilities.
VOCABULARY = frozenset(DevicePayload.model_fields) - {"ts", "credential"}


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device as the site config declares it."""

    id: str
    room_id: str
    dialect: str = "native"
    topic: str | None = None
    name: str | None = None
    kind: str | None = None
    rated_watts: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceView:
    id: str
    room_id: str
    name: str | None
    dialect: str
    topic: str | None
    kind: str
    configured: bool
    capabilities: tuple[str, ...]
    online: bool | None
    last_seen: float | None
    battery: float | None
    last_state: dict[str, Any]


@dataclass(slots=True)
class _DeviceRecord:
    spec: DeviceSpec
    configured: bool
    capabilities: set[str] = field(default_factory=set)
    online: bool | None = None
    last_seen: float | None = None
    battery: float | None = None
    last_state: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The configured kind, else what the device's reports make it look like."""
        if self.spec.kind is not None:
            return self.spec.kind
        state = self.last_state.get("state")
        if state in ("LOCK", "UNLOCK"):
            return "lock"
        if "setpoint" in self.capabilities or "mode" in self.capabilities:
            return "hvac"
        if "brightness" in self.capabilities or state in ("ON", "OFF"):
            return "light"
        if "access" in self.capabilities:
            return "badge_reader"
        return "sensor"

    def view(self) -> DeviceView:
        return DeviceView(
            id=self.spec.id,
            room_id=self.spec.room_id,
            name=self.spec.name,
            dialect=self.spec.dialect,
            topic=self.spec.topic,
            kind=self.kind,
            configured=self.configured,
            capabilities=tuple(sorted(self.capabilities)),
            online=self.online,
            last_seen=self.last_seen,
            battery=self.battery,
            last_state=dict(self.last_state),
        )


class DeviceRegistry:
    def __init__(self, specs: Iterable[DeviceSpec] = ()) -> None:
        self._devices: dict[str, _DeviceRecord] = {
            spec.id: _DeviceRecord(spec, configured=True) for spec in specs
        }

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    def room_of(self, device_id: str) -> str | None:
        record = self._devices.get(device_id)
        return record.spec.room_id if record else None

    def ensure(self, device_id: str, room_id: str, dialect: str = "native", topic: str | None = None) -> str:
        """The device's room, registering the device in `room_id` if it is new."""
        record = self._devices.get(device_id)
        if record is None:
            record = _DeviceRecord(DeviceSpec(device_id, room_id, dialect, topic), configured=False)
            self._devices[device_id] = record
        return record.spec.room_id

    def topic_of(self, device_id: str) -> str | None:
        record = self._devices.get(device_id)
        return record.spec.topic if record else None

    def rated_watts(self, device_id: str) -> float | None:
        record = self._devices.get(device_id)
        return record.spec.rated_watts if record else None

    def by_kind(self, room_id: str) -> dict[str, tuple[str, ...]]:
        """The room's device ids grouped by kind ("light", "hvac", "lock", ...)."""
        kinds: dict[str, list[str]] = {}
        for record in self._devices.values():
            if record.spec.room_id == room_id:
                kinds.setdefault(record.kind, []).append(record.spec.id)
        return {kind: tuple(sorted(ids)) for kind, ids in kinds.items()}

    def observe(
        self,
        device_id: str,
        payload: DevicePayload,
        fields: dict[str, Any],
        now: float,
        *,
        live: bool = True,
    ) -> None:
        """Record a validated message; `fields` is what to keep as the device's last state.

        `live` is False for a retained message replayed by the broker on subscribe:
        it tells what the device last said, not that the device is there now.
        """
        record = self._devices[device_id]
        record.last_state.update(fields)
        if not record.capabilities.issuperset(fields.keys() & VOCABULARY):
            record.capabilities.update(fields.keys() & VOCABULARY)
        if payload.battery is not None:
            record.battery = payload.battery
        if live:
            record.last_seen = now
            # A device that talks is online, whatever an earlier LWT said.
            record.online = True

    def set_online(self, device_id: str, online: bool, now: float) -> None:
        record = self._devices[device_id]
        record.online = online
        if online:
            record.last_seen = now

    def get(self, device_id: str) -> DeviceView | None:
        record = self._devices.get(device_id)
        return record.view() if record else None

    def views(self) -> list[DeviceView]:
        return [record.view() for record in list(self._devices.values())]
