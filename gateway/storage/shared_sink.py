"""What the history writer hands on to the shared store after each SQLite commit.

Commit order (see README, "Shared stores (PostgreSQL)"): the history writer commits
a batch's readings, events, room states and device states to the gateway's SQLite
file first, as without a shared store; then this sink commits the events (with
their webhook outbox rows), room states and device states to PostgreSQL in one
transaction; then the batch's MQTT messages are acknowledged. A crash between the
two commits loses nothing: the messages were not acknowledged (the broker
redelivers them: readings and events are stored once), and at start
`PostgresStore.catch_up` copies what the file holds past the shared store.

While PostgreSQL fails, what did not reach it waits here (bounded: past
`max_events`, the oldest events wait only in the file, counted in `dropped`, and
are copied by the next start's catch-up) and is written with the next batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.storage.records import Reading, StoredEvent


class SharedCommit(Protocol):
    def commit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, StoredEvent]],
        room_states: Sequence[tuple[str, bytes]],
        at: float,
        device_states: Sequence[tuple[str, str, bytes]] = (),
    ) -> None: ...

    def prune(
        self,
        readings_before: float | None,
        events_before: float | None,
        progress: Callable[[], object] | None = None,
    ) -> tuple[int, int]: ...


class SharedSink:
    def __init__(self, store: SharedCommit, max_events: int = 100_000) -> None:
        self._store = store
        self._max_events = max_events
        self._events: list[tuple[int, StoredEvent]] = []
        self._rooms: dict[str, bytes] = {}
        self._devices: dict[str, tuple[str, bytes]] = {}
        # Events left to the next start's catch-up because too many waited here.
        self.dropped = 0

    @property
    def behind(self) -> bool:
        """Whether something committed to the file has not reached the shared store yet."""
        return bool(self._events or self._rooms or self._devices)

    def write(
        self,
        events: Sequence[tuple[int, StoredEvent]],
        rooms: Sequence[tuple[str, bytes]],
        devices: Sequence[tuple[str, str, bytes]],
        at: float,
    ) -> None:
        """Commits these (and whatever waited) to the shared store; raises what the store
        raised, keeping them for the next call."""
        self._events.extend(events)
        self._rooms.update(rooms)
        self._devices.update((device, (room, state)) for device, room, state in devices)
        try:
            self._store.commit(
                (),
                self._events,
                list(self._rooms.items()),
                at,
                [(device, room, state) for device, (room, state) in self._devices.items()],
            )
        except BaseException:
            excess = len(self._events) - self._max_events
            if excess > 0:
                self.dropped += excess
                del self._events[:excess]
            raise
        self._events, self._rooms, self._devices = [], {}, {}

    def prune(self, events_before: float, progress: Callable[[], object] | None = None) -> int:
        return self._store.prune(None, events_before, progress)[1]
