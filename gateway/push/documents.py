"""The JSON of one event as it is pushed: a stream's `data:` and a webhook's body are
the same document, so a client can switch between the two without a second parser."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.automation.event_log import LoggedEvent


def event_id(gateway_id: str, seq: int) -> str:
    """Unique across the gateways of a site (each numbers its own events), and stable:
    the same event always has the same id, however often it is delivered."""
    return f"{gateway_id}:{seq}"


def iso_time(ts: float) -> str:
    # As the REST API writes times (pydantic): UTC with a Z.
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def event_document(
    gateway_id: str, event: LoggedEvent, building: str | None, floor: str | None
) -> dict[str, Any]:
    return {
        "id": event_id(gateway_id, event.seq),
        "seq": event.seq,
        "gateway": gateway_id,
        "kind": event.kind,
        "at": iso_time(event.at),
        "room_id": event.room_id,
        "building": building,
        "floor": floor,
        "data": event.data,
    }


def event_json(gateway_id: str, event: LoggedEvent, building: str | None, floor: str | None) -> bytes:
    return orjson.dumps(event_document(gateway_id, event, building, floor))
