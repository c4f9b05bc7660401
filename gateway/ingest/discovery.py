"""Devices that announce themselves, mapped at run time: routes, subscriptions, registry.

The ingest pipeline hands every announcement here (`handles`, `handle`): a
Zigbee2MQTT `<base>/bridge/devices` or `/bridge/groups` message, or a Home Assistant
discovery config. The catalog (devices/discovery/catalog.py) says which devices it
adds, changes or removes; this module places each in a room
(devices/discovery/placement.py), registers it (within `registry.max_auto_devices`
and `max_auto_rooms`: past them it is refused and the refusal counted as a rejected
message, `registry_full`), routes its topics and subscribes to them, and undoes all
of that when it leaves, moves room or is renamed. What the gateway subscribes to is
then always the configured topics plus those of the devices mapped now.

A topic belongs to one device. The site config comes first: a discovered device
whose state topic a configured device uses is not mapped. Then Zigbee2MQTT's own
device list, then Home Assistant discovery (Zigbee2MQTT announces its devices
both ways): the later-ranked one is superseded, and mapped again if the other
leaves. An availability topic that several devices announce (Zigbee2MQTT's
`bridge/state`) is followed for none of them: a bridge going down says nothing
certain about each device, and the last-seen timeouts still apply.

Runs on the ingest thread (announcements are messages like any other); readers
(the API's report, the snapshot) take `_lock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from devices.dialects.base import DecodeError, TopicKind
from devices.discovery.catalog import Catalog, Changes
from devices.discovery.homeassistant import config_topic_parts
from devices.discovery.model import AnnouncedDevice, DiscoveryInfo
from devices.discovery.placement import Placement, RoomDirectory, RoomRef, RoomRule, place
from devices.fields import RejectReason
from devices.registry import DeviceSpec
from gateway.automation.runner import Automation
from gateway.config import Settings
from gateway.ingest.pipeline import Route
from gateway.ingest.routes import RouteTable
from gateway.live_state import LiveState
from gateway.logs import kv
from gateway.mqtt.transport import InboundMessage
from rules.room_model import RoomState

log = logging.getLogger("officegw.discovery")

# Source -> rank: a device of a lower rank gives way to one of a higher for a topic.
_RANK = {"homeassistant": 1, "zigbee2mqtt": 2}
STATUSES = ("mapped", "unplaced", "other_shard", "refused", "superseded", "nothing_to_read")
# Where the gateway publishes: no discovered device may claim these.
_GATEWAY_PREFIX = "officegw/"

Subscriber = Callable[[Collection[str]], None]


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """One announced device and what became of it (GET /v1/discovery)."""

    device: AnnouncedDevice
    status: str  # mapped, unplaced, other_shard, refused, superseded, nothing_to_read
    room_id: str | None
    building: str | None
    rule: str
    detail: str


@dataclass(slots=True)
class Outcome:
    """What one announcement did, for the pipeline: room states to record, refusals
    to count (reason, detail), and devices dropped."""

    rooms: dict[str, RoomState] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """Subscription changes collected under the live-state lock, sent after it."""

    subscribe: set[str] = field(default_factory=set)
    unsubscribe: set[str] = field(default_factory=set)

    def add(self, topic: str) -> None:
        self.unsubscribe.discard(topic)
        self.subscribe.add(topic)

    def drop(self, topic: str) -> None:
        self.subscribe.discard(topic)
        self.unsubscribe.add(topic)


class Discovery:
    def __init__(
        self,
        settings: Settings,
        *,
        live: LiveState,
        routes: RouteTable[Route],
        subscribe: Subscriber,
        unsubscribe: Subscriber,
        automation: Automation | None = None,
    ) -> None:
        section = settings.discovery
        self._z2m_base = section.zigbee2mqtt.base_topic if section.zigbee2mqtt.enabled else None
        self._ha_prefix = section.homeassistant.prefix if section.homeassistant.enabled else None
        self._max_payload = section.max_payload_bytes
        self._rules = [
            RoomRule(rule.field, rule.text, rule.room, index) for index, rule in enumerate(section.rooms)
        ]
        self._shard = frozenset(settings.gateway.buildings)
        self._limits = settings.registry
        self._native_prefix = settings.mqtt.topic_prefix
        self._live = live
        self._routes = routes
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._automation = automation
        self._catalog = Catalog(
            max_entities=section.max_entities, max_entities_per_device=settings.registry.max_fields
        )
        self._status: dict[str, DiscoveredDevice] = {}
        # Mapped device -> the topics routed for it (state and command; availability apart).
        self._topics: dict[str, tuple[str, ...]] = {}
        # Availability topic -> the devices whose announcements name it, and back.
        self._availability: dict[str, set[str]] = {}
        self._availability_of: dict[str, set[str]] = {}
        # The rooms by every text that names them, as of `LiveState.rooms_version`.
        self._directory: tuple[int, RoomDirectory] | None = None
        # Device -> devices waiting for a topic it holds.
        self._blocking: dict[str, set[str]] = {}
        self._saved_version = -1
        self._lock = threading.Lock()

    # What the pipeline asks

    @property
    def enabled(self) -> bool:
        return self._z2m_base is not None or self._ha_prefix is not None

    def handles(self, topic: str) -> bool:
        if self._z2m_base is not None and topic in (
            f"{self._z2m_base}/bridge/devices",
            f"{self._z2m_base}/bridge/groups",
        ):
            return True
        return self._ha_prefix is not None and config_topic_parts(topic, self._ha_prefix) is not None

    def handle(self, message: InboundMessage, now: float) -> Outcome:
        """Applies one announcement; raises DecodeError for one that cannot be read."""
        return self._apply(self._read(message.topic, message.payload), now)

    def retry(self, now: float) -> Outcome:
        """Tries again to place devices no room took (rooms appear at run time)."""
        waiting = [entry.device for entry in self._status.values() if entry.status == "unplaced"]
        return self._apply(Changes(tuple(waiting)), now) if waiting else Outcome()

    def _read(self, topic: str, payload: bytes) -> Changes:
        catalog = self._catalog
        if self._z2m_base is not None and topic.startswith(self._z2m_base + "/bridge/"):
            if len(payload) > self._max_payload:
                raise DecodeError(
                    RejectReason.OVERSIZED,
                    f"{len(payload)} bytes > discovery.max_payload_bytes {self._max_payload}",
                )
            with self._lock:
                if topic.endswith("/devices"):
                    changes = catalog.bridge_devices(self._z2m_base, topic, payload)
                else:
                    changes = catalog.bridge_groups(self._z2m_base, topic, payload)
            for note in changes.notes:
                log.debug(kv("bridge device skipped", topic=topic, note=note))
            return changes
        assert self._ha_prefix is not None
        with self._lock:
            return catalog.ha_config(self._ha_prefix, topic, payload)

    # Applying changes

    def _apply(self, changes: Changes, now: float) -> Outcome:
        outcome = Outcome()
        pending = _Pending()
        with self._live.lock, self._lock:
            for device_id in changes.removed:
                self._unmap(device_id, now, outcome, pending)
                self._status.pop(device_id, None)
                outcome.removed.append(device_id)
                self._release(device_id, now, outcome, pending)
            for device in changes.upserted:
                self._map(device, now, outcome, pending)
            # Still under the lock: whoever sees a device mapped also sees its topics
            # subscribed (or pending, `Transport.subscriptions_pending`). On the ingest
            # thread no message can come in between: they are handled on it too.
            if pending.unsubscribe:
                self._unsubscribe(sorted(pending.unsubscribe))
            if pending.subscribe:
                self._subscribe(sorted(pending.subscribe))
        return outcome

    def _release(self, holder: str, now: float, outcome: Outcome, pending: _Pending) -> None:
        """Maps again the devices that waited for a topic `holder` had."""
        for waiting in sorted(self._blocking.pop(holder, ())):
            entry = self._status.get(waiting)
            if entry is not None and entry.status in ("superseded", "refused"):
                self._map(entry.device, now, outcome, pending)

    def _set(
        self, device: AnnouncedDevice, status: str, placement: Placement, building: str | None = None
    ) -> None:
        self._status[device.id] = DiscoveredDevice(
            device, status, placement.room, building, placement.rule, placement.problem or placement.detail
        )

    def _map(self, device: AnnouncedDevice, now: float, outcome: Outcome, pending: _Pending) -> None:
        if not any(route.kind is TopicKind.STATE for route in device.routes):
            self._unmap(device.id, now, outcome, pending)
            self._set(
                device, "nothing_to_read", Placement(None, "none", "no entity it announces can be read")
            )
            return
        version = self._live.rooms_version
        if self._directory is None or self._directory[0] != version:
            self._directory = (version, RoomDirectory(RoomRef(*ref) for ref in self._live.room_refs()))
        directory = self._directory[1]
        placement = place(device.hints, self._rules, directory, source=device.source)
        if placement.room is None:
            self._unmap(device.id, now, outcome, pending)
            self._set(device, "refused" if placement.problem else "unplaced", placement)
            return
        known = directory.get(placement.room)
        building = known.building if known is not None else placement.building
        floor = known.floor if known is not None else placement.floor
        assert building is not None and floor is not None
        if self._shard and building not in self._shard:
            self._unmap(device.id, now, outcome, pending)
            self._set(device, "other_shard", placement, building)
            return
        existing = self._live.devices.spec_of(device.id)
        if existing is not None and (existing[1] or existing[0].discovery is None):
            self._set(
                device, "refused", _why(placement, f"id {device.id} names a configured device"), building
            )
            return
        evict: list[str] = []
        holder = self._claim(device, evict)
        if holder is not None:
            self._unmap(device.id, now, outcome, pending)
            if holder[0]:
                self._blocking.setdefault(holder[0], set()).add(device.id)
            self._set(device, holder[1], _why(placement, holder[2]), building)
            return
        if existing is None or existing[0].room_id != placement.room:
            problem = self._room_for(device.id, placement.room, known is None, existing is None)
            if problem is not None:
                self._unmap(device.id, now, outcome, pending)
                outcome.refused.append((RejectReason.REGISTRY_FULL, f"{device.id}: {problem}"))
                self._set(device, "refused", _why(placement, problem), building)
                return
        for loser in evict:
            # Zigbee2MQTT's own list over Home Assistant discovery of the same device.
            self._unmap(loser, now, outcome, pending)
            entry = self._status[loser]
            why = f"{device.id} holds its topics ({device.source} comes first)"
            self._status[loser] = DiscoveredDevice(
                entry.device, "superseded", entry.room_id, entry.building, entry.rule, why
            )
            self._blocking.setdefault(device.id, set()).add(loser)
        self._set(device, "mapped", placement, building)
        self._register(device, placement, existing, (building, floor), now, outcome, pending)

    def _claim(self, device: AnnouncedDevice, evict: list[str]) -> tuple[str, str, str] | None:
        """Whether the device may take its state and command topics: (holder, status,
        why) when a topic is not its to take; else None, with the lower-ranked
        discovered devices that hold one of them added to `evict`."""
        for route in device.routes:
            if route.kind is TopicKind.AVAILABILITY:
                continue
            problem = self._topic_problem(route.topic)
            if problem is not None:
                return "", "refused", f"topic {route.topic}: {problem}"
            owner = self._routes.get(route.topic)
            if owner is None or owner.device_id == device.id:
                continue
            spec = self._live.devices.spec_of(owner.device_id)
            if spec is None or spec[0].discovery is None:
                return (
                    owner.device_id,
                    "refused",
                    f"topic {route.topic} is configured device {owner.device_id}'s",
                )
            other = self._status.get(owner.device_id)
            if other is not None and _RANK.get(other.device.source, 0) >= _RANK.get(device.source, 0):
                return owner.device_id, "superseded", f"topic {route.topic} is {owner.device_id}'s"
            if owner.device_id not in evict:
                evict.append(owner.device_id)
        return None

    def _topic_problem(self, topic: str) -> str | None:
        prefix = self._native_prefix
        if topic == prefix or topic.startswith(prefix + "/"):
            return f"under the native prefix {prefix}"
        if topic.startswith(_GATEWAY_PREFIX):
            return "the gateway's own topics"
        if self.handles(topic) or (self._ha_prefix is not None and topic.startswith(self._ha_prefix + "/")):
            return "an announcement topic"
        return None

    def _room_for(self, device_id: str, room_id: str, new_room: bool, new_device: bool) -> str | None:
        """Why the registry cannot take the device (in a room it may create); None when it can."""
        limits = self._limits
        if new_device and self._live.devices.auto_count >= limits.max_auto_devices:
            return f"{self._live.devices.auto_count} auto-registered devices (registry.max_auto_devices)"
        if new_room and not limits.auto_register:
            return f"room {room_id} is not configured (registry.auto_register is off)"
        if new_room and self._live.auto_room_count >= limits.max_auto_rooms:
            return f"{self._live.auto_room_count} auto-registered rooms (registry.max_auto_rooms)"
        return None

    def _register(
        self,
        device: AnnouncedDevice,
        placement: Placement,
        existing: tuple[DeviceSpec, bool] | None,
        where: tuple[str, str],
        now: float,
        outcome: Outcome,
        pending: _Pending,
    ) -> None:
        assert placement.room is not None
        spec = DeviceSpec(
            device.id,
            placement.room,
            device.dialect,
            device.topic,
            device.name,
            device.kind,
            power_source=device.power_source,
            discovery=DiscoveryInfo(
                device.source, device.name, placement.rule, placement.detail, device.problems, device.ignored
            ),
            commander=device.commander,
        )
        live = self._live
        if existing is not None and existing[0].room_id == placement.room:
            live.devices.update_discovered(spec, device.capabilities)
        else:
            said: dict[str, Any] = {}
            if existing is not None:
                # What it said comes along (its evidence in the old room does not).
                said = live.devices.last_state_of(device.id)
                self._unmap(device.id, now, outcome, pending)
                log.info(kv("discovered device moved", device=device.id, room=placement.room))
            else:
                log.info(
                    kv("discovered device mapped", device=device.id, room=placement.room, rule=placement.rule)
                )
            live.add_discovered(spec, device.capabilities, where, now)
            if said:
                live.devices.restore_last_state(device.id, said)
            outcome.rooms.setdefault(placement.room, live.state_of(placement.room))
        self._route_device(device, placement.room, pending)

    def _route_device(self, device: AnnouncedDevice, room_id: str, pending: _Pending) -> None:
        old = set(self._topics.get(device.id, ()))
        routed: list[str] = []
        for route in device.routes:
            if route.kind is TopicKind.AVAILABILITY:
                continue
            self._routes.put(route.topic, Route(device.id, room_id, route.kind, route.dialect, route.topic))
            routed.append(route.topic)
            if route.kind is not TopicKind.COMMAND:
                pending.add(route.topic)
        for topic in old - set(routed):
            self._routes.remove([topic])
            pending.drop(topic)
        self._topics[device.id] = tuple(routed)
        wanted = {route.topic for route in device.routes if route.kind is TopicKind.AVAILABILITY}
        had = self._availability_of.get(device.id, set())
        for topic in had - wanted:
            self._availability[topic].discard(device.id)
            self._follow_availability(topic, pending)
        for topic in wanted:
            self._availability.setdefault(topic, set()).add(device.id)
            self._follow_availability(topic, pending)
        if wanted:
            self._availability_of[device.id] = wanted
        else:
            self._availability_of.pop(device.id, None)

    def _follow_availability(self, topic: str, pending: _Pending) -> None:
        """Routes an availability topic to the one device that announces it, or to none."""
        users = self._availability.get(topic, set())
        owner = self._routes.get(topic)
        if owner is not None and owner.kind is not TopicKind.AVAILABILITY:
            return  # a state topic of another device: never taken for availability
        if len(users) == 1:
            (device_id,) = users
            entry = self._status.get(device_id)
            device = entry.device if entry is not None else None
            room = self._live.devices.room_of(device_id)
            route = next((r for r in device.routes if r.topic == topic), None) if device is not None else None
            if route is not None and room is not None and self._topic_problem(topic) is None:
                self._routes.put(topic, Route(device_id, room, TopicKind.AVAILABILITY, route.dialect, topic))
                pending.add(topic)
                return
        if not users:
            self._availability.pop(topic, None)
        if owner is not None:
            self._routes.remove([topic])
            pending.drop(topic)

    def _unmap(self, device_id: str, now: float, outcome: Outcome, pending: _Pending) -> None:
        """Drops a mapped device's routes, subscriptions and registration (if any)."""
        for topic in self._topics.pop(device_id, ()):
            self._routes.remove([topic])
            pending.drop(topic)
        for topic in sorted(self._availability_of.pop(device_id, ())):
            self._availability[topic].discard(device_id)
            self._follow_availability(topic, pending)
        spec = self._live.devices.spec_of(device_id)
        if spec is None or spec[1] or spec[0].discovery is None:
            return
        changed = self._live.remove_device(device_id, now)
        if changed is not None:
            outcome.rooms[changed.room_id] = changed
        if self._automation is not None:
            self._automation.forget([], [device_id])
        log.info(kv("discovered device unmapped", device=device_id))

    # Readers (any thread)

    def report(self) -> list[DiscoveredDevice]:
        with self._lock:
            return list(self._status.values())

    def counts(self) -> dict[str, int]:
        """Announced devices by status, for /metrics."""
        found: dict[str, int] = {}
        with self._lock:
            for entry in self._status.values():
                found[entry.status] = found.get(entry.status, 0) + 1
        return found

    # Restart

    def export(self) -> dict[str, str] | None:
        """The announcements in force when they changed since the last export (the
        snapshot keeps the last one it got), else None."""
        with self._lock:
            if self._catalog.version == self._saved_version:
                return None
            self._saved_version = self._catalog.version
            return {topic: payload.decode() for topic, payload in self._catalog.raw().items()}

    def restore(self, saved: Mapping[str, Any], now: float) -> Outcome:
        """Replays saved announcements (before the broker connection opens, so the
        devices' messages queued meanwhile find their routes); ones that no longer
        read are skipped."""
        outcome = Outcome()
        for topic in _replay_order(saved):
            payload = saved[topic]
            if not isinstance(payload, str) or not self.handles(topic):
                continue
            try:
                step = self._apply(self._read(topic, payload.encode()), now)
            except DecodeError as exc:
                log.warning(
                    kv("saved announcement skipped", topic=topic, reason=exc.reason, detail=exc.detail)
                )
                continue
            outcome.rooms.update(step.rooms)
        with self._lock:
            self._saved_version = self._catalog.version
        return outcome


def announcement_topics(settings: Settings) -> list[str]:
    """The announcement topics a gateway with these settings subscribes to (Zigbee2MQTT's
    groups before its devices: the broker replays retained messages in subscription
    order, and groups can place devices)."""
    section = settings.discovery
    found: list[str] = []
    if section.zigbee2mqtt.enabled:
        base = section.zigbee2mqtt.base_topic
        found += [f"{base}/bridge/groups", f"{base}/bridge/devices"]
    if section.homeassistant.enabled:
        prefix = section.homeassistant.prefix
        found += [f"{prefix}/+/+/config", f"{prefix}/+/+/+/config"]
    return found


class DiscoveryCollector(Collector):
    """Announced devices by what became of them, read at scrape time."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "officegw_discovery_devices",
            "Devices announced by Zigbee2MQTT or Home Assistant discovery, by status "
            "(mapped, unplaced, other_shard, refused, superseded, nothing_to_read)",
            labels=["status"],
        )
        counts = self._discovery.counts()
        for status in STATUSES:
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


def _replay_order(saved: Mapping[str, Any]) -> Iterable[str]:
    # Groups before the devices they place; then the rest as saved.
    return sorted(
        saved, key=lambda topic: (not topic.endswith("/bridge/groups"), not topic.endswith("/bridge/devices"))
    )


def _why(placement: Placement, problem: str) -> Placement:
    return Placement(placement.room, placement.rule, placement.detail, problem=problem)
