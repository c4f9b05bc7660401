"""One SQL text for SQLite and PostgreSQL: the handle the shared stores' statements run on.

The bookings, webhook and alert stores write their statements once, with `?`
placeholders and the SQL both engines take (`ON CONFLICT ... DO UPDATE`, `count(*)
FILTER`, `coalesce`, no JSON functions). `Sql` runs them on either: SQLite as
written, PostgreSQL with the placeholders turned into psycopg's `%s`. What differs
beyond that stays in the module that owns the backend (gateway/storage/sqlite_store.py,
gateway/storage/postgres_store.py): the schemas, the JSON unpacking of a batch.

`shard` is the gateway's id on a shared PostgreSQL (rows keyed by it are that
shard's alone) and '' in a gateway's own SQLite file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg

Dialect = Literal["sqlite", "postgresql"]

# What a store write may raise when its database fails (disk full, connection lost):
# the callers that carry on (history writer, bookings, webhooks) catch these.
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error, OSError)


class Rows(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Sql(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    @property
    def shard(self) -> str: ...

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None: ...


class SqlStore(Protocol):
    """Where the shared statements run: one statement at a time, or one transaction."""

    def sql(self) -> AbstractContextManager[Sql]: ...

    def sql_transaction(self) -> AbstractContextManager[Sql]: ...


class SqliteSql:
    dialect: Dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection, shard: str = "") -> None:
        self._db = db
        self.shard = shard

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows:
        return self._db.execute(statement, parameters)

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(statement, rows)


class PostgresSql:
    dialect: Dialect = "postgresql"

    def __init__(self, connection: psycopg.Connection[Any], shard: str) -> None:
        self._connection = connection
        self.shard = shard

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows:
        return self._connection.execute(postgres_text(statement), tuple(parameters))

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(postgres_text(statement), [tuple(row) for row in rows])


@lru_cache(maxsize=1024)
def postgres_text(statement: str) -> str:
    """The statement with psycopg's placeholders. The shared SQL has no `?` or `%`
    inside its string literals (checked by the tests running it on both engines)."""
    return statement.replace("%", "%%").replace("?", "%s")


@contextmanager
def sqlite_transaction(db: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE: take the write lock first, so SQLite's busy timeout applies (a
    # deferred transaction that reads first cannot wait for it later).
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteConnection:
    """A connection of its own to the gateway's SQLite file (migrated by `Store`
    first), for a store that must not wait behind the history writer's lock, only
    (briefly, through the busy timeout) behind its commits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    def has_table(self, name: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
        return bool(row[0])

    @contextmanager
    def sql(self) -> Iterator[Sql]:
        with self._lock:
            yield SqliteSql(self._db)

    @contextmanager
    def sql_transaction(self) -> Iterator[Sql]:
        with self._lock, sqlite_transaction(self._db):
            yield SqliteSql(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
