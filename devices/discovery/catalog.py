"""Every announcement heard, reconciled into the devices they describe.

Announcements come one message at a time and often again (retained messages are
replayed on every subscribe): `Catalog` keeps what each said and answers each new
one with the `Changes` it makes, devices announced or changed and devices no longer
announced, so a replay changes nothing. Pure: the gateway applies the changes
(gateway/ingest/discovery.py).

Memory is bounded: at most `max_entities` Home Assistant entities are kept (a config
past it is refused with `registry_full`), at most `max_entities_per_device` of them
per device; a Zigbee2MQTT device list is bounded by the size of its message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from devices.dialects.base import DecodeError
from devices.discovery import homeassistant, zigbee2mqtt_bridge
from devices.discovery.homeassistant import Entity
from devices.discovery.model import AnnouncedDevice
from devices.discovery.zigbee2mqtt_bridge import BridgeDevice
from devices.fields import RejectReason

__all__ = ["Catalog", "Changes"]


@dataclass(frozen=True, slots=True)
class Changes:
    """What one announcement changed: devices new or different, ids no longer
    announced, and notes on entries that were skipped."""

    upserted: tuple[AnnouncedDevice, ...] = ()
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.upserted or self.removed)


@dataclass(slots=True)
class _Bridge:
    devices: dict[str, BridgeDevice] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


class Catalog:
    def __init__(self, *, max_entities: int = 20_000, max_entities_per_device: int = 64) -> None:
        self._max_entities = max_entities
        self._max_per_device = max_entities_per_device
        self._bridges: dict[str, _Bridge] = {}
        self._entities: dict[str, Entity] = {}
        # Config topic -> the keys of the entities it announced (several for a device config).
        self._keys_of_topic: dict[str, tuple[str, ...]] = {}
        # Home Assistant device key -> its entities' keys.
        self._keys_of_device: dict[str, set[str]] = {}
        self._announced: dict[str, AnnouncedDevice] = {}
        # Topic -> the announcement last accepted on it, to replay after a restart.
        self._raw: dict[str, bytes] = {}
        self.version = 0

    def __iter__(self) -> Iterator[AnnouncedDevice]:
        return iter(list(self._announced.values()))

    def get(self, device_id: str) -> AnnouncedDevice | None:
        return self._announced.get(device_id)

    def __len__(self) -> int:
        return len(self._announced)

    @property
    def entity_count(self) -> int:
        return len(self._entities)

    def raw(self) -> dict[str, bytes]:
        """Every announcement in force, by topic: enough to rebuild this catalog."""
        return dict(self._raw)

    # Zigbee2MQTT

    def bridge_devices(self, base: str, topic: str, payload: bytes) -> Changes:
        """A `<base>/bridge/devices` message (raises DecodeError for a bad one)."""
        if self._raw.get(topic) == payload:
            return Changes()  # the broker replaying it (retained): not even parsed again
        devices, notes = zigbee2mqtt_bridge.parse_devices(payload)
        bridge = self._bridges.setdefault(base, _Bridge())
        gone = set(bridge.devices) - {device.ieee for device in devices}
        bridge.devices = {device.ieee: device for device in devices}
        self._keep(topic, payload)
        return self._announce_bridge(base, bridge, gone, tuple(notes))

    def bridge_groups(self, base: str, topic: str, payload: bytes) -> Changes:
        """A `<base>/bridge/groups` message: groups can place members in rooms."""
        if self._raw.get(topic) == payload:
            return Changes()
        groups = zigbee2mqtt_bridge.parse_groups(payload)
        bridge = self._bridges.setdefault(base, _Bridge())
        bridge.groups = groups
        self._keep(topic, payload)
        return self._announce_bridge(base, bridge, set(), ())

    def _announce_bridge(self, base: str, bridge: _Bridge, gone: set[str], notes: tuple[str, ...]) -> Changes:
        upserted: list[AnnouncedDevice] = []
        for device in bridge.devices.values():
            announced = zigbee2mqtt_bridge.announce(base, device, bridge.groups.get(device.ieee, ()))
            if self._store(announced):
                upserted.append(announced)
        removed = [
            device_id
            for ieee in sorted(gone)
            if self._announced.pop(device_id := zigbee2mqtt_bridge.device_id_of(ieee), None) is not None
        ]
        if upserted or removed:
            self.version += 1
        return Changes(tuple(upserted), tuple(removed), notes)

    # Home Assistant

    def ha_config(self, prefix: str, topic: str, payload: bytes) -> Changes:
        """A discovery config (empty: the entities it announced are removed). Raises
        DecodeError for a bad config, or `registry_full` past the entity limits."""
        if payload and self._raw.get(topic) == payload:
            return Changes()
        entities = homeassistant.parse_config(topic, prefix, payload)
        old_keys = self._keys_of_topic.get(topic, ())
        if len(self._entities) - len(old_keys) + len(entities) > self._max_entities:
            raise DecodeError(
                RejectReason.REGISTRY_FULL,
                f"{len(self._entities)} announced entities (discovery.max_entities {self._max_entities})",
            )
        for entity in entities:
            keys = self._keys_of_device.get(entity.device_key, set())
            if len(keys - set(old_keys)) + 1 > self._max_per_device:
                raise DecodeError(
                    RejectReason.REGISTRY_FULL,
                    f"device {entity.device_key[:80]} announces more than {self._max_per_device} entities",
                )
        affected: set[str] = set()
        for key in old_keys:
            old = self._entities.pop(key)
            affected.add(old.device_key)
            members = self._keys_of_device.get(old.device_key)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._keys_of_device[old.device_key]
        for entity in entities:
            self._entities[entity.key] = entity
            self._keys_of_device.setdefault(entity.device_key, set()).add(entity.key)
            affected.add(entity.device_key)
        if entities:
            self._keys_of_topic[topic] = tuple(entity.key for entity in entities)
            self._keep(topic, payload)
        else:
            self._keys_of_topic.pop(topic, None)
            self._raw.pop(topic, None)
        return self._assemble(affected)

    def _assemble(self, device_keys: set[str]) -> Changes:
        upserted: list[AnnouncedDevice] = []
        removed: list[str] = []
        for key in sorted(device_keys):
            entities = [self._entities[k] for k in self._keys_of_device.get(key, ())]
            if not entities:
                gone = homeassistant.device_id_of(key)
                if self._announced.pop(gone, None) is not None:
                    removed.append(gone)
                continue
            announced = homeassistant.assemble(key, entities)
            if self._store(announced):
                upserted.append(announced)
        if upserted or removed:
            self.version += 1
        return Changes(tuple(upserted), tuple(removed))

    # Both

    def _store(self, announced: AnnouncedDevice) -> bool:
        """Keeps the device; False when it is exactly as announced before."""
        known = self._announced.get(announced.id)
        if known is not None and known.fingerprint == announced.fingerprint:
            return False
        self._announced[announced.id] = announced
        return True

    def _keep(self, topic: str, payload: bytes) -> None:
        if self._raw.get(topic) != payload:
            self._raw[topic] = payload
            self.version += 1
