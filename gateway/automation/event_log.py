"""A bounded, in-memory log of what happened (occupancy changes, commands, alerts).

Sequence numbers give clients a cursor (`?after=`) that stays valid while old
entries fall off the end, and across restarts: the store keeps every event under
its sequence number (`sink`), and `resume` carries on from the last one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

# "audit": what a person did through the API (who, what, on which target).
# "booking_*": what presence evidence and time did to a booking (also published on
# MQTT, officegw/events/<kind>/<building>/<room>).
# "report": a scheduled report archived for a building (no room; `building` in its
# data; also on MQTT, officegw/events/report/<building>/<period>).
EventKind = Literal[
    "occupancy",
    "command",
    "alert",
    "override",
    "rules",
    "audit",
    "booking_checked_in",
    "booking_released",
    "booking_ended",
    "report",
]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    seq: int
    at: float
    kind: EventKind
    room_id: str | None
    data: dict[str, Any]


class EventLog:
    def __init__(self, capacity: int = 10_000, *, sink: Callable[[LoggedEvent], None] | None = None) -> None:
        self._events: deque[LoggedEvent] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        # Called with each new event (under the log's lock, so in sequence order).
        self._sink = sink

    def resume(self, events: Iterable[LoggedEvent], last_seq: int) -> None:
        """Puts back the newest stored events; new ones are numbered after `last_seq`."""
        with self._lock:
            self._events.extend(events)
            self._seq = max(self._seq, last_seq)

    def append(self, at: float, kind: EventKind, room_id: str | None, **data: Any) -> LoggedEvent:
        with self._lock:
            self._seq += 1
            event = LoggedEvent(self._seq, at, kind, room_id, data)
            self._events.append(event)
            if self._sink is not None:
                self._sink(event)
            return event

    def page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        kind: EventKind | None = None,
        room_id: str | None = None,
        where: Callable[[LoggedEvent], bool] | None = None,
    ) -> list[LoggedEvent]:
        """Up to `limit` events after `after` that match every filter (`where` too):
        filtering comes before the limit, so a page is only short at the end of the log."""
        with self._lock:
            events = list(self._events)
        selected: list[LoggedEvent] = []
        for event in events:
            if (
                event.seq > after
                and (kind is None or event.kind == kind)
                and (room_id is None or event.room_id == room_id)
                and (where is None or where(event))
            ):
                selected.append(event)
                if len(selected) >= limit:
                    break
        return selected

    @property
    def last_seq(self) -> int:
        return self._seq
