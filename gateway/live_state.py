"""The live model of the site: every room's state and the device registry, behind one lock.

Written by the ingest thread and the ticker, read by the API. Room states are
frozen, so a reader only needs the lock to take a consistent set of references.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from devices.dialects.native import state_topic as native_topic
from devices.fields import DevicePayload
from devices.identity import valid_segment
from devices.registry import DeviceRegistry, DeviceSpec, DeviceView
from gateway.config import RoomConfig, Settings
from rules import occupancy, room_model
from rules.bookings import PRESENCE_FIELDS, Presence, presence_of
from rules.occupancy import FusionParams, Occupancy
from rules.room_model import RoomState


@dataclass(frozen=True, slots=True)
class LiveRoom:
    """A room's description and its live state, as handed to readers."""

    config: RoomConfig
    state: RoomState
    configured: bool
    # The site's time zone: "today" (kwh_today) is a day of it.
    zone: tzinfo
    # The room has presence sensors and every one of them is offline: its occupancy is
    # not being sensed (`occupancy.sensors_offline` of its status).
    sensors_offline: bool = False


@dataclass(frozen=True, slots=True)
class RoomsView:
    """Every room at one moment, for readers that go through them all."""

    configs: dict[str, RoomConfig]
    states: dict[str, RoomState]
    # The rooms of the site config (the others were registered from their topics).
    configured: frozenset[str]
    zone: tzinfo
    # (states_version, rooms_version) when taken: equal versions, equal rooms.
    version: tuple[int, int]
    # The rooms whose presence sensors are all offline.
    sensors_offline: frozenset[str] = frozenset()


class LiveState:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.zone: tzinfo = ZoneInfo(settings.site.timezone)
        self._lock = threading.Lock()
        self._configs: dict[str, RoomConfig] = {room.id: room for room in settings.site.rooms}
        self._configured = frozenset(self._configs)
        # Bumped when a room is added or forgotten: caches of the room list compare it.
        self.rooms_version = 0
        # Auto-registered rooms -> when a message for the room last came (forgetting).
        self._auto_heard: dict[str, float] = {}
        self._states: dict[str, RoomState] = {room_id: RoomState(room_id) for room_id in self._configs}
        self._params: dict[str, FusionParams] = {
            room.id: self._fusion_params(room) for room in settings.site.rooms
        }
        # Bumped (with the lock held) on every change of a room's state: kept room
        # documents (api.room_documents) compare it.
        self.states_version = 0
        # Bumped (with the lock held) when a room's occupancy (occupied, vacant,
        # unknown) changes: availability answers rest on it (api.availability_answers).
        self.occupancy_version = 0
        # The bookable rooms, and the `rooms_version` they were found at.
        self._bookable: tuple[RoomConfig, ...] = ()
        self._bookable_at: int | None = None
        # `rooms_with_sensors_offline`, and the registry's versions it was taken at.
        self._offline_rooms: frozenset[str] = frozenset()
        self._offline_at: tuple[int, int] | None = None
        self.devices = DeviceRegistry(
            (
                DeviceSpec(
                    d.id,
                    d.room,
                    d.dialect,
                    d.topic or self._native_topic(d.id, d.room),
                    d.name,
                    d.kind,
                    d.rated_watts,
                    d.power_source,
                    channel=d.channel,
                )
                for d in settings.site.devices
            ),
            settings.quality.params(),
        )

    def _native_topic(self, device_id: str, room_id: str) -> str:
        room = self._configs[room_id]
        return native_topic(self._settings.mqtt.topic_prefix, room.building, room.floor, room_id, device_id)

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    # Writers (call with the lock held)

    def ensure_room(self, room_id: str, building: str, floor: str, now: float) -> None:
        """Registers a room first seen on a topic, with type `unknown`."""
        if room_id in self._configs:
            return
        config = RoomConfig(id=room_id, building=building, floor=floor, type="unknown")
        self.rooms_version += 1
        self._configs[room_id] = config
        self._states[room_id] = RoomState(room_id)
        self._params[room_id] = self._fusion_params(config)
        self._auto_heard[room_id] = now

    def add_discovered(
        self, spec: DeviceSpec, capabilities: Collection[str], place: tuple[str, str] | None, now: float
    ) -> None:
        """Registers a device mapped from its announcements; `place` (building, floor)
        creates its room when the room is new (call with the lock held)."""
        if spec.room_id not in self._configs:
            assert place is not None, "a new room needs its building and floor"
            self.ensure_room(spec.room_id, place[0], place[1], now)
        self.devices.add_discovered(spec, capabilities)

    def remove_device(self, device_id: str, now: float) -> RoomState | None:
        """Drops a discovered device and what it said in its room; the room's new state
        when that changed it (call with the lock held)."""
        room_id = self.devices.remove(device_id)
        state = self._states.get(room_id) if room_id is not None else None
        if state is None:
            return None
        new = room_model.rename_devices(state, lambda device: None if device == device_id else device, now)
        if new is state:
            return None
        # Through _put: an occupancy change must move occupancy_version (kept answers).
        self._put(new.room_id, state, new)
        return new

    def room_refs(self) -> list[tuple[str, str | None, str, str]]:
        """(id, name, building, floor) of every room (safe without the lock)."""
        return [(c.id, c.name, c.building, c.floor) for c in list(self._configs.values())]

    @property
    def auto_room_count(self) -> int:
        return len(self._auto_heard)

    def heard(self, room_id: str, device_id: str, now: float) -> None:
        """A message for the device arrived: it and its room are not silent."""
        self.devices.heard(device_id, now)
        if room_id in self._auto_heard:
            self._auto_heard[room_id] = now

    def forget_silent(
        self, now: float, after: float
    ) -> tuple[list[str], list[tuple[str, str]], list[RoomState]]:
        """Forgets auto-registered devices silent for longer than `after` seconds, and
        auto-registered rooms silent as long and left without devices. Returns the
        rooms and (device, room) pairs forgotten, and the states of the remaining
        rooms that changed (what forgotten devices said no longer counts there)."""
        devices = self.devices.forget_silent(now, after)
        gone = {device for device, _ in devices}
        changed: list[RoomState] = []
        for room_id in {room for _, room in devices}:
            state = self._states.get(room_id)
            if state is None:
                continue
            new = room_model.rename_devices(state, lambda d: None if d in gone else d, now, zone=self.zone)
            if new is not state:
                self._put(room_id, state, new)
                changed.append(new)
        rooms = [
            room_id
            for room_id, heard in self._auto_heard.items()
            if now - heard > after and not self.devices.has_room(room_id)
        ]
        if rooms:
            self.rooms_version += 1
        for room_id in rooms:
            del (
                self._auto_heard[room_id],
                self._configs[room_id],
                self._states[room_id],
                self._params[room_id],
            )
        changed = [state for state in changed if state.room_id in self._states]
        return rooms, devices, changed

    def _fusion_params(self, room: RoomConfig) -> FusionParams:
        """The room type's occupancy defaults, unless the config sets a vacancy timeout."""
        occupancy = self._settings.occupancy
        configured = (
            room.vacancy_timeout is not None
            or room.type in occupancy.vacancy_timeouts
            or "vacancy_timeout" in occupancy.model_fields_set
        )
        timeout = self._settings.vacancy_timeout_for(room) if configured else None
        return FusionParams.for_room_type(room.type, timeout)

    def _put(self, room_id: str, old: RoomState, new: RoomState) -> None:
        self._states[room_id] = new
        self.states_version += 1
        if new.occupancy.state != old.occupancy.state:
            self.occupancy_version += 1

    def apply(self, room_id: str, device_id: str, payload: DevicePayload, now: float) -> None:
        state = self._states[room_id]
        new = room_model.apply(
            state,
            device_id,
            payload,
            now,
            self.devices.rated_watts(device_id),
            self._params[room_id],
            zone=self.zone,
        )
        self._put(room_id, state, new)

    def expire(self, now: float) -> int:
        """Moves every room forward to `now`; returns how many rooms changed."""
        changed = 0
        for room_id, state in self._states.items():
            new = room_model.expire(state, now, self._params[room_id], zone=self.zone)
            if new is not state:
                self._put(room_id, state, new)
                changed += 1
        return changed

    def state_of(self, room_id: str) -> RoomState:
        return self._states[room_id]

    def config_of(self, room_id: str) -> RoomConfig:
        return self._configs[room_id]

    def room_config(self, room_id: str) -> RoomConfig | None:
        """The room's description, None for a room never seen (safe without the lock)."""
        return self._configs.get(room_id)

    def explain(self, room_id: str, now: float) -> dict[str, Any]:
        with self._lock:
            state, params = self._states[room_id], self._params[room_id]
        return {"room_id": room_id, **occupancy.explain(state.occupancy, now, params)}

    def states(self) -> dict[str, RoomState]:
        """A copy of every room's current state (the states themselves are frozen)."""
        return dict(self._states)

    def export(self) -> dict[str, Any]:
        """Everything needed to restore the rooms (call with the lock held; states are frozen)."""
        return {
            "states": dict(self._states),
            "auto_rooms": [
                {
                    "id": room_id,
                    "building": c.building,
                    "floor": c.floor,
                    "heard_at": self._auto_heard[room_id],
                }
                for room_id, c in self._configs.items()
                if room_id in self._auto_heard
            ],
        }

    def restore(self, states: dict[str, RoomState], auto_rooms: list[dict[str, Any]], now: float) -> int:
        """Puts back saved room states; rooms no longer in the config are skipped.

        Auto-registered rooms come back within `registry` (the most recently heard
        first, none with auto-registration off, none silent past `forget_after`,
        none whose id is not valid in a topic); a snapshot from before rooms were
        timed counts them as heard now."""
        limits = self._settings.registry
        candidates: list[tuple[float, str, str, str]] = []
        if limits.auto_register:
            for room in auto_rooms:
                try:
                    heard = float(room.get("heard_at", now))
                    place = (str(room["id"]), str(room["building"]), str(room["floor"]))
                except (KeyError, TypeError, ValueError):
                    continue
                if now - heard <= limits.forget_after and all(valid_segment(part) for part in place):
                    candidates.append((heard, *place))
        candidates.sort(reverse=True)
        for heard, room_id, building, floor in candidates:
            if self.auto_room_count >= limits.max_auto_rooms:
                break
            self.ensure_room(room_id, building, floor, heard)
        restored = 0
        for room_id, state in states.items():
            if room_id in self._states:
                self._put(room_id, self._states[room_id], state)
                restored += 1
        return restored

    # Readers (take the lock themselves)

    def rooms(self) -> list[LiveRoom]:
        with self._lock:
            offline = self._sensors_offline()
            return [
                LiveRoom(
                    self._configs[room_id], state, room_id in self._configured, self.zone, room_id in offline
                )
                for room_id, state in self._states.items()
            ]

    def availability_view(self) -> tuple[tuple[RoomConfig, ...], dict[str, RoomState]]:
        """The bookable rooms' configs (the same tuple until `rooms_version` changes) and
        every room's state, taken together."""
        with self._lock:
            if self._bookable_at != self.rooms_version:
                self._bookable = tuple(config for config in self._configs.values() if config.bookable)
                self._bookable_at = self.rooms_version
            return self._bookable, dict(self._states)

    def rooms_view(self) -> RoomsView:
        """Every room's description and state, taken together (copies of the mappings;
        the configs and states themselves are frozen)."""
        with self._lock:
            offline = self._sensors_offline()  # first: it may bump states_version
            return RoomsView(
                dict(self._configs),
                dict(self._states),
                self._configured,
                self.zone,
                (self.states_version, self.rooms_version),
                offline,
            )

    def room(self, room_id: str) -> LiveRoom | None:
        with self._lock:
            state = self._states.get(room_id)
            if state is None:
                return None
            offline = room_id in self._sensors_offline()
            return LiveRoom(self._configs[room_id], state, room_id in self._configured, self.zone, offline)

    def device_views(self, now: float, room_id: str | None = None) -> list[DeviceView]:
        with self._lock:
            views = self.devices.views(now)
        return [view for view in views if room_id is None or view.room_id == room_id]

    def device_view(self, device_id: str, now: float) -> DeviceView | None:
        with self._lock:
            return self.devices.get(device_id, now)

    def quality_flags(self, now: float) -> dict[str, int]:
        return self.devices.quality_flags(now)  # without the lock: see DeviceRegistry

    def forget(self, room_id: str, device_id: str, now: float) -> None:
        """The device went offline: what it said no longer counts as occupancy evidence
        (call with the lock held)."""
        view_capabilities = self.devices.capabilities_of(device_id)
        state = self._states[room_id]
        new = room_model.forget(
            state,
            device_id,
            now,
            self._params[room_id],
            door="contact" in view_capabilities,
            zone=self.zone,
        )
        self._put(room_id, state, new)

    def presence(self, room_ids: Iterable[str], now: float) -> dict[str, Presence]:
        """What the rooms' sensors say about people, for bookings: occupancy, and
        whether a presence sensor (one that reported occupancy, presence or a people
        count) is reporting; rooms never seen are left out."""
        with self._lock:
            found: dict[str, Presence] = {}
            for room_id in room_ids:
                state = self._states.get(room_id)
                if state is None:
                    continue
                sensors = [
                    device
                    for devices in self.devices.by_kind(room_id).values()
                    for device in devices
                    if self.devices.capabilities_of(device) & PRESENCE_FIELDS
                ]
                online = sum(1 for device in sensors if not self.devices.is_offline(device))
                found[room_id] = presence_of(
                    state.occupancy, online > 0, now, sensors_offline=bool(sensors) and not online
                )
            return found

    @property
    def sensors_version(self) -> tuple[int, int]:
        """Changes when a device is added, forgotten or changes kind, and when one goes
        offline or comes back: when `rooms_with_sensors_offline` may change."""
        return self.devices.version, self.devices.online_version

    def rooms_with_sensors_offline(self) -> frozenset[str]:
        """The rooms whose presence sensors are all offline (a room without any is not
        among them): `presence(...)[room].sensors_offline` of every room at once."""
        with self._lock:
            return self._sensors_offline()

    def _sensors_offline(self) -> frozenset[str]:
        """`rooms_with_sensors_offline`, with the lock held: found again after
        `sensors_version` changed, for the rooms whose devices went offline or came back
        (every room when devices were added, forgotten or changed kind). A change is a
        change of those rooms' status documents, so it bumps `states_version`."""
        version = self.sensors_version
        if self._offline_at == version:
            return self._offline_rooms
        changed = self.devices.take_online_changed()
        if self._offline_at is None or self._offline_at[0] != version[0]:
            offline = frozenset(room_id for room_id in self._configs if self._sensors_all_offline(room_id))
        else:
            now_offline = {r for r in changed if r in self._configs and self._sensors_all_offline(r)}
            offline = (self._offline_rooms - changed) | now_offline
        if offline != self._offline_rooms:
            self.states_version += 1
            self._offline_rooms = offline
        self._offline_at = version
        return offline

    def _sensors_all_offline(self, room_id: str) -> bool:
        kinds = self.devices.by_kind(room_id)
        if not kinds:
            return False
        sensors = [
            device
            for devices in kinds.values()
            for device in devices
            if self.devices.capabilities_of(device) & PRESENCE_FIELDS
        ]
        return bool(sensors) and all(self.devices.is_offline(device) for device in sensors)

    def counts(self) -> tuple[int, int, int]:
        """(rooms, occupied rooms, devices)."""
        with self._lock:
            occupied = sum(1 for s in self._states.values() if s.occupancy.state == Occupancy.OCCUPIED)
            return len(self._states), occupied, len(self.devices)

    def energy(self, now: float) -> list[tuple[str, float, float]]:
        with self._lock:
            states = list(self._states.values())
        return [
            (
                state.room_id,
                state.kwh_today(now, self.zone) or 0.0,
                state.kwh_wasted_today(now, self.zone) or 0.0,
            )
            for state in states
            if state.energy_at is not None
        ]

    def min_vacancy_timeout(self) -> float:
        """The shortest timeout any room has or a new room could get."""
        occupancy = self._settings.occupancy
        return min(
            [
                occupancy.vacancy_timeout,
                *occupancy.vacancy_timeouts.values(),
                *(params.vacancy_timeout for params in self._params.values()),
            ]
        )
