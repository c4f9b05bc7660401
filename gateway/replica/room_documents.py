"""The campus's rooms as an API replica knows them: the retained documents the gateways
publish on `officegw/state/<building>/<floor>/<room>` (gateway/runtime/room_state_publisher.py),
each the JSON of GET /v1/rooms/{id} as a viewer key gets it.

A replica serves those bytes as they came: the same answer as the owning gateway's,
as of the gateway's last publication (at most `push.state.min_interval` plus the
broker's delay behind it). An empty retained message (the topic cleared) forgets the
room. A document whose id or building differs from its topic, or that is not a room
document, is refused and counted: a client allowed to publish there must not move a
room into another building's scope.

For availability, each room also yields its `RoomConfig` (what a booking system
filters on) and its occupancy; the config object stays the same while the room's
description does, so answers kept for it stay valid (api.availability_answers
compares them by identity).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.config import RoomConfig
from gateway.logs import kv
from gateway.runtime.room_state_publisher import STATE_TOPIC_ROOT
from rules.occupancy import Occupancy

log = logging.getLogger("officegw.replica")

STATE_FILTER = f"{STATE_TOPIC_ROOT}/#"
# A room document is ~1 KB; anything far larger is not one.
MAX_DOCUMENT_BYTES = 64 * 1024

# The document's fields that describe the room (site config), as RoomConfig takes them.
_DESCRIPTION = ("id", "name", "building", "floor", "type", "capacity", "features", "bookable")


@dataclass(frozen=True, slots=True)
class RoomDocument:
    room_id: str
    building: str
    floor: str
    # The JSON as published (GET /v1/rooms/{id} for a viewer key).
    json: bytes
    # Parsed once, for filters and for the keys that may see booking titles.
    data: Mapping[str, Any]
    config: RoomConfig
    occupancy: Occupancy
    # `occupancy.sensors_offline` (absent from a gateway's documents before it: False).
    sensors_offline: bool = False


class NotARoomDocument(ValueError):
    pass


def place_of(topic: str) -> tuple[str, str, str] | None:
    """(building, floor, room) of a state topic; None for another topic."""
    prefix = STATE_TOPIC_ROOT + "/"
    if not topic.startswith(prefix):
        return None
    levels = topic[len(prefix) :].split("/")
    if len(levels) != 3 or not all(levels):
        return None
    building, floor, room_id = levels
    return building, floor, room_id


def parse_document(
    building: str, floor: str, room_id: str, payload: bytes, previous: RoomDocument | None
) -> RoomDocument:
    if len(payload) > MAX_DOCUMENT_BYTES:
        raise NotARoomDocument(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise NotARoomDocument(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NotARoomDocument("not a JSON object")
    if data.get("id") != room_id or data.get("building") != building or str(data.get("floor")) != floor:
        raise NotARoomDocument("id, building or floor differ from the topic")
    occupancy = data.get("occupancy")
    state = occupancy.get("state") if isinstance(occupancy, dict) else None
    if state not in {o.value for o in Occupancy}:
        raise NotARoomDocument("occupancy.state missing or unknown")
    description = {key: data.get(key) for key in _DESCRIPTION}
    config = previous.config if previous is not None and _same(previous.config, description) else None
    if config is None:
        try:
            config = RoomConfig.model_validate({k: v for k, v in description.items() if v is not None})
        except ValidationError as exc:
            raise NotARoomDocument(f"not a room description: {exc.errors()[0]['msg']}") from None
    offline = occupancy.get("sensors_offline") is True if isinstance(occupancy, dict) else False
    return RoomDocument(room_id, building, floor, payload, data, config, Occupancy(state), offline)


def _same(config: RoomConfig, description: Mapping[str, Any]) -> bool:
    return all(getattr(config, key) == value for key, value in description.items() if value is not None) and (
        description.get("name") == config.name
    )


class RoomDocuments:
    """Every room's latest document; safe to read from any thread (a reader takes the
    current mapping, replaced whole on every change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: dict[str, RoomDocument] = {}
        # Bumped when a room comes, goes or its description changes / its occupancy changes.
        self.rooms_version = 0
        self.occupancy_version = 0
        # Since start: documents taken, and refused by reason.
        self.taken = 0
        self.refused: dict[str, int] = {}

    def take(self, topic: str, payload: bytes) -> RoomDocument | None:
        """A message of the state topics; returns the room's new document (None when it
        was forgotten or refused)."""
        place = place_of(topic)
        if place is None:
            self._refuse("topic", topic, "not a room state topic")
            return None
        building, floor, room_id = place
        with self._lock:
            previous = self._rooms.get(room_id)
            if not payload:
                if previous is not None and previous.building == building:
                    rooms = dict(self._rooms)
                    del rooms[room_id]
                    self._rooms = rooms
                    self.rooms_version += 1
                return None
            if previous is not None and previous.building != building:
                # Two buildings publish a room of this id: the first one keeps it.
                self._refuse("building", topic, f"room already published by building {previous.building!r}")
                return None
            try:
                document = parse_document(building, floor, room_id, payload, previous)
            except NotARoomDocument as exc:
                self._refuse("document", topic, str(exc))
                return None
            rooms = dict(self._rooms)
            rooms[room_id] = document
            self._rooms = rooms
            if previous is None or previous.config is not document.config:
                self.rooms_version += 1
            if (
                previous is None
                or previous.occupancy != document.occupancy
                or previous.sensors_offline != document.sensors_offline
            ):
                self.occupancy_version += 1
            self.taken += 1
            return document

    def _refuse(self, reason: str, topic: str, detail: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        log.warning(kv("room state refused", topic=topic[:200], reason=detail))

    def rooms(self) -> Mapping[str, RoomDocument]:
        return self._rooms

    def room(self, room_id: str) -> RoomDocument | None:
        return self._rooms.get(room_id)

    def building_of(self, room_id: str) -> str | None:
        document = self._rooms.get(room_id)
        return document.building if document is not None else None
