"""Which devices exist, where they are, and what each last said.

Records are mutable and owned by the ingest thread; readers get `DeviceView`
snapshots so they never see a record half-updated.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from devices.discovery.model import Commander, DiscoveryInfo
from devices.fields import DevicePayload
from devices.quality import DEFAULT_QUALITY, DeviceQuality, QualityParams, battery_low

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
    # "mains" or "battery"; None: battery if the device ever reports a battery level.
    power_source: str | None = None
    # The channel of a multi-channel device the entry stands for (Shelly's `switch:1`).
    channel: int | None = None
    # Set for a device mapped from its own announcements (devices/discovery/): how it
    # was mapped, and how it takes commands when its dialect's own way does not do.
    discovery: DiscoveryInfo | None = None
    commander: Commander | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class DeviceView:
    id: str
    room_id: str
    name: str | None
    dialect: str
    topic: str | None
    kind: str
    configured: bool
    # The channel of a multi-channel device the entry stands for (Shelly), else None.
    channel: int | None
    capabilities: tuple[str, ...]
    online: bool | None
    last_seen: float | None
    battery: float | None
    last_state: dict[str, Any]
    quality: dict[str, Any]
    # How a discovered device was mapped (DiscoveryInfo.as_dict); None for others.
    mapping: dict[str, Any] | None = None


@dataclass(slots=True)
class _DeviceRecord:
    spec: DeviceSpec
    configured: bool
    # Shared between devices with the same capabilities (see `_shared_capabilities`).
    capabilities: frozenset[str] = frozenset()
    online: bool | None = None
    last_seen: float | None = None
    battery: float | None = None
    quality: DeviceQuality = field(default_factory=DeviceQuality)
    # When the gateway last got any message from the device (retained ones too):
    # auto-registered devices silent for long are forgotten by it.
    heard_at: float | None = None
    # The last state as field names (one tuple shared by every device that has the
    # same ones: `_shared_keys`) and their values: a dict per device was its largest
    # part (issue 17: memory per device). `last_state` gives it as a dict.
    state_keys: tuple[str, ...] = ()
    state_values: tuple[Any, ...] = ()

    @property
    def last_state(self) -> dict[str, Any]:
        """What the device last said, field by field (a new dict each time)."""
        return dict(zip(self.state_keys, self.state_values, strict=True))

    @last_state.setter
    def last_state(self, state: dict[str, Any]) -> None:
        self.state_keys = _shared_keys(tuple(state))
        self.state_values = tuple(state.values())

    def state_value(self, name: str) -> Any:
        """One field of the last state; None when the device never said it."""
        try:
            return self.state_values[self.state_keys.index(name)]
        except ValueError:
            return None

    def merge_state(self, fields: dict[str, Any]) -> None:
        """What a message said, over what the device said before."""
        keys = tuple(fields)
        if keys == self.state_keys:  # the usual case: the same fields every time
            self.state_values = tuple(fields.values())
        elif self.state_keys:
            self.last_state = {**self.last_state, **fields}
        else:
            self.state_keys, self.state_values = _shared_keys(keys), tuple(fields.values())

    @property
    def kind(self) -> str:
        """The configured kind, else what the device's reports make it look like."""
        if self.spec.kind is not None:
            return self.spec.kind
        state = self.state_value("state")
        if state in ("LOCK", "UNLOCK"):
            return "lock"
        if "setpoint" in self.capabilities or "mode" in self.capabilities:
            return "hvac"
        if "brightness" in self.capabilities or state in ("ON", "OFF"):
            return "light"
        if "access" in self.capabilities:
            return "badge_reader"
        return "sensor"

    def view(self, quality: dict[str, Any]) -> DeviceView:
        return DeviceView(
            id=self.spec.id,
            room_id=self.spec.room_id,
            name=self.spec.name,
            dialect=self.spec.dialect,
            topic=self.spec.topic,
            kind=self.kind,
            configured=self.configured,
            channel=self.spec.channel,
            capabilities=tuple(sorted(self.capabilities)),
            online=self.online,
            last_seen=self.last_seen,
            battery=self.battery,
            last_state=self.last_state,
            quality=quality,
            mapping=self.spec.discovery.as_dict() if self.spec.discovery is not None else None,
        )


def _sees_someone(fields: dict[str, Any]) -> bool:
    """Whether a reading is evidence of a person (what corroborates another sensor)."""
    return (
        fields.get("occupancy") is True
        or fields.get("presence") is True
        or (fields.get("people") or 0) > 0
        or (fields.get("entered") or 0) > 0
        or fields.get("access") == "granted"
    )


class DeviceRegistry:
    def __init__(self, specs: Iterable[DeviceSpec] = (), quality: QualityParams = DEFAULT_QUALITY) -> None:
        self.quality_params = quality
        # Room -> device -> when it last saw someone: corroboration for stuck sensors.
        self._seen_someone: dict[str, dict[str, float]] = {}
        self._devices: dict[str, _DeviceRecord] = {
            spec.id: _DeviceRecord(spec, configured=True) for spec in specs
        }
        self._configured = len(self._devices)
        # Room -> its devices, so per-room lookups do not scan the whole site.
        self._by_room: dict[str, list[_DeviceRecord]] = {}
        self._kinds: dict[str, dict[str, tuple[str, ...]]] = {}
        # Bumped whenever a device is added or may have changed kind: caches of
        # anything derived from the registry compare it.
        self.version = 0
        # Bumped whenever a device goes offline or comes back (caches of what rests on
        # which devices are online compare it, with `version`).
        self.online_version = 0
        # The rooms of the devices that went offline or came back since the last
        # `take_online_changed`: what rests on them is found again for those rooms only.
        self._online_changed: set[str] = set()
        for record in self._devices.values():
            self._by_room.setdefault(record.spec.room_id, []).append(record)

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    @property
    def auto_count(self) -> int:
        """How many devices were registered on first sight (not from the config)."""
        return len(self._devices) - self._configured

    def room_of(self, device_id: str) -> str | None:
        record = self._devices.get(device_id)
        return record.spec.room_id if record else None

    def configured_room(self, device_id: str) -> str | None:
        """The room of a device the site config lists; None for any other id."""
        record = self._devices.get(device_id)
        return record.spec.room_id if record is not None and record.configured else None

    def spec_of(self, device_id: str) -> tuple[DeviceSpec, bool] | None:
        """The device's description and whether the config lists it; None when unknown."""
        record = self._devices.get(device_id)
        return (record.spec, record.configured) if record else None

    def ensure(
        self,
        device_id: str,
        room_id: str,
        dialect: str = "native",
        topic: str | None = None,
        name: str | None = None,
    ) -> str:
        """The device's room, registering the device in `room_id` if it is new."""
        record = self._devices.get(device_id)
        if record is None:
            record = _DeviceRecord(DeviceSpec(device_id, room_id, dialect, topic, name), configured=False)
            self._devices[device_id] = record
            self._by_room.setdefault(room_id, []).append(record)
            self._changed()
        return record.spec.room_id

    def heard(self, device_id: str, now: float) -> None:
        """A message from the device arrived (whatever became of it)."""
        record = self._devices.get(device_id)
        if record is not None:
            record.heard_at = now

    def has_room(self, room_id: str) -> bool:
        """Whether any device is registered in the room."""
        return bool(self._by_room.get(room_id))

    def forget_silent(self, now: float, after: float) -> list[tuple[str, str]]:
        """Forgets every auto-registered device not heard from for longer than `after`
        seconds; returns (device, room) of each. Configured devices are never forgotten."""
        gone = [
            record
            for record in self._devices.values()
            if not record.configured
            and record.spec.discovery is None
            and (record.heard_at is None or now - record.heard_at > after)
        ]
        for record in gone:
            self._drop(record)
        if gone:
            self._changed()
        return [(record.spec.id, record.spec.room_id) for record in gone]

    def _drop(self, record: _DeviceRecord) -> None:
        device_id, room_id = record.spec.id, record.spec.room_id
        del self._devices[device_id]
        members = self._by_room.get(room_id, [])
        members.remove(record)
        if not members:
            self._by_room.pop(room_id, None)
        seen = self._seen_someone.get(room_id)
        if seen is not None:
            seen.pop(device_id, None)
            if not seen:
                del self._seen_someone[room_id]

    def add_discovered(self, spec: DeviceSpec, capabilities: Collection[str]) -> None:
        """Registers a device mapped from its announcements (`spec.discovery` set), with
        the capabilities they announce; it counts as auto-registered (`auto_count`)
        but is never forgotten for silence: it goes when its announcements say so."""
        record = _DeviceRecord(
            spec, configured=False, capabilities=_shared_capabilities(frozenset(capabilities) & VOCABULARY)
        )
        self._devices[spec.id] = record
        self._by_room.setdefault(spec.room_id, []).append(record)
        self._changed()

    def update_discovered(self, spec: DeviceSpec, capabilities: Collection[str]) -> None:
        """A discovered device announced again in the same room (renamed, new topics,
        new kind): what it said so far is kept."""
        record = self._devices[spec.id]
        assert record.spec.room_id == spec.room_id, "a device that changes room is removed and added"
        record.spec = spec
        announced = frozenset(capabilities) & VOCABULARY
        record.capabilities = _shared_capabilities(record.capabilities | announced)
        self._changed()

    def remove(self, device_id: str) -> str | None:
        """Drops a device that is not configured (a discovered one that left); returns
        its room, None when there was no such device."""
        record = self._devices.get(device_id)
        if record is None or record.configured:
            return None
        self._drop(record)
        self._changed()
        return record.spec.room_id

    def commander_of(self, device_id: str) -> Commander | None:
        record = self._devices.get(device_id)
        return record.spec.commander if record else None

    def fields_problem(self, device_id: str, fields: Collection[str], max_fields: int) -> str | None:
        """Why keeping `fields` as part of the device's last state would take it past
        `max_fields` distinct fields; None when it would not."""
        record = self._devices.get(device_id)
        kept = record.state_keys if record is not None else ()
        if len(kept) + len(fields) <= max_fields:
            return None  # the common case: no need to count the new ones
        total = len(kept) + sum(1 for key in fields if key not in kept)
        if total <= max_fields:
            return None
        return f"device {device_id} would keep {total} fields > registry.max_fields {max_fields}"

    def topic_of(self, device_id: str) -> str | None:
        record = self._devices.get(device_id)
        return record.spec.topic if record else None

    def expire_silent(
        self, now: float, mains_timeout: float, battery_timeout: float
    ) -> list[tuple[str, str]]:
        """Marks offline every online device silent for longer than its timeout
        (battery devices report rarely, so they get a longer one); returns
        (device, room) of each."""
        gone: list[tuple[str, str]] = []
        for record in self._devices.values():
            if record.online is not True or record.last_seen is None:
                continue
            battery = record.spec.power_source == "battery" or (
                record.spec.power_source is None and record.battery is not None
            )
            if now - record.last_seen > (battery_timeout if battery else mains_timeout):
                record.online = False
                self.online_version += 1
                self._online_changed.add(record.spec.room_id)
                gone.append((record.spec.id, record.spec.room_id))
        return gone

    def take_online_changed(self) -> set[str]:
        """The rooms with a device that went offline or came back since the last call."""
        changed, self._online_changed = self._online_changed, set()
        return changed

    def is_offline(self, device_id: str) -> bool:
        record = self._devices.get(device_id)
        return record is not None and record.online is False

    def capabilities_of(self, device_id: str) -> frozenset[str]:
        record = self._devices.get(device_id)
        return record.capabilities if record else frozenset()

    def dialect_of(self, device_id: str) -> str | None:
        record = self._devices.get(device_id)
        return record.spec.dialect if record else None

    def kind_of(self, device_id: str) -> str | None:
        """The device's kind (configured, else inferred from its reports); None if unknown."""
        record = self._devices.get(device_id)
        return record.kind if record else None

    def rated_watts(self, device_id: str) -> float | None:
        record = self._devices.get(device_id)
        return record.spec.rated_watts if record else None

    def by_kind(self, room_id: str) -> dict[str, tuple[str, ...]]:
        """The room's device ids grouped by kind ("light", "hvac", "lock", ...)."""
        cached = self._kinds.get(room_id)
        if cached is not None:
            return cached
        kinds: dict[str, list[str]] = {}
        for record in self._by_room.get(room_id, ()):
            kinds.setdefault(record.kind, []).append(record.spec.id)
        result = {kind: tuple(sorted(ids)) for kind, ids in kinds.items()}
        self._kinds[room_id] = result
        return result

    def _changed(self) -> None:
        self._kinds.clear()
        self.version += 1

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
        record.merge_state(fields)
        record.quality.observe(fields, now, self.quality_params)
        if live and _sees_someone(fields):
            self._seen_someone.setdefault(record.spec.room_id, {})[device_id] = now
        if not record.capabilities.issuperset(fields.keys() & VOCABULARY):
            record.capabilities = _shared_capabilities(record.capabilities | (fields.keys() & VOCABULARY))
            self._changed()  # new capabilities may change the device's kind
        if payload.battery is not None:
            record.battery = payload.battery
        if live:
            record.last_seen = now
            # A device that talks is online, whatever an earlier LWT said.
            if record.online is not True:
                record.online = True
                self.online_version += 1
                self._online_changed.add(record.spec.room_id)

    def last_state_of(self, device_id: str) -> dict[str, Any]:
        """A copy of what the device last said (empty for a device not registered)."""
        record = self._devices.get(device_id)
        return record.last_state if record else {}

    def holds(self, device_id: str, fields: dict[str, Any]) -> bool:
        """Whether the device's last state already has every one of `fields`, with the
        same value (and type: `true` is not `1`)."""
        record = self._devices.get(device_id)
        if record is None or not record.state_keys:
            return False
        last = record.last_state
        missing = object()
        for key, value in fields.items():
            held = last.get(key, missing)
            if held is missing or type(held) is not type(value) or held != value:
                return False
        return True

    def restore_last_state(self, device_id: str, state: dict[str, Any]) -> bool:
        """Puts back the last state a store kept for a registered device (what it said
        since wins); False when the device is not registered (yet)."""
        record = self._devices.get(device_id)
        if record is None:
            return False
        record.last_state = {**state, **record.last_state}
        new = state.keys() & VOCABULARY
        if not record.capabilities.issuperset(new):
            record.capabilities = _shared_capabilities(record.capabilities | new)
            self._changed()
        battery = state.get("battery")
        if record.battery is None and isinstance(battery, int | float) and not isinstance(battery, bool):
            record.battery = float(battery)
        return True

    def set_online(self, device_id: str, online: bool, now: float) -> None:
        record = self._devices[device_id]
        if record.online is not online:
            record.online = online
            self.online_version += 1
            self._online_changed.add(record.spec.room_id)
        if online:
            record.last_seen = now

    def admit(self, device_id: str, now: float) -> bool:
        """Whether a message from the device is within its rate budget (flood protection);
        a device not registered yet is always admitted."""
        record = self._devices.get(device_id)
        return record is None or record.quality.admit(now, self.quality_params)

    def _corroborated_at(self, record: _DeviceRecord) -> float | None:
        """When another device of the record's room last saw someone."""
        seen = self._seen_someone.get(record.spec.room_id)
        if not seen:
            return None
        others = [at for device, at in list(seen.items()) if device != record.spec.id]
        return max(others, default=None)

    def _quality_of(self, record: _DeviceRecord, now: float) -> dict[str, Any]:
        return record.quality.view(now, record.battery, self._corroborated_at(record), self.quality_params)

    def get(self, device_id: str, now: float) -> DeviceView | None:
        record = self._devices.get(device_id)
        return record.view(self._quality_of(record, now)) if record else None

    def views(self, now: float) -> list[DeviceView]:
        return [record.view(self._quality_of(record, now)) for record in list(self._devices.values())]

    def quality_flags(self, now: float) -> dict[str, int]:
        """How many devices carry each data-quality flag (for /metrics). Safe without
        the live-state lock (a scrape must not hold up ingest): it only reads, and
        takes each collection whole before walking it."""
        p = self.quality_params
        counts = {"flooding": 0, "stuck": 0, "schema_drift": 0, "battery_low": 0, "offline": 0}
        for record in list(self._devices.values()):
            q = record.quality
            counts["flooding"] += q.flooding(now, p)
            counts["schema_drift"] += bool(q.drift_fields)
            counts["battery_low"] += battery_low(record.battery, p)
            counts["offline"] += record.online is False
            if q.may_be_stuck(now, p):
                counts["stuck"] += q.stuck(now, self._corroborated_at(record), p)
        return counts


# Capability sets are subsets of VOCABULARY and most devices share one of a few: one
# frozenset per distinct set (a set per device cost 216 bytes of each device's ~3 KB).
# Bounded by what a site's devices report; capped all the same.
_MAX_SHARED_CAPABILITIES = 10_000
_capability_sets: dict[frozenset[str], frozenset[str]] = {}


def _shared_capabilities(capabilities: frozenset[str]) -> frozenset[str]:
    shared = _capability_sets.get(capabilities)
    if shared is not None:
        return shared
    if len(_capability_sets) < _MAX_SHARED_CAPABILITIES:
        _capability_sets[capabilities] = capabilities
    return capabilities


# The field names of last states, one tuple per distinct list (in order): devices of
# a kind say the same fields. Bounded like the capability sets.
_MAX_SHARED_KEYS = 10_000
_key_lists: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    shared = _key_lists.get(keys)
    if shared is not None:
        return shared
    if len(_key_lists) < _MAX_SHARED_KEYS:
        _key_lists[keys] = keys
    return keys
