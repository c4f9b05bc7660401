"""The shared store of a campus of gateways: PostgreSQL (psycopg 3, a connection pool).

What the whole campus must agree on lives here: bookings, events (and so the audit
trail), alert states, webhook subscriptions with their outbox and delivery log, and
each shard's room states, device states and snapshot. Readings stay in each
gateway's SQLite file (or go to InfluxDB): see gateway/storage/open_stores.py.

Sharding: every row a gateway writes of its own is keyed by its shard id (its
`gateway.id`): events (shard, seq), room states (shard, room), device states,
snapshot entries, alert states, webhook outbox rows. A shard reads, overwrites and
prunes only rows with its own key, so two gateways on one database never touch each
other's. Which shard serves which building is the `shard_buildings` table: a
gateway claims its buildings at start (`claim`) and is refused when another shard
holds one of them. A standby of the same shard (same id) holds the same claim.

Migrations (gateway/storage/postgres_schema.py) run in order on open, under an advisory lock (two gateways
starting at once migrate once); the version is `schema_version`. A database written
by a newer officegw is refused rather than misread, as the SQLite file is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.storage import postgres_schema as schema
from gateway.storage.postgres_schema import (
    ENQUEUE_WEBHOOKS,
    INSERT_EVENTS,
    MIGRATION_LOCK,
    UPSERT_DEVICES,
    UPSERT_ROOMS,
)
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.sql import Dialect, PostgresSql, Sql
from gateway.storage.sqlite_store import Store

log = logging.getLogger("officegw.storage")

# How long a statement waits for a connection from the pool (a healthy pool has one
# within milliseconds); and, after a connection failed, how long statements fail at
# once instead of each waiting that long: an API request or a metrics scrape that
# reads the shared store never hangs while PostgreSQL is away.
CONNECTION_WAIT = 2.0
FAIL_FAST_FOR = 2.0
# Events copied from the SQLite file per statement when catching up.
CATCH_UP_CHUNK = 5_000
# Events deleted per transaction by retention.
PRUNE_CHUNK = 10_000
# The building of an event from its room and data (None: cannot tell), for catch-up.
BuildingOf = Callable[[str | None, Mapping[str, Any]], str | None]


def _no_building(room: str | None, data: Mapping[str, Any]) -> str | None:
    return None


Event = tuple[int, float, str, str | None, dict[str, Any]]


class StoreError(RuntimeError):
    pass


class SharedStoreUnavailable(psycopg.OperationalError):
    """Raised without trying while the shared store is known to be down (see
    `PostgresStore._connection`)."""


class ShardConflict(Exception):
    """Buildings this shard was to serve are claimed by another shard."""

    def __init__(self, claimed: dict[str, str]) -> None:
        self.claimed = claimed  # building -> the shard holding it
        super().__init__(", ".join(f"{b!r} by shard {s!r}" for b, s in sorted(claimed.items())))


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _configure(connection: psycopg.Connection[Any]) -> None:
    # JSON columns come back as text, as SQLite's do: the callers parse them (orjson).
    connection.adapters.register_loader("jsonb", TextLoader)
    connection.adapters.register_loader("json", TextLoader)


class PostgresStore:
    """The shared stores of one shard (`shard`: its gateway id) on a PostgreSQL database.

    Has the methods of `gateway.storage.sqlite_store.Store` a gateway's state needs
    (events, room and device states, the snapshot) and `sql`/`sql_transaction` for the
    bookings, webhook and alert stores; it keeps no readings."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, shard: str, *, pool_size: int = 4, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.shard = shard
        self._failing_until = 0.0
        self._failure = ""
        # One connection first, for the server's own answer (refused, a wrong password,
        # no such database) at once, where the pool would retry until its timeout.
        try:
            psycopg.connect(url, connect_timeout=max(1, int(connect_timeout))).close()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise StoreError(f"cannot connect to {redacted(url)}: {reason}") from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            configure=_configure,
            # A connection the server dropped (a restart, a failover) is replaced
            # when taken, instead of failing the statement it was taken for.
            check=ConnectionPool.check_connection,
            timeout=min(connect_timeout, CONNECTION_WAIT),
            name=f"officegw-{shard}",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {redacted(url)} within {connect_timeout:g} s: {exc}"
            ) from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if time.monotonic() < self._failing_until:
            raise SharedStoreUnavailable(f"{redacted(self.url)} unavailable: {self._failure}")
        try:
            with self._pool.connection() as connection:
                yield connection
        except psycopg.OperationalError as exc:  # the connection, not the statement
            self._failure = str(exc)
            self._failing_until = time.monotonic() + FAIL_FAST_FOR
            raise

    def _migrate(self) -> None:
        with self._connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
            version = int(row[0] or 0) if row is not None else 0
            if version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"{redacted(self.url)} was written by a newer officegw "
                    f"(schema {version} > {schema.SCHEMA_VERSION})"
                )
            for target in range(version + 1, schema.SCHEMA_VERSION + 1):
                connection.execute(schema.MIGRATIONS[target - 1])
                connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (target,))

    @property
    def version(self) -> int:
        with self._connection() as connection:
            row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row is not None else 0

    # The SQL shared with SQLite

    @contextmanager
    def sql(self) -> Iterator[Sql]:
        with self._connection() as connection:
            yield PostgresSql(connection, self.shard)

    @contextmanager
    def sql_transaction(self) -> Iterator[Sql]:
        with self._connection() as connection, connection.transaction():
            yield PostgresSql(connection, self.shard)

    # Shards

    def claim(self, buildings: Collection[str], at: float) -> None:
        """Makes `buildings` this shard's, and only them: a building it held before and
        no longer serves is released. Raises ShardConflict (and claims nothing) when
        another shard holds any of them. The table is locked for the check, so of two
        gateways claiming one building at once the second is refused."""
        wanted = sorted(set(buildings))
        with self._connection() as connection, connection.transaction():
            connection.execute("LOCK TABLE shard_buildings IN SHARE ROW EXCLUSIVE MODE")
            rows = connection.execute(
                "SELECT building, shard FROM shard_buildings WHERE building = ANY(%s) AND shard <> %s",
                (wanted, self.shard),
            ).fetchall()
            if rows:
                raise ShardConflict({building: shard for building, shard in rows})
            connection.execute(
                "DELETE FROM shard_buildings WHERE shard = %s AND NOT (building = ANY(%s))",
                (self.shard, wanted),
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO shard_buildings (building, shard, claimed_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (building) DO NOTHING",
                    [(building, self.shard, at) for building in wanted],
                )

    def shards(self) -> dict[str, str]:
        """Building -> the shard serving it, for the whole campus."""
        with self._connection() as connection:
            rows = connection.execute("SELECT building, shard FROM shard_buildings").fetchall()
        return dict(rows)

    # Writes

    def commit(
        self,
        readings: Sequence[Reading],
        events: Sequence[tuple[int, StoredEvent]],
        room_states: Iterable[tuple[str, bytes]],
        at: float,
        device_states: Iterable[tuple[str, str, bytes]] = (),
    ) -> None:
        """One transaction: the events (with their webhook outbox rows), room states and
        device states of this shard, as `Store.commit` has them. Readings are not kept
        here (they stay in the gateway's SQLite file): none may be given."""
        if readings:
            raise ValueError("the shared store keeps no readings")
        logged = [(seq, e.at, e.kind, e.room_id, e.data, e.building) for seq, e in events]
        rooms = [(room, orjson.Fragment(state)) for room, state in room_states]
        devices = [(device, room, orjson.Fragment(state)) for device, room, state in device_states]
        # One round trip for the batch's statements (psycopg's pipeline mode).
        with self._connection() as connection, connection.pipeline(), connection.transaction():
            self._write(connection, logged, rooms, devices, at, newer_only=False)

    def _write(
        self,
        connection: psycopg.Connection[Any],
        events: list[Any],
        rooms: list[Any],
        devices: list[Any],
        at: float,
        *,
        newer_only: bool,
    ) -> None:
        if events:
            parameters = {"shard": self.shard, "at": at, "events": orjson.dumps(events).decode()}
            connection.execute(INSERT_EVENTS, parameters)
            connection.execute(ENQUEUE_WEBHOOKS, parameters)
        if rooms:
            connection.execute(
                UPSERT_ROOMS,
                {
                    "shard": self.shard,
                    "at": at,
                    "rows": orjson.dumps(rooms).decode(),
                    "newer_only": newer_only,
                },
            )
        if devices:
            connection.execute(
                UPSERT_DEVICES,
                {
                    "shard": self.shard,
                    "at": at,
                    "rows": orjson.dumps(devices).decode(),
                    "newer_only": newer_only,
                },
            )

    def save_snapshot(self, documents: dict[str, Any], at: float) -> None:
        rows = [(self.shard, key, orjson.dumps(value).decode(), at) for key, value in documents.items()]
        with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO snapshot (shard, key, value, saved_at) VALUES (%s, %s, %s::jsonb, %s) "
                "ON CONFLICT (shard, key) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
                rows,
            )

    def prune(
        self,
        readings_before: float | None,
        events_before: float | None,
        progress: Callable[[], object] | None = None,
    ) -> tuple[int, int]:
        """Retention of this shard's events (and their alerts' lifecycles); no readings
        here. In transactions of PRUNE_CHUNK events, `progress()` after each: the first
        run over a large history is not one statement of minutes."""
        if events_before is None:
            return 0, 0
        events = 0
        while True:
            with self._connection() as connection, connection.transaction():
                deleted = connection.execute(
                    "DELETE FROM events WHERE shard = %s AND seq IN "
                    "(SELECT seq FROM events WHERE shard = %s AND at < %s LIMIT %s)",
                    (self.shard, self.shard, events_before, PRUNE_CHUNK),
                ).rowcount
                if deleted < PRUNE_CHUNK:
                    connection.execute(
                        "DELETE FROM alert_states WHERE shard = %s AND alert < "
                        "(SELECT coalesce(min(seq), -1) FROM events WHERE shard = %s)",
                        (self.shard, self.shard),
                    )
            events += deleted
            if progress is not None:
                progress()
            if deleted < PRUNE_CHUNK:
                return 0, events

    def catch_up(self, local: Store, building_of: BuildingOf = _no_building) -> tuple[int, int, int]:
        """Copies what the gateway's SQLite file (`local`) holds and this
        shard's rows here lack: events past the newest one here (and, see
        `_recover_events`, older ones of the file missing here), room and device states
        newer than the ones here, and the snapshot when this shard has none here.

        The file keeps no building of an event: `building_of(room, data)` gives it, so
        webhook subscriptions filtered by building get the events copied here as they
        would have got them live (an event whose building it cannot tell goes only to
        subscriptions without a building filter).

        The file commits first (see gateway/storage/open_stores.py), so after a crash
        between the two commits, or while PostgreSQL was away, this replays the
        difference; run again it changes nothing. Returns (events, room states,
        device states) copied."""
        head = self.last_event_seq()
        copied = self._recover_events(local, head, building_of)
        after = head
        while True:
            rows = local.events_after(after, 2**62, CATCH_UP_CHUNK)
            if not rows:
                break
            self._insert_events(rows, building_of)
            copied += len(rows)
            after = rows[-1][0]
        rooms = [(room, state, saved_at) for room, state, saved_at in local.room_states_saved()]
        devices = [
            (device, room, state, saved_at) for device, room, state, saved_at in local.device_states_saved()
        ]
        rooms_written = devices_written = 0
        with self._connection() as connection, connection.transaction():
            if rooms:
                rooms_written = connection.execute(
                    UPSERT_ROOMS,
                    {
                        "shard": self.shard,
                        "at": 0.0,
                        "rows": orjson.dumps([(r, orjson.Fragment(s), t) for r, s, t in rooms]).decode(),
                        "newer_only": True,
                    },
                ).rowcount
            if devices:
                devices_written = connection.execute(
                    UPSERT_DEVICES,
                    {
                        "shard": self.shard,
                        "at": 0.0,
                        "rows": orjson.dumps(
                            [(d, r, orjson.Fragment(s), t) for d, r, s, t in devices]
                        ).decode(),
                        "newer_only": True,
                    },
                ).rowcount
            found = connection.execute("SELECT 1 FROM snapshot WHERE shard = %s LIMIT 1", (self.shard,))
            if found.fetchone() is None:
                snapshot = local.load_snapshot()
                if snapshot:
                    with connection.cursor() as cursor:
                        cursor.executemany(
                            "INSERT INTO snapshot (shard, key, value, saved_at) "
                            "VALUES (%s, %s, %s::jsonb, 0) ON CONFLICT DO NOTHING",
                            [
                                (self.shard, key, orjson.dumps(value).decode())
                                for key, value in snapshot.items()
                            ],
                        )
        if copied or rooms_written or devices_written:
            log.info(
                "shared store caught up from the local file: events=%d room_states=%d device_states=%d",
                copied,
                rooms_written,
                devices_written,
            )
        return copied, rooms_written, devices_written

    def _recover_events(self, local: Store, head: int, building_of: BuildingOf) -> int:
        """Copies the file's events numbered at or below this shard's newest here (`head`)
        that are missing here, or here as other events: this shard ran on another host
        (a file of its own) while this file's newest events had not reached this store
        (PostgreSQL was away when this host's gateway died). Returns how many it copied.

        Walks down from the file's newest in chunks, comparing (number, time, kind,
        room), until a chunk agrees (the first one, in every other case) or it reaches
        the oldest event kept here (older ones were pruned). Missing ones are copied
        with their numbers (the other host's run, after an unclean stop, numbered far
        past them: gateway/storage/event_numbering.py). Ones whose number another
        event has here get new numbers past every number in use, in the file only:
        the copy past `head` that follows takes them, and a crash in between leaves
        them to the next start's."""
        if head == 0:
            return 0
        oldest = self._oldest_event_seq()
        copied = 0
        taken: list[int] = []
        top = head + 1
        while True:
            keys = [row for row in local.events_before(top, CATCH_UP_CHUNK) if row[0] >= oldest]
            if not keys:
                break
            here = self._event_keys([seq for seq, *_ in keys])
            missing = {seq for seq, *_ in keys if seq not in here}
            other = [seq for seq, *key in keys if seq in here and here[seq] != tuple(key)]
            if not missing and not other:
                break
            if missing:
                chunk = local.events_after(keys[-1][0] - 1, keys[0][0] + 1, CATCH_UP_CHUNK)
                self._insert_events([row for row in chunk if row[0] in missing], building_of)
                copied += len(missing)
            taken += other
            top = keys[-1][0]
        if copied or taken:
            numbers = {seq: n for n, seq in enumerate(sorted(taken), max(head, local.last_event_seq()) + 1)}
            if numbers:
                local.renumber_events(numbers)
            log.warning(
                "events of the local file the shared store lacked, numbered at or below its newest (%d): "
                "%d copied with their numbers, %d renumbered past it (their numbers were given to "
                "other events while this file was away)",
                head,
                copied,
                len(numbers),
            )
        return copied

    def _insert_events(self, rows: Sequence[Event], building_of: BuildingOf) -> None:
        logged = [(seq, at, kind, room, data, building_of(room, data)) for seq, at, kind, room, data in rows]
        parameters = {"shard": self.shard, "at": time.time(), "events": orjson.dumps(logged).decode()}
        with self._connection() as connection, connection.transaction():
            connection.execute(INSERT_EVENTS, parameters)
            connection.execute(ENQUEUE_WEBHOOKS, parameters)

    def _event_keys(self, seqs: list[int]) -> dict[int, tuple[float, str, str | None]]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT seq, at, kind, room FROM events WHERE shard = %s AND seq = ANY(%s)",
                (self.shard, seqs),
            ).fetchall()
        return {seq: (at, kind, room) for seq, at, kind, room in rows}

    def _oldest_event_seq(self) -> int:
        with self._connection() as connection:
            row = connection.execute("SELECT min(seq) FROM events WHERE shard = %s", (self.shard,)).fetchone()
        return int(row[0] or 0) if row is not None else 0

    # Reads (this shard's rows)

    def load_snapshot(self) -> dict[str, Any]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT key, value FROM snapshot WHERE shard = %s", (self.shard,)
            ).fetchall()
        return {key: orjson.loads(value) for key, value in rows}

    def snapshot_entry(self, key: str) -> Any:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT value FROM snapshot WHERE shard = %s AND key = %s", (self.shard, key)
            ).fetchone()
        return None if row is None else orjson.loads(row[0])

    def room_states(self) -> dict[str, Any]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT room, state FROM room_states WHERE shard = %s", (self.shard,)
            ).fetchall()
        return {room: orjson.loads(state) for room, state in rows}

    def device_states(self) -> dict[str, tuple[str, Any]]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT device, room, state FROM device_states WHERE shard = %s", (self.shard,)
            ).fetchall()
        return {device: (room, orjson.loads(state)) for device, room, state in rows}

    def last_event_seq(self) -> int:
        with self._connection() as connection:
            row = connection.execute("SELECT max(seq) FROM events WHERE shard = %s", (self.shard,)).fetchone()
        return int(row[0] or 0) if row is not None else 0

    def recent_events(self, limit: int) -> list[Event]:
        rows = self._events("ORDER BY seq DESC LIMIT %s", (limit,))
        return list(reversed(rows))

    def event(self, seq: int) -> Event | None:
        rows = self._events("AND seq = %s", (seq,))
        return rows[0] if rows else None

    def events_after(self, after: int, before: int, limit: int) -> list[Event]:
        return self._events("AND seq > %s AND seq < %s ORDER BY seq LIMIT %s", (after, before, limit))

    def _events(self, tail: str, parameters: tuple[Any, ...]) -> list[Event]:
        with self._connection() as connection:
            rows = connection.execute(
                f"SELECT seq, at, kind, room, data FROM events WHERE shard = %s {tail}",
                (self.shard, *parameters),
            ).fetchall()
        return [(seq, at, kind, room, orjson.loads(data)) for seq, at, kind, room, data in rows]

    def close(self) -> None:
        self._pool.close()
