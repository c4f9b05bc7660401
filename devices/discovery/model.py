"""What an announcement makes of a device, whichever way it was announced.

Both readers (`zigbee2mqtt_bridge`, `homeassistant`) turn announcements into
`AnnouncedDevice`s: an id that survives renames and restarts, what kind of device
it is and what it reports, the topics to follow with how to decode each, how to
command it, what could not be mapped (`Problem`s), and the hints that place it in
a room (`placement.py`). The gateway registers, routes and subscribes from that
(gateway/ingest/discovery.py); nothing here does I/O.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devices.dialects.base import Dialect, TopicKind

# Turns a command in the native vocabulary ({"state": "ON", "brightness": 127})
# into the messages that carry it to this one device.
Commander = Callable[[Mapping[str, Any]], list[tuple[str, bytes]]]

KIND_PRIORITY = ("lock", "hvac", "light", "switch", "sensor")
"""A device with entities of several kinds is the first of these it has."""

_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
MAX_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class Problem:
    """Part of an announcement that was not mapped, and why (reported, never guessed)."""

    entity: str
    what: str
    detail: str
    template: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"entity": self.entity, "what": self.what, "detail": self.detail}
        if self.template is not None:
            found["template"] = self.template
        return found


@dataclass(frozen=True, slots=True)
class DiscoveryInfo:
    """How a discovered device was mapped: shown as `mapping` in GET /v1/devices."""

    source: str
    name: str
    rule: str
    detail: str
    problems: tuple[Problem, ...] = ()
    ignored: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "rule": self.rule,
            "detail": self.detail,
            "unsupported": [problem.as_dict() for problem in self.problems],
            "ignored": list(self.ignored),
        }


@dataclass(frozen=True, slots=True)
class PlacementHints:
    """What an announcement says that may tell the room: names (a friendly name
    `<room>/<name>`), ids (IEEE address, identifiers), Zigbee2MQTT groups, an area."""

    name: str
    ids: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    area: str | None = None


@dataclass(frozen=True, slots=True)
class TopicRoute:
    """One topic the device uses, by kind, and the dialect that decodes it."""

    topic: str
    kind: TopicKind
    dialect: Dialect


@dataclass(frozen=True, slots=True)
class AnnouncedDevice:
    """A device as its announcements describe it.

    `fingerprint` changes whenever the announcements that make it change, so an
    announcement replayed by the broker (retained, after a reconnect) is recognised
    as nothing new. `topic` is the device's main state topic, for display."""

    id: str
    source: str
    dialect: str
    name: str
    topic: str
    kind: str
    capabilities: frozenset[str]
    routes: tuple[TopicRoute, ...]
    hints: PlacementHints
    fingerprint: str
    commander: Commander | None = field(default=None, compare=False)
    power_source: str | None = None
    problems: tuple[Problem, ...] = ()
    ignored: tuple[str, ...] = ()


def device_id(source_prefix: str, key: str) -> str:
    """`<prefix>:<key>` as a valid device id (letters, digits, `_ . : -`, at most 64);
    a key that must be shortened keeps a checksum of the whole, so two keys never
    meet."""
    cleaned = _ID_CHARS.sub("-", key).strip("-.:_") or "device"
    found = f"{source_prefix}:{cleaned}"
    if len(found) <= MAX_ID_CHARS and ".." not in found:
        return found
    digest = f"{zlib.crc32(key.encode()):08x}"
    head = found.replace("..", ".")[: MAX_ID_CHARS - len(digest) - 1].rstrip("-.:_")
    return f"{head}-{digest}"


def kind_of(kinds: set[str]) -> str:
    return next((kind for kind in KIND_PRIORITY if kind in kinds), "sensor")
