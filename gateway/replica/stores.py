"""The shared store as a replica reads it: bookings and events, written by the gateways.

`open_replica_stores` is the one place that opens them. A replica never writes: booking
writes go to the owning gateway (gateway/shard_commands.py).

- `storage.url` (PostgreSQL): the bookings of every shard's rooms, and the event log
  of the shard named by `gateway.id` in the replica's config (events are numbered per
  shard; one log keeps GET /v1/events cursors and the stream's Last-Event-ID exact).
- Else SQLite: the gateway's file (`storage.path`), shared on one machine; WAL lets
  this process read while the gateway writes. The file must exist and be migrated (the
  gateway opened it first): a replica does not create or migrate a gateway's store.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.config import ConfigError, Settings
from gateway.storage.bookings_store import (
    BookingStore,
    BookingStoreError,
    SqlBookingStore,
    SqliteBookingStore,
)
from gateway.storage.open_stores import open_shared
from gateway.storage.postgres_store import PostgresStore

# (seq, at, kind, room, data)
EventRow = tuple[int, float, str, str | None, dict[str, Any]]


class EventReader(Protocol):
    def last_seq(self) -> int: ...

    def after(self, after: int, limit: int) -> list[EventRow]:
        """Events with seq > after, oldest first."""

    def close(self) -> None: ...


class SqliteEventReader:
    """The events table of the gateways' SQLite file, read on a connection of its own."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._lock = threading.Lock()

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def after(self, after: int, limit: int) -> list[EventRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, room, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(seq, at, kind, room, orjson.loads(data)) for seq, at, kind, room, data in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresEventReader:
    """One shard's event log in the shared PostgreSQL store (its `gateway.id`)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def last_seq(self) -> int:
        return self._store.last_event_seq()

    def after(self, after: int, limit: int) -> list[EventRow]:
        return self._store.events_after(after, 2**62, limit)

    def close(self) -> None:
        """The store is closed with the bookings' (one pool)."""


class SharedBookings(SqlBookingStore):
    """Every shard's bookings on the shared store; closing it closes the store's pool."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self._shared = store

    def close(self) -> None:
        self._shared.close()


@dataclass(frozen=True, slots=True)
class ReplicaStores:
    bookings: BookingStore
    events: EventReader

    def close(self) -> None:
        self.bookings.close()
        self.events.close()


def open_replica_stores(settings: Settings, source: str = "config") -> ReplicaStores:
    """The shared stores of `settings`; a ConfigError naming `storage.url` when PostgreSQL
    cannot be used, or `storage.path` when there is no gateway's file there yet."""
    if settings.storage.url is not None:
        shared = open_shared(settings)
        return ReplicaStores(SharedBookings(shared), PostgresEventReader(shared))
    path = Path(settings.storage.path)
    if not path.is_file():
        raise ConfigError(
            source, [f"storage.path: {path} does not exist; a gateway creates it (start one first)"]
        )
    try:
        bookings = SqliteBookingStore(path)
    except (BookingStoreError, sqlite3.Error) as exc:
        raise ConfigError(source, [f"storage.path: {path} is not a gateway's store: {exc}"]) from None
    return ReplicaStores(bookings, SqliteEventReader(path))
