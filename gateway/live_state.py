"""The live model of the site: every room's state and the device registry, behind one lock.

Written by the ingest thread and the ticker, read by the API. Room states are
frozen, so a reader only needs the lock to take a consistent set of references.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from devices.fields import DevicePayload
from devices.registry import DeviceRegistry, DeviceSpec, DeviceView
from gateway import room_model
from gateway.config import RoomConfig, Settings
from gateway.room_model import RoomState
from rules.occupancy import Occupancy


@dataclass(frozen=True, slots=True)
class Room:
    """A room's description and its live state, as handed to readers."""

    config: RoomConfig
    state: RoomState
    configured: bool


class LiveState:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._configs: dict[str, RoomConfig] = {room.id: room for room in settings.site.rooms}
        self._configured = frozenset(self._configs)
        self._states: dict[str, RoomState] = {room_id: RoomState(room_id) for room_id in self._configs}
        self._timeouts: dict[str, float] = {
            room.id: settings.vacancy_timeout_for(room) for room in settings.site.rooms
        }
        self.devices = DeviceRegistry(
            DeviceSpec(d.id, d.room, d.dialect, d.topic, d.name) for d in settings.site.devices
        )

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    # Writers (call with the lock held)

    def ensure_room(self, room_id: str, building: str, floor: str) -> None:
        """Registers a room first seen on a topic, with type `unknown`."""
        if room_id in self._configs:
            return
        config = RoomConfig(id=room_id, building=building, floor=floor, type="unknown")
        self._configs[room_id] = config
        self._states[room_id] = RoomState(room_id)
        self._timeouts[room_id] = self._settings.vacancy_timeout_for(config)

    def apply(self, room_id: str, device_id: str, payload: DevicePayload, now: float) -> None:
        state = self._states[room_id]
        self._states[room_id] = room_model.apply(state, device_id, payload, now)

    def expire(self, now: float) -> int:
        """Moves every room forward to `now`; returns how many rooms changed."""
        changed = 0
        for room_id, state in self._states.items():
            new = room_model.expire(state, now, self._timeouts[room_id])
            if new is not state:
                self._states[room_id] = new
                changed += 1
        return changed

    # Readers (take the lock themselves)

    def rooms(self) -> list[Room]:
        with self._lock:
            return [
                Room(self._configs[room_id], state, room_id in self._configured)
                for room_id, state in self._states.items()
            ]

    def room(self, room_id: str) -> Room | None:
        with self._lock:
            state = self._states.get(room_id)
            if state is None:
                return None
            return Room(self._configs[room_id], state, room_id in self._configured)

    def device_views(self, room_id: str | None = None) -> list[DeviceView]:
        with self._lock:
            views = self.devices.views()
        return [view for view in views if room_id is None or view.room_id == room_id]

    def device_view(self, device_id: str) -> DeviceView | None:
        with self._lock:
            return self.devices.get(device_id)

    def counts(self) -> tuple[int, int, int]:
        """(rooms, occupied rooms, devices)."""
        with self._lock:
            occupied = sum(1 for s in self._states.values() if s.occupancy.state == Occupancy.OCCUPIED)
            return len(self._states), occupied, len(self.devices)

    def min_vacancy_timeout(self) -> float:
        """The shortest timeout any room has or a new room could get."""
        occupancy = self._settings.occupancy
        return min(
            [occupancy.vacancy_timeout, *occupancy.vacancy_timeouts.values(), *self._timeouts.values()]
        )
