"""The embedded store: one SQLite file (WAL) at `storage.path`, schema versioned.

Readings are clustered by (room, metric, time), the way history is asked for and
the way it arrives (each series grows at its end), with the device last: a
redelivered reading (same device, metric and device time, so the same room) hits
the same key and is stored once. One B-tree and no secondary index; `series`
lists the (room, metric) pairs, so retention deletes each series' head by key
instead of scanning the table.

Commits append to `readings_recent` (no key, so a commit writes a few pages at
the table's end) and `merge_recent` merges it into `readings` in key order about once
a second. Committing a batch straight into the clustered table wrote one page per
series it touched (a 50 ms batch from 1,000 series rewrote ~1,000 pages); merging
a second's worth at once writes each page once for many rows, at a third of the
CPU. Reads go through `readings_all`, which adds the rows not merged yet.

Tables: `snapshot` (key -> JSON: rule memory, overrides, auto-registered rooms),
`room_states` (each room's state, written with the readings that led to it),
`readings` (history, one row per device, metric and device time),
`readings_recent` (committed, not merged yet), `events` (occupancy changes,
commands, alerts, ...), `device_states` (per device: the device time of the last
reading applied and the last state, written with the device's room state),
`bookings` (read and written by `gateway.storage.bookings_store`); `webhook_*`
(subscriptions, outbox, delivery log: see gateway/storage/webhook_store.py);
`alert_states` (who acknowledged and resolved which alert: gateway/storage/alert_store.py).
Migrations run in order on open; a file written by a newer officegw is refused
rather than misread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from gateway.storage.bookings_store import BOOKINGS_MIGRATION
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.sql import Dialect, Sql, SqliteSql, sqlite_transaction

# Version N is reached by running MIGRATIONS[N - 1]; append, never edit.
MIGRATIONS: tuple[str, ...] = (
    # 1: the state snapshot.
    """
    CREATE TABLE IF NOT EXISTS snapshot (key TEXT PRIMARY KEY, value BLOB NOT NULL, saved_at REAL NOT NULL);
    """,
    # 2: history, events and room states committed with them.
    """
    CREATE TABLE readings (
        room TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, device TEXT NOT NULL,
        value REAL NOT NULL, received_at REAL NOT NULL,
        PRIMARY KEY (room, metric, ts, device)
    ) WITHOUT ROWID;
    CREATE TABLE series (room TEXT NOT NULL, metric TEXT NOT NULL, PRIMARY KEY (room, metric)) WITHOUT ROWID;
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, room TEXT, data TEXT NOT NULL
    );
    CREATE INDEX events_by_room ON events (room, seq);
    CREATE INDEX events_by_time ON events (at);
    CREATE TABLE room_states (room TEXT PRIMARY KEY, state BLOB NOT NULL, saved_at REAL NOT NULL);
    """,
    # 3: readings are appended to `readings_recent` and merged into `readings` in
    # key order about once a second; `readings_all` is what is stored, both together.
    """
    CREATE TABLE readings_recent (
        room TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL, device TEXT NOT NULL,
        value REAL NOT NULL, received_at REAL NOT NULL
    );
    CREATE VIEW readings_all AS
        SELECT room, metric, ts, device, value, received_at FROM readings
        UNION ALL
        SELECT room, metric, ts, device, value, min(received_at) FROM readings_recent AS r
        WHERE NOT EXISTS (
            SELECT 1 FROM readings AS k
            WHERE k.room = r.room AND k.metric = r.metric AND k.ts = r.ts AND k.device = r.device
        )
        GROUP BY room, metric, ts, device;
    """,
    # 4: what a restart needs of each device (`DeviceState`): the device time it
    # reached and its last state, so older retained messages stay old.
    """
    CREATE TABLE device_states (
        device TEXT PRIMARY KEY, room TEXT NOT NULL, state BLOB NOT NULL, saved_at REAL NOT NULL
    );
    """,
    # 5: bookings (gateway/storage/bookings_store.py has the SQL that uses them).
    BOOKINGS_MIGRATION,
    # 6: webhooks (gateway/storage/webhook_store.py): subscriptions, the outbox (one row
    # per subscription and event not delivered yet, filled by `commit` in the same
    # transaction as the event) and the log of delivery attempts.
    """
    CREATE TABLE webhook_subscriptions (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, kinds TEXT NOT NULL, buildings TEXT NOT NULL,
        secret TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active', paused_at REAL, pause_reason TEXT,
        failures INTEGER NOT NULL DEFAULT 0, failing_since REAL, next_attempt_at REAL NOT NULL DEFAULT 0,
        last_success_at REAL, last_failure_at REAL, last_error TEXT,
        delivered INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE webhook_outbox (
        subscription TEXT NOT NULL, seq INTEGER NOT NULL, enqueued_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (subscription, seq)
    ) WITHOUT ROWID;
    CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY, subscription TEXT NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
        at REAL NOT NULL, outcome TEXT NOT NULL, status INTEGER, error TEXT, duration REAL NOT NULL
    );
    CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription, id);
    """,
    # 7: the alert lifecycle (gateway/storage/alert_store.py): one row per alert (the
    # alert event's seq) someone acknowledged or resolved; and events by kind and
    # time, for the reports that read one kind over a window (commands, alerts).
    """
    CREATE TABLE alert_states (
        alert INTEGER PRIMARY KEY,
        acked_at REAL, acked_by TEXT, ack_note TEXT,
        resolved_at REAL, resolved_by TEXT, resolve_note TEXT
    );
    CREATE INDEX events_by_kind ON events (kind, at);
    """,
    # 8: the shard column the SQL shared with PostgreSQL names (gateway/storage/sql.py):
    # always '' in a gateway's own file. Adding a column with a constant default
    # rewrites no table.
    """
    ALTER TABLE events ADD COLUMN shard TEXT NOT NULL DEFAULT '';
    ALTER TABLE webhook_outbox ADD COLUMN shard TEXT NOT NULL DEFAULT '';
    ALTER TABLE webhook_deliveries ADD COLUMN shard TEXT NOT NULL DEFAULT '';
    ALTER TABLE alert_states ADD COLUMN shard TEXT NOT NULL DEFAULT '';
    CREATE UNIQUE INDEX alert_states_by_shard ON alert_states (shard, alert);
    """,
    # 9: where the last run ended its event numbering (gateway/storage/
    # event_numbering.py): the last number given out at a clean stop, NULL while a
    # run is under way. An existing file counts as having ended cleanly at its newest.
    """
    CREATE TABLE event_numbering (shard TEXT PRIMARY KEY, clean_end INTEGER);
    INSERT INTO event_numbering (shard, clean_end) VALUES ('', (SELECT coalesce(max(seq), 0) FROM events));
    """,
)
# Events committed are put in the webhook outbox of every subscription (active or
# paused: a paused one gets them once resumed) whose kinds and buildings match; an
# empty list matches everything. Parameters: the time, then the events as `commit`
# encodes them ([seq, at, kind, room, data, building], ...).
ENQUEUE_WEBHOOKS = """
    INSERT OR IGNORE INTO webhook_outbox (subscription, seq, enqueued_at)
    SELECT s.id, j.value ->> 0, ? FROM json_each(?) AS j JOIN webhook_subscriptions AS s
    WHERE (s.kinds = '[]' OR EXISTS (SELECT 1 FROM json_each(s.kinds) AS k WHERE k.value = j.value ->> 2))
      AND (s.buildings = '[]'
           OR EXISTS (SELECT 1 FROM json_each(s.buildings) AS b WHERE b.value = j.value ->> 5))
"""
SCHEMA_VERSION = len(MIGRATIONS)
CACHE_KIB = 64 * 1024
# SQLite virtual machine steps between two calls of a long statement's progress
# callback (some 30 ms of deleting rows).
PROGRESS_STEPS = 1_000_000
# Readings are appended to `readings_recent` by multi-row INSERT ... VALUES statements
# of up to 1,024 rows (within SQLite's bound on parameters), then smaller ones for the
# rest: one statement step per chunk, its parameters taken from the `Reading` tuples
# by C code (`_ROW_FIELDS`), with no JSON to parse. A commit of 5,000 readings takes
# about a third of the CPU of unpacking a JSON array (`json_each` and `->>` per
# field), and the statements' text is the same every time, so each is prepared once
# (the connection's statement cache).
APPEND_CHUNKS = (1024, 256, 64, 16, 4, 1)
# The `Reading` fields that are columns of `readings_recent`, in `_APPEND`'s order.
_ROW_FIELDS = itemgetter(
    *(
        Reading._fields.index(name)
        for name in ("device_id", "room_id", "metric", "value", "ts", "received_at")
    )
)
_APPEND = "INSERT INTO readings_recent (device, room, metric, value, ts, received_at) VALUES "
_APPEND_WIDTH = 6
_SERIES_OF = itemgetter(Reading._fields.index("room_id"), Reading._fields.index("metric"))


@cache
def _append_statement(rows: int) -> str:
    return _APPEND + ",".join(["(" + ",".join("?" * _APPEND_WIDTH) + ")"] * rows)


class StoreError(RuntimeError):
    pass


class Store:
    """All SQL lives here; callers hand in records and get plain values back.

    One connection behind a lock: the history writer is the only busy writer, and
    WAL lets API reads run between its commits.
    """

    dialect: Dialect = "sqlite"
    # One gateway a file: its rows need no key of whose they are (see gateway/storage/sql.py).
    shard = ""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (what the
        # acknowledgements rely on); only a power loss can take the last ones back.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # Readings go into three B-trees at places spread over every device and room;
        # SQLite's default 2 MiB page cache makes that disk-bound past ~100k rows.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._lock = threading.Lock()
        # The chunks that fit this SQLite's limit on bound parameters (32,766 by default).
        limit = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _APPEND_WIDTH
        self._chunks = tuple(size for size in APPEND_CHUNKS if size <= max(limit, 1))
        self._migrate()
        # (room, metric) pairs known to `series`, so a batch inserts only new ones.
        self._series = KnownSeries(self._db.execute("SELECT room, metric FROM series").fetchall())
        # What a crash left unmerged.
        self.merge_recent()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer officegw (schema {version} > {SCHEMA_VERSION})"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits first; the version bump is in the same script.
            self._db.executescript(f"BEGIN; {MIGRATIONS[target - 1]} PRAGMA user_version={target}; COMMIT;")

    @property
    def version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # Writes

    def commit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, StoredEvent]],
        room_states: Iterable[tuple[str, bytes]],
        at: float,
        device_states: Iterable[tuple[str, str, bytes]] = (),
    ) -> None:
        """One transaction: readings (appended to `readings_recent`, see `merge_recent`),
        events with their sequence numbers, room states and device states
        ((device, room, JSON) each).

        One statement step per chunk of rows, never one per row (`executemany`): the
        sqlite3 module hands the GIL back around every step, and getting it back
        from a busy ingest thread takes up to the 5 ms switch interval; per-row
        steps made a batch of thousands take seconds. Readings go in multi-row
        VALUES chunks (APPEND_CHUNKS); the other tables get their rows as one JSON
        array, unpacked by SQLite (`json_each`), and only when they have any.
        """
        logged = orjson.dumps([(seq, e.at, e.kind, e.room_id, e.data, e.building) for seq, e in events])
        states = [(room, orjson.Fragment(state)) for room, state in room_states]
        devices = [(device, room, orjson.Fragment(state)) for device, room, state in device_states]
        new_series = self._series.new(readings)
        # Only the statements with rows: each is a step without the GIL, and taking
        # it back from a busy ingest thread can take the 5 ms switch interval.
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._append(readings)
                if new_series:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO series (room, metric) VALUES (?, ?)", new_series
                    )
                if events:
                    self._db.execute(
                        "INSERT OR IGNORE INTO events (seq, at, kind, room, data) "
                        "SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value -> 4 "
                        "FROM json_each(?) AS j",
                        (logged,),
                    )
                    self._db.execute(ENQUEUE_WEBHOOKS, (at, logged))
                if states:
                    self._db.execute(
                        "INSERT INTO room_states (room, state, saved_at) "
                        "SELECT j.value ->> 0, j.value -> 1, ? FROM json_each(?) AS j "
                        "WHERE true ON CONFLICT(room) "
                        "DO UPDATE SET state = excluded.state, saved_at = excluded.saved_at",
                        (at, orjson.dumps(states)),
                    )
                if devices:
                    self._db.execute(
                        "INSERT INTO device_states (device, room, state, saved_at) "
                        "SELECT j.value ->> 0, j.value ->> 1, j.value -> 2, ? FROM json_each(?) AS j "
                        "WHERE true ON CONFLICT(device) DO UPDATE SET room = excluded.room, "
                        "state = excluded.state, saved_at = excluded.saved_at",
                        (at, orjson.dumps(devices)),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if new_series:
                self._series.add(new_series)

    def _append(self, readings: Sequence[Reading]) -> None:
        """Appends readings to `readings_recent` (see APPEND_CHUNKS), within the caller's transaction."""
        values = list(chain.from_iterable(map(_ROW_FIELDS, readings)))
        width = _APPEND_WIDTH
        done, total = 0, len(readings)
        for size in self._chunks:
            statement = _append_statement(size)
            while total - done >= size:
                self._db.execute(statement, values[done * width : (done + size) * width])
                done += size

    def merge_recent(self) -> tuple[int, int]:
        """Merges `readings_recent` into `readings`, in key order, in one transaction.
        Returns (readings stored, duplicates dropped): a reading already stored (a
        redelivery) is kept once."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                before = self._db.total_changes
                self._db.execute(
                    "INSERT OR IGNORE INTO readings (room, metric, ts, device, value, received_at) "
                    "SELECT room, metric, ts, device, value, received_at FROM readings_recent "
                    "ORDER BY room, metric, ts, device, received_at"
                )
                stored = self._db.total_changes - before
                merged = self._db.execute("DELETE FROM readings_recent").rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored, merged - stored

    def save_snapshot(self, documents: dict[str, Any], at: float) -> None:
        rows = [(key, orjson.dumps(value), at) for key, value in documents.items()]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO snapshot (key, value, saved_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def prune(
        self,
        readings_before: float | None,
        events_before: float | None,
        progress: Callable[[], object] | None = None,
    ) -> tuple[int, int]:
        """Retention: deletes readings and events older than the given times. The first
        run over a large history can take minutes: `progress()` is called as it goes
        (every PROGRESS_STEPS steps of SQLite's), so the writer is not taken for hung."""
        with self._lock, self._progress(progress):
            readings = events = 0
            if readings_before is not None:
                series = self._db.execute("SELECT room, metric FROM series").fetchall()
                before = self._db.total_changes
                self._db.executemany(
                    "DELETE FROM readings WHERE room = ? AND metric = ? AND ts < ?",
                    [(room, metric, readings_before) for room, metric in series],
                )
                readings = self._db.total_changes - before
            if events_before is not None:
                events = self._db.execute("DELETE FROM events WHERE at < ?", (events_before,)).rowcount
                # An alert's lifecycle goes with its event. (Not "whose event is gone":
                # an alert acknowledged within a commit interval of being raised is
                # not committed yet.)
                self._db.execute(
                    "DELETE FROM alert_states WHERE alert < (SELECT coalesce(min(seq), -1) FROM events)"
                )
            return readings, events

    @contextmanager
    def _progress(self, progress: Callable[[], object] | None) -> Iterator[None]:
        if progress is None:
            yield
            return

        def handler() -> int:
            progress()
            return 0  # go on

        self._db.set_progress_handler(handler, PROGRESS_STEPS)
        try:
            yield
        finally:
            self._db.set_progress_handler(None, 0)

    # Reads

    def load_snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM snapshot").fetchall()
        return {key: orjson.loads(value) for key, value in rows}

    def snapshot_entry(self, key: str) -> Any:
        """One document of the snapshot (None when it has none), without reading the others."""
        with self._lock:
            row = self._db.execute("SELECT value FROM snapshot WHERE key = ?", (key,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def room_states(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT room, state FROM room_states").fetchall()
        return {room: orjson.loads(state) for room, state in rows}

    def device_states(self) -> dict[str, tuple[str, Any]]:
        """Device -> (room, state JSON parsed), as committed."""
        with self._lock:
            rows = self._db.execute("SELECT device, room, state FROM device_states").fetchall()
        return {device: (room, orjson.loads(state)) for device, room, state in rows}

    def room_states_saved(self) -> list[tuple[str, bytes, float]]:
        """(room, state JSON as stored, saved at): what the shared store catches up from."""
        with self._lock:
            return self._db.execute("SELECT room, state, saved_at FROM room_states").fetchall()

    def device_states_saved(self) -> list[tuple[str, str, bytes, float]]:
        """(device, room, state JSON as stored, saved at)."""
        with self._lock:
            return self._db.execute("SELECT device, room, state, saved_at FROM device_states").fetchall()

    def last_event_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def recent_events(self, limit: int) -> list[tuple[int, float, str, str | None, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, room, data FROM events ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [(seq, at, kind, room, orjson.loads(data)) for seq, at, kind, room, data in reversed(rows)]

    def history(
        self, room: str, metric: str, start: float, end: float, step: float
    ) -> list[tuple[float, float, float, float, int]]:
        """(bucket start, mean, min, max, count) of the room's readings of `metric` in
        [start, end), over all its devices, per bucket of `step` seconds that has any.

        Buckets are aligned to multiples of `step` since the epoch (a reading at `ts`
        is in the bucket starting at floor(ts / step) * step), whatever the window:
        two requests seconds apart get the same boundaries. The first and last
        buckets may reach outside the window; they count only readings inside it.
        """
        # floor(), without relying on SQLite's optional math functions: CAST
        # truncates towards zero, one too high below zero unless exact.
        bucket = "CAST(ts / :step AS INTEGER) - (ts < 0 AND CAST(ts / :step AS INTEGER) <> ts / :step)"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {bucket} AS bucket, "
                "avg(value), min(value), max(value), count(*) FROM readings_all "
                "WHERE room = :room AND metric = :metric AND ts >= :start AND ts < :end "
                "GROUP BY bucket ORDER BY bucket",
                {"room": room, "metric": metric, "start": start, "end": end, "step": step},
            ).fetchall()
        return [(bucket * step, mean, low, high, n) for bucket, mean, low, high, n in rows]

    def readings(
        self,
        room: str,
        metric: str,
        start: float,
        end: float,
        *,
        after: tuple[float, str] | None = None,
        limit: int,
    ) -> list[tuple[float, str, float]]:
        """(ts, device, value) of the room's readings of `metric` in [start, end), in
        (ts, device) order, past `after` (the (ts, device) a previous page ended
        with), at most `limit` of them.

        A range of the clustered key from where the page starts: a page costs its
        own rows, not the window's. `readings_all` would sort the whole rest of
        the window for every page, so the merged rows and the few not merged yet
        are read apart and put together here.
        """
        where = "room = :room AND metric = :metric AND ts >= :start AND ts < :end"
        params: dict[str, Any] = {"room": room, "metric": metric, "start": start, "end": end, "limit": limit}
        if after is not None:
            # One lower bound on ts, so the key range starts at the cursor.
            params["start"] = max(start, after[0])
            where += " AND (ts > :after_ts OR device > :after_device)"
            params["after_ts"], params["after_device"] = after
        with self._lock:
            merged = self._db.execute(
                f"SELECT ts, device, value FROM readings WHERE {where} ORDER BY ts, device LIMIT :limit",
                params,
            ).fetchall()
            # As in `readings_all`: each reading once, the first received, none the
            # merged rows hold already.
            recent = self._db.execute(
                f"SELECT ts, device, value, min(received_at) FROM readings_recent AS r WHERE {where} "
                "AND NOT EXISTS (SELECT 1 FROM readings AS k WHERE k.room = r.room AND k.metric = r.metric "
                "AND k.ts = r.ts AND k.device = r.device) "
                "GROUP BY ts, device ORDER BY ts, device LIMIT :limit",
                params,
            ).fetchall()
        rows = [(ts, device, value) for ts, device, value in merged]
        if recent:
            rows = sorted(rows + [(ts, device, value) for ts, device, value, _ in recent])[:limit]
        return rows

    def metrics(self, room: str) -> list[str]:
        """The metrics ever recorded in the room (retention may have emptied some)."""
        with self._lock:
            rows = self._db.execute("SELECT metric FROM series WHERE room = ? ORDER BY metric", (room,))
            return [metric for (metric,) in rows.fetchall()]

    def series_spans(self, room: str) -> list[tuple[str, float, float]]:
        """(metric, first ts, last ts) of each metric the room has readings of, by name.

        Two key lookups a series (its first and last row), and the readings not
        merged yet (about a second's worth); counting would read every row.
        """
        with self._lock:
            merged = self._db.execute(
                "SELECT s.metric, "
                "(SELECT ts FROM readings AS r WHERE r.room = s.room AND r.metric = s.metric "
                "ORDER BY ts LIMIT 1), "
                "(SELECT ts FROM readings AS r WHERE r.room = s.room AND r.metric = s.metric "
                "ORDER BY ts DESC LIMIT 1) "
                "FROM series AS s WHERE s.room = ?",
                (room,),
            ).fetchall()
            recent = self._db.execute(
                "SELECT metric, min(ts), max(ts) FROM readings_recent WHERE room = ? GROUP BY metric", (room,)
            ).fetchall()
        spans: dict[str, tuple[float, float]] = {
            metric: (first, last) for metric, first, last in merged if first is not None
        }
        for metric, first, last in recent:
            if metric in spans:
                first, last = min(first, spans[metric][0]), max(last, spans[metric][1])
            spans[metric] = (first, last)
        return [(metric, first, last) for metric, (first, last) in sorted(spans.items())]

    def count_readings(self, device: str | None = None) -> int:
        with self._lock:
            if device is None:
                row = self._db.execute("SELECT count(*) FROM readings_all").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM readings_all WHERE device = ?", (device,)
                ).fetchone()
            return int(row[0])

    def event(self, seq: int) -> tuple[int, float, str, str | None, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, at, kind, room, data FROM events WHERE seq = ?", (seq,)
            ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], orjson.loads(row[4])

    def events_after(
        self, after: int, before: int, limit: int
    ) -> list[tuple[int, float, str, str | None, dict[str, Any]]]:
        """Events with after < seq < before, oldest first (what the in-memory log no longer holds)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, room, data FROM events WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?",
                (after, before, limit),
            ).fetchall()
        return [(seq, at, kind, room, orjson.loads(data)) for seq, at, kind, room, data in rows]

    def events_before(self, before: int, limit: int) -> list[tuple[int, float, str, str | None]]:
        """(seq, at, kind, room) of the `limit` events numbered below `before`, newest
        first: what the shared store's catch-up compares with its own."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, room FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before, limit),
            ).fetchall()
        return [(seq, at, kind, room) for seq, at, kind, room in rows]

    def renumber_events(self, numbers: Mapping[int, int]) -> None:
        """Gives events new numbers (old -> new, each new one unused), in one
        transaction: the shared store's catch-up, for events of this file whose
        numbers the shard gave to others while the file was away."""
        with self._lock, sqlite_transaction(self._db):
            self._db.executemany(
                "UPDATE events SET seq = ? WHERE seq = ?", [(new, old) for old, new in numbers.items()]
            )

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own to the same file, for long reads (reports),
        in one read transaction: every query sees the same snapshot, and in WAL mode
        commits go on meanwhile, where holding the store's lock for seconds would hold
        up every commit (and so every MQTT acknowledgement)."""
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            db.execute("BEGIN")
            yield db
        finally:
            db.close()

    @contextmanager
    def sql(self) -> Iterator[Sql]:
        """The connection, under the store's lock, for the SQL of a module beside this one
        (gateway/storage/webhook_store.py); autocommit: each statement commits."""
        with self._lock:
            yield SqliteSql(self._db)

    @contextmanager
    def sql_transaction(self) -> Iterator[Sql]:
        """As `sql`, in one transaction (committed at the end, rolled back on an exception)."""
        with self._lock, sqlite_transaction(self._db):
            yield SqliteSql(self._db)

    def release_memory(self) -> None:
        """Empties the connection's page cache (up to `CACHE_KIB`): after a burst of
        writes over a whole campus's series it holds what the next batches will read
        again from the file, which the system caches anyway."""
        with self._lock:
            self._db.execute("PRAGMA shrink_memory")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class KnownSeries:
    """The (room, metric) pairs `series` holds, as room -> its metrics: one frozenset
    per distinct set, shared by the rooms that have it (most rooms record the same
    metrics), instead of a tuple per pair (issue 17: memory per device)."""

    __slots__ = ("_rooms", "_shared")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._rooms: dict[str, frozenset[str]] = {}
        self._shared: dict[frozenset[str], frozenset[str]] = {}
        self.add(set(pairs))

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        return pair[1] in self._rooms.get(pair[0], ())

    def new(self, readings: Iterable[Reading]) -> set[tuple[str, str]]:
        """The pairs of `readings` not known yet."""
        rooms = self._rooms
        # The batch's distinct pairs in C (`map`), then the few of them looked up.
        pairs: set[tuple[str, str]] = set(map(_SERIES_OF, readings))
        return {pair for pair in pairs if pair[1] not in rooms.get(pair[0], ())}

    def add(self, pairs: set[tuple[str, str]]) -> None:
        by_room: dict[str, set[str]] = {}
        for room, metric in pairs:
            by_room.setdefault(room, set()).add(metric)
        for room, metrics in by_room.items():
            merged = self._rooms.get(room, frozenset()) | metrics
            # Bounded like the registry's shared sets: past it a room keeps its own.
            shared = self._shared.get(merged)
            if shared is None:
                shared = merged
                if len(self._shared) < 10_000:
                    self._shared[merged] = merged
            self._rooms[room] = shared
