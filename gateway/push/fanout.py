"""Live fan-out to event-stream clients (GET /v1/stream): one bounded queue per client.

Events are offered by the event log's sink (on whichever thread appended them:
ingest, the ticker, an API call) and room states by the room-state publisher.
Offering never blocks and never waits for a client: it filters, appends to a list
under a lock held for a few instructions, and wakes the client only when its queue
was empty. A client whose queue is full is marked `overflowed` and dropped from the
fan-out at once; its reader tells it so and ends the stream (the client resumes
from the store with Last-Event-ID).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from gateway.automation.event_log import LoggedEvent

# The stream's name for room-status pushes (`kind` filter), beside the event kinds.
ROOM_KIND = "room"


class EventPush(NamedTuple):
    """An event of the log, with where it happened (None: not about a room)."""

    event: LoggedEvent
    building: str | None
    floor: str | None


class RoomPush(NamedTuple):
    """A room's new status: `status` is the JSON of GET /v1/rooms/{id}."""

    room_id: str
    building: str
    floor: str
    status: bytes


Pushed = EventPush | RoomPush


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one client receives. `buildings` None: every building, and events about no
    room; otherwise only events of rooms in those buildings (a scoped key's limit)."""

    buildings: frozenset[str] | None = None
    floor: str | None = None
    room_id: str | None = None
    kinds: frozenset[str] | None = None

    def accepts(self, kind: str, room_id: str | None, building: str | None, floor: str | None) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.room_id is not None and room_id != self.room_id:
            return False
        if self.floor is not None and floor != self.floor:
            return False
        return self.buildings is None or building in self.buildings

    def accepts_push(self, item: Pushed) -> bool:
        if isinstance(item, EventPush):
            return self.accepts(item.event.kind, item.event.room_id, item.building, item.floor)
        return self.accepts(ROOM_KIND, item.room_id, item.building, item.floor)


class Subscription:
    """One client's queue. `wakeup` is called (from the offering thread) when the queue
    stops being empty, when it overflows and when the fan-out closes; it must not block."""

    def __init__(self, selector: StreamFilter, capacity: int, wakeup: Callable[[], None]) -> None:
        self.filter = selector
        self._capacity = capacity
        self._wakeup = wakeup
        self._items: list[Pushed] = []
        self._lock = threading.Lock()
        self.overflowed = False
        self.closed = False

    def offer(self, item: Pushed) -> bool:
        """Queues `item`; False when the client is over its limit (or closed) and must go.
        What was queued before an overflow stays, for the reader to send first."""
        with self._lock:
            if self.closed or self.overflowed:
                return False
            if len(self._items) >= self._capacity:
                self.overflowed = True
                accepted, wake = False, True
            else:
                accepted, wake = True, not self._items
                self._items.append(item)
        if wake:
            self._wakeup()
        return accepted

    def take(self) -> list[Pushed]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._wakeup()


class Fanout:
    def __init__(self) -> None:
        # Replaced, never changed in place: offering iterates without the lock.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._lock = threading.Lock()
        self.opened = 0
        self.overflowed = 0

    def open(self, selector: StreamFilter, capacity: int, wakeup: Callable[[], None]) -> Subscription:
        subscription = Subscription(selector, capacity, wakeup)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self.opened += 1
        return subscription

    def close(self, subscription: Subscription) -> None:
        self._remove(subscription)
        subscription.close()

    def close_all(self) -> None:
        """Ends every stream (the server is shutting down)."""
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, ()
        for subscription in subscriptions:
            subscription.close()

    def offer(self, item: Pushed) -> None:
        for subscription in self._subscriptions:
            accepted = not subscription.filter.accepts_push(item) or subscription.offer(item)
            if not accepted and subscription.overflowed and self._remove(subscription):
                self.overflowed += 1

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    @property
    def listening(self) -> bool:
        return bool(self._subscriptions)

    def _remove(self, subscription: Subscription) -> bool:
        with self._lock:
            if subscription not in self._subscriptions:
                return False
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            return True
