"""The store tests run on both engines: `backend` opens the gateway's SQLite file or a
fresh database on the session's private PostgreSQL (started only when a test asks)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.storage.bookings_store import SqlBookingStore, SqliteBookingStore
from gateway.storage.postgres_store import PostgresStore
from gateway.storage.sqlite_store import Store

# What a constraint the store refuses raises, on either engine.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


class Backend:
    """Opens the stores of one engine; each open is closed at the end of the test."""

    def __init__(self, name: str, path: Path, url: str | None) -> None:
        self.name = name
        self.path = path
        self.url = url
        self._opened: list[Store | PostgresStore | SqlBookingStore] = []

    def open(self, shard: str = "gw-1") -> Store | PostgresStore:
        store = Store(self.path) if self.url is None else PostgresStore(self.url, shard, pool_size=2)
        self._opened.append(store)
        return store

    def open_pool(self, size: int, shard: str = "gw-1") -> PostgresStore:
        assert self.url is not None
        store = PostgresStore(self.url, shard, pool_size=size)
        self._opened.append(store)
        return store

    def bookings(self, store: Store | PostgresStore) -> SqlBookingStore:
        bookings = SqliteBookingStore(self.path) if isinstance(store, Store) else SqlBookingStore(store)
        self._opened.append(bookings)
        return bookings

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()
        self._opened.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    opened = Backend(request.param, tmp_path / "officegw.db", url)
    try:
        yield opened
    finally:
        opened.close()
