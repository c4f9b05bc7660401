"""A gateway as the event stream's source (api/backends.py `StreamSource`): its own
methods, and its rooms' statuses rendered as GET /v1/rooms/{id} renders them."""

from __future__ import annotations

from collections.abc import Callable

from api.schemas import room_json
from gateway.push.fanout import ROOM_KIND, EventPush, StreamFilter, Subscription
from gateway.runtime.gateway import Gateway


class GatewayStream:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def now(self) -> float:
        return self._gateway.now()

    def building_of(self, room_id: str) -> str | None:
        return self._gateway.building_of(room_id)

    def rooms_in(self, buildings: frozenset[str]) -> frozenset[str]:
        return self._gateway.rooms_in(buildings)

    def last_event_seq(self) -> int:
        return self._gateway.last_event_seq()

    def events_since(self, after: int, limit: int) -> list[EventPush]:
        return self._gateway.events_since(after, limit)

    def open_stream(self, selector: StreamFilter, wakeup: Callable[[], None]) -> Subscription:
        return self._gateway.open_stream(selector, wakeup)

    def close_stream(self, subscription: Subscription) -> None:
        self._gateway.close_stream(subscription)

    def end_streams(self) -> None:
        self._gateway.end_streams()

    def room_statuses(self, selector: StreamFilter) -> list[bytes]:
        gateway = self._gateway
        now, booked = gateway.now(), gateway.room_bookings()
        return [
            room_json(live, now, booked.get(live.config.id, (None, None)))
            for live in gateway.rooms()
            if selector.accepts(ROOM_KIND, live.config.id, live.config.building, live.config.floor)
        ]
