"""The history writer: batches readings, events and room states into the store off
the ingest path, and acknowledges MQTT messages only once what they carried is
committed.

Ingest hands over one item per message (`submit`, never blocks). A background
thread commits everything queued, at most `max_delay` after the first item or
when `batch_rows` readings are waiting, in one transaction; then it runs the
items' acknowledgements, in order, and passes the batch on to the export (if
any). A crash (even SIGKILL) therefore loses nothing: the broker redelivers
what was not acknowledged, and the store skips readings it already holds.

If the store fails (disk full, read-only), live state carries on: batches are
kept in memory (bounded; what falls off is counted as dropped) and retried with
backoff, and their messages are acknowledged so the broker keeps delivering.
Until the store recovers, durability is only as good as this process; `/readyz`
and the metrics say so.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.logs import kv
from gateway.records import Event, Reading
from gateway.room_model import RoomState
from gateway.store import Store

log = logging.getLogger("officegw.history")

Ack = Callable[[], None]
Export = Callable[[Sequence[Reading], Sequence[Event]], None]


@dataclass(slots=True)
class _Batch:
    readings: list[Reading] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)
    rooms: dict[str, RoomState] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)

    def add(
        self, readings: Sequence[Reading], events: Sequence[tuple[int, Event]], room: RoomState | None
    ) -> None:
        self.readings.extend(readings)
        self.events.extend(events)
        if room is not None:
            self.rooms[room.room_id] = room


@dataclass(slots=True)
class HistoryStats:
    committed_batches: int = 0
    readings_written: int = 0
    # Redelivered or repeated readings the store already held.
    readings_duplicate: int = 0
    events_written: int = 0
    write_failures: int = 0
    # Readings lost because the store was failing and the memory buffer was full.
    readings_dropped: int = 0
    healthy: bool = True
    last_error: str | None = None
    commit_seconds: float = 0.0
    pruned_readings: int = 0
    pruned_events: int = 0


class HistoryWriter:
    def __init__(
        self,
        store: Store,
        encode_state: Callable[[RoomState], bytes],
        *,
        export: Export | None = None,
        batch_rows: int = 5_000,
        max_delay: float = 0.05,
        buffer_rows: int = 500_000,
        retention: tuple[float, float] | None = None,
        prune_interval: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._encode = encode_state
        self._export = export
        self._batch_rows = batch_rows
        self._max_delay = max_delay
        self._buffer_rows = buffer_rows
        self._clock = clock
        # (readings, events) kept this many seconds; pruned every prune_interval.
        self._retention = retention
        self._prune_interval = prune_interval
        self._last_prune = float("-inf")
        self._queue: queue.SimpleQueue[
            tuple[Sequence[Reading], Sequence[tuple[int, Event]], RoomState | None, Ack | None] | None
        ] = queue.SimpleQueue()
        # What failed to commit, kept for the next attempt.
        self._pending = _Batch()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._queued = 0
        self._thread = threading.Thread(target=self._run, name="officegw-history", daemon=True)
        self.stats = HistoryStats()

    def start(self) -> None:
        self._thread.start()

    def submit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, Event]] = (),
        room: RoomState | None = None,
        ack: Ack | None = None,
    ) -> None:
        """Queues what one message (or one tick) produced; `ack` runs after it is committed."""
        with self._idle:
            self._queued += 1
        self._queue.put((readings, events, room, ack))

    def flush(self, timeout: float) -> bool:
        """Waits until everything submitted so far is committed (or the store failed)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._queued > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, timeout: float = 4.0) -> None:
        self.flush(timeout)
        self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    # The writer thread

    def _run(self) -> None:
        while not self._stop.is_set():
            taken = self._collect()
            if taken or self._pending.readings or self._pending.events or self._pending.rooms:
                self._commit(taken)
            if self._retention is not None and time.monotonic() - self._last_prune >= self._prune_interval:
                self._prune(*self._retention)

    def _prune(self, readings_for: float, events_for: float) -> None:
        """Retention, between two batches (a failure is retried next interval)."""
        self._last_prune = time.monotonic()
        now = self._clock()
        try:
            readings, events = self._store.prune(now - readings_for, now - events_for)
        except (sqlite3.Error, OSError) as exc:
            log.warning(kv("retention failed", error=str(exc)))
            return
        self.stats.pruned_readings += readings
        self.stats.pruned_events += events
        if readings or events:
            log.info(kv("retention applied", readings_deleted=readings, events_deleted=events))

    def _collect(self) -> int:
        """Moves queued items into the pending batch; returns how many it took."""
        wait = 0.5 if self.stats.healthy else min(5.0, 0.25 * 2 ** min(self.stats.write_failures, 5))
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            return 0
        if first is None:
            return 0
        taken = 1
        self._pending.add(first[0], first[1], first[2])
        if first[3] is not None:
            self._pending.acks.append(first[3])
        deadline = time.monotonic() + self._max_delay
        while len(self._pending.readings) < self._batch_rows:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            taken += 1
            self._pending.add(item[0], item[1], item[2])
            if item[3] is not None:
                self._pending.acks.append(item[3])
        return taken

    def _commit(self, taken: int) -> None:
        batch = self._pending
        started = time.perf_counter()
        try:
            rooms = [(room_id, self._encode(state)) for room_id, state in batch.rooms.items()]
            inserted = self._store.commit(batch.readings, batch.events, rooms, self._clock())
        except (sqlite3.Error, OSError) as exc:
            self._failed(batch, str(exc))
        else:
            self.stats.commit_seconds += time.perf_counter() - started
            self.stats.committed_batches += 1
            self.stats.readings_written += inserted
            self.stats.readings_duplicate += len(batch.readings) - inserted
            self.stats.events_written += len(batch.events)
            if not self.stats.healthy:
                log.warning(kv("history store recovered", after_failures=self.stats.write_failures))
            self.stats.healthy, self.stats.last_error = True, None
            self._pending = _Batch()
            self._acknowledge(batch.acks)
            if self._export is not None and (batch.readings or batch.events):
                self._export(batch.readings, [event for _, event in batch.events])
        finally:
            with self._idle:
                self._queued -= taken
                self._idle.notify_all()

    def _failed(self, batch: _Batch, error: str) -> None:
        self.stats.write_failures += 1
        if self.stats.healthy or error != self.stats.last_error:
            log.error(kv("history store write failed", error=error, keeping_in_memory=True))
        self.stats.healthy, self.stats.last_error = False, error
        # Live state must go on: acknowledge, so the broker keeps delivering, and
        # keep the rows in memory for the next attempt, within the bound.
        self._acknowledge(batch.acks)
        batch.acks = []
        excess = len(batch.readings) - self._buffer_rows
        if excess > 0:
            self.stats.readings_dropped += excess
            del batch.readings[:excess]

    def _acknowledge(self, acks: list[Ack]) -> None:
        for ack in acks:
            try:
                ack()
            except Exception:  # a lost connection: the broker redelivers, nothing to do
                log.debug(kv("ack failed"), exc_info=True)
