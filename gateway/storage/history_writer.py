"""The history writer: batches readings, events and room states into the store off
the ingest path, and acknowledges MQTT messages only once what they carried is
committed.

Ingest hands over one item per message (`submit`, never blocks). A background
thread commits everything queued in one transaction (group commit: at most
`max_delay` after the first item, at once when `batch_rows` readings are waiting,
and back to back while the queue refills during each commit; see `_collect`);
then it runs the items' acknowledgements, in order, and passes the batch on to
the export (if any). A crash (even SIGKILL) therefore loses nothing: the broker
redelivers what was not acknowledged, and the store skips readings it already
holds.
About once a second (and on every flush and stop) it has the store merge the
readings committed since into their series (`Store.merge_recent`).

Room states and device states (the device time each device reached, its last
state) are written together: a room whose occupancy changed, with its devices,
in the batch that changed it; the rest at checkpoints (`_rooms_to_write`,
`_devices_to_write`).

If the store fails (disk full, read-only), live state carries on: batches are
kept in memory (bounded; what falls off is counted as dropped) and retried with
backoff, and their messages are acknowledged so the broker keeps delivering.
Until the store recovers, durability is only as good as this process; `/readyz`
and the metrics say so.

With a shared store (`storage.url`), each batch committed to the file is handed on
to `shared` (gateway/storage/shared_sink.py: events, room and device states to
PostgreSQL) before its messages are acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from gateway.logs import kv
from gateway.mqtt.transport import Ack
from gateway.storage.records import DeviceState, Reading, StoredEvent
from gateway.storage.shared_sink import SharedSink
from gateway.storage.sql import STORE_ERRORS
from gateway.storage.sqlite_store import Store
from rules.room_model import RoomState

# Seconds from start to the first retention pass.
FIRST_PRUNE_AFTER = 60.0

log = logging.getLogger("officegw.history")

# Added to the writer thread's niceness (Linux schedules threads one by one).
WRITER_NICENESS = 10
# While a batch gathers, the writer looks at the queue this often (seconds).
GATHER_SLICE = 0.01
# Once this many readings went into their series and the writer then has nothing to
# do (no message for `_collect`'s wait, 0.5 s), the store gives back its page cache:
# a registration storm over a campus leaves 10 MB more of it than the same writes
# from a few devices (benchmarks/memory.py), and it fills again as batches need it.
RELEASE_AFTER_ROWS = 50_000

Export = Callable[[Sequence[Reading], Sequence[StoredEvent]], None]
# Told how many messages read from the broker, and how many of their payload bytes,
# are no longer pending (committed, or given up on while the store fails).
Settle = Callable[[int, int], None]
# What one message (or tick) produced: readings, numbered events, a room state, an ack,
# a device state, and the payload size of the message read from the broker (None for
# what the gateway produced itself).
_Item = tuple[
    Sequence[Reading],
    Sequence[tuple[int, StoredEvent]],
    RoomState | None,
    Ack | None,
    DeviceState | None,
    int | None,
]


@dataclass(slots=True)
class _Batch:
    readings: list[Reading] = field(default_factory=list)
    events: list[tuple[int, StoredEvent]] = field(default_factory=list)
    rooms: dict[str, RoomState] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    acks: list[Ack] = field(default_factory=list)
    # Messages read from the broker in this batch, and their payload bytes.
    messages: int = 0
    message_bytes: int = 0

    def add(self, item: _Item) -> None:
        readings, events, room, ack, device, size = item
        self.readings.extend(readings)
        self.events.extend(events)
        if room is not None:
            self.rooms[room.room_id] = room
        if device is not None:
            self.devices[device.device_id] = device
        if ack is not None:
            self.acks.append(ack)
        if size is not None:
            self.messages += 1
            self.message_bytes += size


@dataclass(slots=True)
class HistoryStats:
    committed_batches: int = 0
    # Readings committed (appended; redeliveries included, see readings_duplicate).
    readings_committed: int = 0
    # Counted when merged into their series (`Store.merge_recent`), where duplicates show.
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
    merges: int = 0
    merge_failures: int = 0
    merge_seconds: float = 0.0
    # Times the writer, quiet after a burst, gave memory back (RELEASE_AFTER_ROWS).
    memory_releases: int = 0


class HistoryWriter:
    def __init__(
        self,
        store: Store,
        encode_state: Callable[[RoomState], bytes],
        *,
        export: Export | None = None,
        acknowledge: Callable[[list[Ack]], None] | None = None,
        settle: Settle | None = None,
        batch_rows: int = 20_000,
        max_delay: float = 0.05,
        buffer_rows: int = 500_000,
        retention: tuple[float, float] | None = None,
        prune_interval: float = 3600.0,
        checkpoint_interval: float = 5.0,
        merge_interval: float = 1.0,
        merge_rows: int = 50_000,
        clock: Callable[[], float] = time.time,
        shared: SharedSink | None = None,
        after_release: Callable[[], None] | None = None,
        release_after_rows: int = RELEASE_AFTER_ROWS,
    ) -> None:
        self._store = store
        # Run once the store gave back its cache after a burst (the gateway trims the C
        # heap then: gateway.runtime.heap).
        self._after_release = after_release
        # Readings merged since the store last gave back its cache.
        self._since_release = 0
        self._release_after_rows = release_after_rows
        self._shared = shared
        self._encode = encode_state
        self._export = export
        # Sends a batch's acknowledgements in one go (the MQTT transport); else one by one.
        self._acknowledge_all = acknowledge
        # The ingest backlog's bound (gateway.ingest.backpressure): released per batch.
        self._settle = settle
        self._batch_rows = batch_rows
        self._max_delay = max_delay
        self._buffer_rows = buffer_rows
        self._clock = clock
        # Room states: the last written per room, and newer ones not written yet.
        self._written: dict[str, RoomState] = {}
        self._dirty: dict[str, RoomState] = {}
        # Device states not written yet, by room: they go with their room's state
        # (see `_devices_to_write`).
        self._dirty_devices: dict[str, dict[str, DeviceState]] = {}
        self._checkpoint_interval = checkpoint_interval
        self._last_checkpoint = time.perf_counter()
        # When the last commit began: the next waits for `max_delay` after it (see `_collect`).
        self._last_commit = float("-inf")
        # (readings, events) kept this many seconds; pruned every prune_interval.
        self._retention = retention
        self._prune_interval = prune_interval
        # The first retention pass a minute after start, not at once: over a campus's
        # series it is 0.1-0.5 s of SQLite work holding the store, on the way to ready.
        self._last_prune = time.monotonic() - prune_interval + min(FIRST_PRUNE_AFTER, prune_interval)
        # Readings committed since the last merge into their series.
        self._merge_interval = merge_interval
        self._merge_rows = merge_rows
        self._unmerged = 0
        self._last_merge = time.monotonic()
        self._merge_error: str | None = None
        self._queue: queue.SimpleQueue[_Item | threading.Event | None] = queue.SimpleQueue()
        # What failed to commit, kept for the next attempt.
        self._pending = _Batch()
        self._stop = threading.Event()
        # flush() markers reached by the writer; set once what came before is committed.
        self._markers: list[threading.Event] = []
        self._thread = threading.Thread(target=self._run, name="officegw-history", daemon=True)
        self.stats = HistoryStats()
        # time.monotonic() when the writer's loop last came round (at least every 5 s
        # when idle): a writer stuck in a store call stops moving it.
        self.beat_at = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def submit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, StoredEvent]] = (),
        room: RoomState | None = None,
        ack: Ack | None = None,
        device: DeviceState | None = None,
        message_bytes: int | None = None,
    ) -> None:
        """Queues what one message (or one tick) produced; `ack` runs after it is
        committed. `message_bytes`: the item is a message read from the broker, of that
        payload size, pending until committed (see `settle`)."""
        self._queue.put((readings, events, room, ack, device, message_bytes))

    def flush(self, timeout: float) -> bool:
        """Waits until everything submitted so far is committed (or the store failed);
        the room states of the last batch are not necessarily written (`stop` does)."""
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout)

    def stop(self, timeout: float = 4.0) -> None:
        self.flush(timeout)
        self._stop.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        if not self._thread.is_alive():
            if self._dirty or self._dirty_devices:
                self._commit()  # the final checkpoint: every room and device as it is now
            self._merge()

    # The writer thread

    def _run(self) -> None:
        # Below ingest in the CPU scheduler's eyes: SQLite's work runs without the GIL,
        # and on a busy machine it must not take a core from message handling (the
        # motion -> light latency); a batch committed a little later costs nothing.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)
        while not self._stop.is_set():
            self._beat()
            taken = self._collect()
            checkpoint_due = time.perf_counter() - self._last_checkpoint >= self._checkpoint_interval
            pending = self._pending
            shared_behind = self._shared is not None and self._shared.behind
            if (
                taken
                or pending.readings
                or pending.events
                or pending.rooms
                or pending.devices
                or shared_behind
            ):
                self._commit()
            elif (self._dirty or self._dirty_devices) and checkpoint_due:
                self._commit()  # quiet now: write what the last batches left for later
            if self._markers or self._merge_due():
                self._merge()  # flush() waits for it too
            elif not taken and not self._unmerged and self._since_release >= self._release_after_rows:
                self._release_memory()
            for marker in self._markers:
                marker.set()
            self._markers.clear()
            if self._retention is not None and time.monotonic() - self._last_prune >= self._prune_interval:
                self._prune(*self._retention)

    def _beat(self) -> None:
        """The loop came round, or is in a long store call that is making progress."""
        self.beat_at = time.monotonic()

    def _release_memory(self) -> None:
        """Quiet after a burst: the store's page cache goes back (see RELEASE_AFTER_ROWS)."""
        self._since_release = 0
        try:
            self._store.release_memory()
        except STORE_ERRORS as exc:
            log.warning(kv("history store kept its cache", error=str(exc)))
            return
        if self._after_release is not None:
            self._after_release()
        self.stats.memory_releases += 1

    def _prune(self, readings_for: float, events_for: float) -> None:
        """Retention, between two batches (a failure is retried next interval)."""
        self._last_prune = time.monotonic()
        now = self._clock()
        try:
            readings, events = self._store.prune(now - readings_for, now - events_for, self._beat)
            if self._shared is not None:
                self._shared.prune(now - events_for, self._beat)
        except STORE_ERRORS as exc:
            log.warning(kv("retention failed", error=str(exc)))
            return
        self.stats.pruned_readings += readings
        self.stats.pruned_events += events
        if readings or events:
            log.info(kv("retention applied", readings_deleted=readings, events_deleted=events))

    def _collect(self) -> int:
        """Moves queued items into the pending batch; returns how many it took.

        Group commit: the batch is committed once the queue is empty and
        `max_delay` has passed since the last commit began, or at once when it
        holds `batch_rows` readings (or a `flush` waits). Under load a commit
        takes longer than `max_delay`, so the next batch is whatever arrived
        meanwhile and goes straight in: the writer never sleeps while work
        waits, and batches grow with the rate. Under light load commits are
        spaced `max_delay` apart (a first message after a quiet spell goes at
        once), so the writer wakes, and takes the GIL from ingest, once per
        GATHER_SLICE at most, never per message."""
        wait = 0.5 if self.stats.healthy else min(5.0, 0.25 * 2 ** min(self.stats.write_failures, 5))
        try:
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            return 0
        if first is None:
            return 0
        if isinstance(first, threading.Event):
            self._markers.append(first)
            return 0
        taken = 1
        self._pending.add(first)
        while True:
            drained, closed = self._drain()
            taken += drained
            if closed or len(self._pending.readings) >= self._batch_rows:
                break
            left = self._last_commit + self._max_delay - time.perf_counter()
            if left <= 0:
                break
            # In slices, to see a batch fill meanwhile (a wake-up a slice, not per item).
            time.sleep(min(left, GATHER_SLICE))
        return taken

    def _drain(self) -> tuple[int, bool]:
        """Takes what is queued, up to a full batch: (items taken, whether a flush
        marker or the stop sentinel closed the batch)."""
        taken = 0
        pending = self._pending
        get = self._queue.get_nowait
        while len(pending.readings) < self._batch_rows:
            try:
                item = get()
            except queue.Empty:
                return taken, False
            if item is None:
                return taken, True
            if isinstance(item, threading.Event):
                self._markers.append(item)
                return taken, True  # flush() waits: commit what came before it now
            taken += 1
            pending.add(item)
        return taken, False

    def _rooms_to_write(self, batch: _Batch, checkpoint: bool) -> list[tuple[str, RoomState]]:
        """A room whose occupancy changed is written with the batch that changed it, so
        a restart never replays (or loses) an occupancy event. Other changes (readings,
        evidence timestamps) are written at the next checkpoint: a restart may resume
        from room states up to `checkpoint_interval` old in those respects, which the
        next readings put right; it saves rewriting every busy room every batch."""
        for room_id, state in batch.rooms.items():
            self._dirty[room_id] = state
        if checkpoint:
            due = list(self._dirty.items())
        else:
            # Only this batch's rooms can have changed occupancy since they were written.
            due = [
                (room_id, state)
                for room_id, state in batch.rooms.items()
                if _occupancy_changed(self._written.get(room_id), state)
            ]
        return due

    def _devices_to_write(
        self, batch: _Batch, checkpoint: bool, rooms: list[tuple[str, RoomState]]
    ) -> list[DeviceState]:
        """A device's state (the device time it reached, its last state) is written
        with its room's state, never ahead of it: what a restart resumes from is then
        one consistent moment. Were it written with every batch, a crash within a
        checkpoint interval would restore a device time newer than the room, and the
        broker's retained copy of the reading the room lost would be skipped as old
        instead of putting the room right."""
        for device in batch.devices.values():
            self._dirty_devices.setdefault(device.room_id, {})[device.device_id] = device
        if checkpoint:
            return [device for devices in self._dirty_devices.values() for device in devices.values()]
        return [device for room_id, _ in rooms for device in self._dirty_devices.get(room_id, {}).values()]

    def _commit(self) -> None:
        batch = self._pending
        started = time.perf_counter()
        self._last_commit = started
        checkpoint = self._stop.is_set() or started - self._last_checkpoint >= self._checkpoint_interval
        try:
            due = self._rooms_to_write(batch, checkpoint)
            due_devices = self._devices_to_write(batch, checkpoint, due)
            rooms = [(room_id, self._encode(state)) for room_id, state in due]
            devices = [(d.device_id, d.room_id, _encode_device(d)) for d in due_devices]
            at = self._clock()
            self._store.commit(batch.readings, batch.events, rooms, at, devices)
        except STORE_ERRORS as exc:
            self._failed(batch, str(exc))
        else:
            # After the file's commit, before the acknowledgements (see shared_sink.py).
            shared_error = self._share(batch.events, rooms, devices, at)
            self.stats.commit_seconds += time.perf_counter() - started
            self.stats.committed_batches += 1
            self.stats.readings_committed += len(batch.readings)
            self._unmerged += len(batch.readings)
            self.stats.events_written += len(batch.events)
            if shared_error is not None:
                self.stats.healthy, self.stats.last_error = False, shared_error
            elif not self.stats.healthy:
                log.warning(kv("history store recovered", after_failures=self.stats.write_failures))
                self.stats.healthy, self.stats.last_error = True, None
            for room_id, state in due:
                self._written[room_id] = state
                if self._dirty.get(room_id) is state:
                    del self._dirty[room_id]
            for device in due_devices:
                dirty = self._dirty_devices.get(device.room_id)
                if dirty is not None and dirty.get(device.device_id) is device:
                    del dirty[device.device_id]
                    if not dirty:
                        del self._dirty_devices[device.room_id]
            if checkpoint:
                self._last_checkpoint = started
            self._pending = _Batch()
            self._acknowledge(batch.acks)
            self._release(batch)
            if self._export is not None and (batch.readings or batch.events):
                self._export(batch.readings, [event for _, event in batch.events])

    def _merge_due(self) -> bool:
        if self._unmerged >= self._merge_rows:
            return True
        return self._unmerged > 0 and time.monotonic() - self._last_merge >= self._merge_interval

    def _merge(self) -> None:
        """Merges what was committed into the series; on failure the readings stay
        where they are (committed, and read through `readings_all`) for the next try."""
        self._last_merge = time.monotonic()
        started = time.perf_counter()
        try:
            stored, duplicates = self._store.merge_recent()
        except STORE_ERRORS as exc:
            self.stats.merge_failures += 1
            if str(exc) != self._merge_error:
                log.warning(kv("history merge failed", error=str(exc), retry_in_s=self._merge_interval))
            self._merge_error = str(exc)
            return
        self._merge_error = None
        self._unmerged = 0
        self._since_release += stored + duplicates
        self.stats.merges += 1
        self.stats.merge_seconds += time.perf_counter() - started
        self.stats.readings_written += stored
        self.stats.readings_duplicate += duplicates

    def _share(
        self,
        events: Sequence[tuple[int, StoredEvent]],
        rooms: list[tuple[str, bytes]],
        devices: list[tuple[str, str, bytes]],
        at: float,
    ) -> str | None:
        """Hands what the file committed on to the shared store; the error, if it failed
        (what failed waits in the sink: committed to the file, it is acknowledged)."""
        if self._shared is None:
            return None
        try:
            self._shared.write(events, rooms, devices, at)
        except STORE_ERRORS as exc:
            error = f"shared store: {exc}"
            self.stats.write_failures += 1
            if self.stats.healthy or error != self.stats.last_error:
                log.error(kv("shared store write failed", error=str(exc), kept_in_local_file=True))
            return error
        return None

    def _failed(self, batch: _Batch, error: str) -> None:
        self.stats.write_failures += 1
        if self.stats.healthy or error != self.stats.last_error:
            log.error(kv("history store write failed", error=error, keeping_in_memory=True))
        self.stats.healthy, self.stats.last_error = False, error
        # Live state must go on: acknowledge, so the broker keeps delivering, and
        # keep the rows in memory for the next attempt, within the bound.
        self._acknowledge(batch.acks)
        batch.acks = []
        # No longer pending either: what is kept is bounded by buffer_rows below.
        self._release(batch)
        excess = len(batch.readings) - self._buffer_rows
        if excess > 0:
            self.stats.readings_dropped += excess
            del batch.readings[:excess]

    def _release(self, batch: _Batch) -> None:
        if self._settle is not None and batch.messages:
            self._settle(batch.messages, batch.message_bytes)
        batch.messages = batch.message_bytes = 0

    def _acknowledge(self, acks: list[Ack]) -> None:
        if self._acknowledge_all is not None:
            try:
                self._acknowledge_all(acks)
            except Exception:  # a lost connection: the broker redelivers, nothing to do
                log.debug(kv("ack failed"), exc_info=True)
            return
        for ack in acks:
            try:
                ack()
            except Exception:  # a lost connection: the broker redelivers, nothing to do
                log.debug(kv("ack failed"), exc_info=True)


def _encode_device(device: DeviceState) -> bytes:
    # Last states hold JSON values and the datetime of `ts`; str() for anything else.
    document = {"ts": device.ts, "digest": device.digest, "last_state": device.last_state}
    return orjson.dumps(document, default=str)


def _occupancy_changed(written: RoomState | None, state: RoomState) -> bool:
    """Whether the occupancy a restart would resume from differs (what events follow)."""
    if written is None:
        return True
    a, b = written.occupancy, state.occupancy
    return a.state != b.state or a.since != b.since or a.people != b.people or a.held != b.held
