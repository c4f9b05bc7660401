"""The state snapshot: what the gateway needs to pick up where it left off.

Room states (with the timestamps every timer is derived from), rule memory and
manual overrides are saved to SQLite every few seconds and on shutdown, and
restored before the broker connection opens; the first tick after a restart then
catches up on every deadline that passed while the gateway was down.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway.logs import kv

log = logging.getLogger("officegw.snapshot")

SCHEMA_VERSION = 1


class SnapshotStore:
    """Key -> JSON document, in one SQLite table (WAL, so readers never block the writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS snapshot "
                "(key TEXT PRIMARY KEY, value BLOB NOT NULL, saved_at REAL NOT NULL)"
            )
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{path} was written by a newer officegw (schema {version} > {SCHEMA_VERSION})"
            )
        self._lock = threading.Lock()

    def save(self, documents: dict[str, Any], at: float) -> None:
        rows = [(key, orjson.dumps(value), at) for key, value in documents.items()]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO snapshot (key, value, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
                rows,
            )
            self._db.execute("COMMIT")

    def load(self) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM snapshot").fetchall()
        return {key: orjson.loads(value) for key, value in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Snapshotter:
    """Saves `capture()` every `interval` seconds in the background, and once more on stop."""

    def __init__(self, store: SnapshotStore, capture: Callable[[], dict[str, Any]], interval: float) -> None:
        self._store = store
        self._capture = capture
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="officegw-snapshot", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.save()

    def save(self) -> None:
        try:
            self._store.save(self._capture(), time.time())
        except (sqlite3.Error, OSError) as exc:
            # Live state keeps being served; the next attempt may succeed (disk freed).
            self.failures += 1
            log.error(kv("snapshot failed", error=str(exc)))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.save()
