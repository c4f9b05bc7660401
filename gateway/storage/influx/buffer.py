"""The durable, bounded queue of line-protocol points waiting for InfluxDB.

A SQLite file of its own (WAL): a row per point, in the order submitted. Rows are
deleted only once the server acknowledged them, so a process crash or a database
outage loses nothing up to `max_rows`. When the queue is full, new points are
refused (the caller counts them as dropped): the oldest stay, so what reaches
InfluxDB after an outage is the continuous start of the gap, like mosquitto's
`max_queued_messages`; the SQLite history holds the rest.

Shared by two threads (the submitter and the exporter's drainer) through one
connection under a lock; no call holds the lock across network I/O.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import orjson

_SCHEMA = "CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, line TEXT NOT NULL)"


class InfluxBuffer:
    def __init__(self, path: str | Path, max_rows: int) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only a power loss may cost
        # the last transactions.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._count: int = self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def __len__(self) -> int:
        return self._count

    def append(self, lines: Sequence[str]) -> int:
        """Queues what fits; returns how many lines did not fit (refused)."""
        with self._lock:
            taken = lines[: max(0, self.max_rows - self._count)]
            if taken:
                # One statement for the batch: executemany would step once per row,
                # handing the GIL back (and waiting for it) every time.
                with self._transaction():
                    self._db.execute(
                        "INSERT INTO points (line) SELECT value FROM json_each(?) ORDER BY key",
                        (orjson.dumps(list(taken)),),
                    )
                self._count += len(taken)
            return len(lines) - len(taken)

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest `limit` points as (id, line), still queued."""
        with self._lock:
            rows = self._db.execute("SELECT id, line FROM points ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def remove(self, rows: Sequence[tuple[int, str]]) -> None:
        """Deletes a run of rows as returned by one `peek` (or a contiguous slice of it).

        Deleting by id range is exact: a peek returns consecutive rows, and rows
        appended later always get higher ids.
        """
        if not rows:
            return
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "DELETE FROM points WHERE id BETWEEN ? AND ?", (rows[0][0], rows[-1][0])
            )
            self._count -= cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
