"""The gateways' event log as a replica serves it: pages for GET /v1/events and the
live part of GET /v1/stream, read from the shared store.

Events are placed (building, floor) by the replica's rooms, as a gateway places its
own; a key scoped to buildings sees only events of rooms in them. While a stream is
open, the store is looked at every `replica.events_poll` seconds for events after the
last one handed on, and those go to the open streams with room changes (the
retained documents) in the same fan-out as a gateway's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

from gateway.automation.event_log import EventKind, LoggedEvent
from gateway.push.fanout import EventPush, Fanout, Pushed, StreamFilter, Subscription
from gateway.replica.stores import EventReader
from gateway.runtime.periodic import PeriodicThread

# Events read from the store per step.
PAGE = 500

# (room id or None, event data) -> (building, floor)
Place = Callable[[str | None, Mapping[str, Any]], tuple[str | None, str | None]]


class EventFeed:
    def __init__(self, events: EventReader, place: Place, *, queue_size: int, poll_interval: float) -> None:
        self._events = events
        self._place = place
        self._queue_size = queue_size
        self._fanout = Fanout()
        self._cursor = 0
        self._loop = PeriodicThread("replica-events", poll_interval, self._poll)

    def start(self) -> None:
        self._cursor = self._events.last_seq()
        self._loop.start()

    def stop(self) -> None:
        self._fanout.close_all()
        self._loop.stop()

    @property
    def beat_at(self) -> float:
        """time.monotonic() when the poll loop last came round."""
        return self._loop.beat_at

    def offer(self, item: Pushed) -> None:
        """A room change (or anything else) for the open streams; never waits."""
        if self._fanout.listening:
            self._fanout.offer(item)

    def _poll(self) -> None:
        if not self._fanout.listening:
            self._cursor = self._events.last_seq()
            return
        while True:
            page = self.since(self._cursor, PAGE)
            for push in page:
                self._fanout.offer(push)
                self._cursor = push.event.seq
            if len(page) < PAGE:
                return

    def last_seq(self) -> int:
        return self._events.last_seq()

    def since(self, after: int, limit: int) -> list[EventPush]:
        return [
            EventPush(LoggedEvent(seq, at, cast(EventKind, kind), room, data), *self._place(room, data))
            for seq, at, kind, room, data in self._events.after(after, limit)
        ]

    def page(
        self,
        *,
        after: int,
        limit: int,
        kind: EventKind | None,
        room_id: str | None,
        buildings: Collection[str] | None,
    ) -> list[LoggedEvent]:
        """As a gateway's page: filtered before the limit, so it is short only at the end."""
        selected: list[LoggedEvent] = []
        cursor = after
        while len(selected) < limit:
            page = self.since(cursor, PAGE)
            for push in page:
                event = push.event
                if (
                    (kind is None or event.kind == kind)
                    and (room_id is None or event.room_id == room_id)
                    and (buildings is None or (push.building is not None and push.building in buildings))
                ):
                    selected.append(event)
                    if len(selected) >= limit:
                        break
            if len(page) < PAGE:
                break
            cursor = page[-1].event.seq
        return selected

    def open(self, selector: StreamFilter, wakeup: Callable[[], None]) -> Subscription:
        return self._fanout.open(selector, self._queue_size, wakeup)

    def close(self, subscription: Subscription) -> None:
        self._fanout.close(subscription)

    def end_all(self) -> None:
        self._fanout.close_all()
