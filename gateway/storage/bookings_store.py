"""Where bookings are kept: the `BookingStore` protocol and its SQL implementation.

The table lives in the gateway's SQLite file (created by the store's migration 5,
`BOOKINGS_MIGRATION`) or in the shared PostgreSQL (gateway/storage/postgres_store.py
runs the same text): one SQL text for both (gateway/storage/sql.py), no JSON
functions, `DOUBLE PRECISION` times (PostgreSQL's `REAL` is single precision). In
SQLite, bookings are read and written on a connection of their own: a booking write
never waits behind the history writer's lock, only (briefly, through SQLite's busy
timeout) behind its commits.

On a shared PostgreSQL the table is the campus's; a gateway loads (`active`) and
prunes only the bookings of its own rooms (`rooms`), so one shard never checks in,
releases or deletes another's.

`external_id` is the booking system's id, unique: a system that re-sends a booking
updates it instead of adding a second one. A calendar importer keys occurrences by
(UID, RECURRENCE-ID), e.g. `external_id = "<uid>/<recurrence-id>"`, and keeps the
UID in `series_id`, which also counts no-shows per recurring series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from gateway.storage.sql import SqliteConnection, SqlStore
from rules.bookings import ACTIVE, Booking, BookingStatus

BOOKINGS_MIGRATION = """
    CREATE TABLE bookings (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        start_at DOUBLE PRECISION NOT NULL,
        end_at DOUBLE PRECISION NOT NULL,
        title TEXT,
        organizer TEXT,
        external_id TEXT UNIQUE,
        series_id TEXT,
        status TEXT NOT NULL
            CHECK (status IN ('booked', 'checked_in', 'released', 'ended', 'cancelled')),
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        created_by TEXT,
        checked_in_at DOUBLE PRECISION,
        released_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        cancelled_at DOUBLE PRECISION
    );
    CREATE INDEX bookings_by_room ON bookings (room, start_at);
    CREATE INDEX bookings_by_start ON bookings (start_at);
    CREATE INDEX bookings_by_status ON bookings (status, end_at);
"""

_COLUMNS = (
    "id, room, start_at, end_at, title, organizer, external_id, series_id, status, created_at, "
    "updated_at, created_by, checked_in_at, released_at, ended_at, cancelled_at"
)
_ACTIVE_SQL = ", ".join(f"'{status.value}'" for status in sorted(ACTIVE))

NoShowGroup = Literal["organizer", "series"]


@dataclass(frozen=True, slots=True)
class BookingQuery:
    """A page of bookings: those overlapping [start, end) that match every filter
    given, ordered by start (then id)."""

    # None: every room; else only these (how a key scoped to buildings is applied).
    rooms: frozenset[str] | None = None
    room_id: str | None = None
    start: float | None = None
    end: float | None = None
    statuses: frozenset[BookingStatus] | None = None
    organizer: str | None = None
    external_id: str | None = None
    series_id: str | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class NoShowCount:
    # The organizer or series id; None for bookings without one.
    key: str | None
    # Bookings that are over or released (cancelled ones do not count).
    bookings: int
    no_shows: int


class BookingStore(Protocol):
    """What the gateway keeps bookings in (SQLite here; PostgreSQL for shared stores)."""

    def insert(self, booking: Booking) -> None: ...

    def update(self, bookings: Sequence[Booking]) -> None:
        """Writes each booking over the stored one with its id, in one transaction."""
        ...

    def save(self, new: Sequence[Booking], changed: Sequence[Booking]) -> None:
        """Inserts `new` and writes `changed` over the stored ones, in one transaction
        (a calendar import: all of it or nothing)."""
        ...

    def get(self, booking_id: str) -> Booking | None: ...

    def by_external_id(self, external_id: str) -> Booking | None: ...

    def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, Booking]:
        """The bookings with these external ids (those that exist), by external id."""
        ...

    def active(self) -> list[Booking]:
        """Every booking still holding its room (booked or checked in)."""
        ...

    def find(self, query: BookingQuery) -> list[Booking]: ...

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]:
        """Per organizer or series: bookings starting in [start, end) that are over, and
        how many of them were released as no-shows; most no-shows first."""
        ...

    def prune(self, before: float) -> int:
        """Retention: deletes bookings that ended before `before` and no longer hold their room."""
        ...

    def close(self) -> None: ...


class BookingStoreError(RuntimeError):
    pass


class SqlBookingStore:
    """Bookings on a SQL store (SQLite or PostgreSQL). `rooms`: those this gateway owns
    on a shared store (None: every room), the only ones `active` and `prune` see."""

    def __init__(self, store: SqlStore, rooms: frozenset[str] | None = None) -> None:
        self._store = store
        self._rooms = None if rooms is None else sorted(rooms)

    # Writes

    def insert(self, booking: Booking) -> None:
        with self._store.sql() as db:
            db.execute(f"INSERT INTO bookings ({_COLUMNS}) VALUES ({_PLACES})", _row(booking))

    def update(self, bookings: Sequence[Booking]) -> None:
        if not bookings:
            return
        rows = [(*_row(b)[1:], b.id) for b in bookings]
        with self._store.sql_transaction() as db:
            db.executemany(f"UPDATE bookings SET {_ASSIGNMENTS} WHERE id = ?", rows)

    def save(self, new: Sequence[Booking], changed: Sequence[Booking]) -> None:
        if not new and not changed:
            return
        with self._store.sql_transaction() as db:
            if new:
                db.executemany(
                    f"INSERT INTO bookings ({_COLUMNS}) VALUES ({_PLACES})", [_row(b) for b in new]
                )
            if changed:
                db.executemany(
                    f"UPDATE bookings SET {_ASSIGNMENTS} WHERE id = ?",
                    [(*_row(b)[1:], b.id) for b in changed],
                )

    def prune(self, before: float) -> int:
        condition = f"end_at < ? AND status NOT IN ({_ACTIVE_SQL})"
        deleted = 0
        with self._store.sql() as db:
            for rooms, args in self._scoped([before]):
                deleted += db.execute(f"DELETE FROM bookings WHERE {condition}{rooms}", args).rowcount
        return deleted

    # Reads

    def get(self, booking_id: str) -> Booking | None:
        return self._one("id = ?", booking_id)

    def by_external_id(self, external_id: str) -> Booking | None:
        return self._one("external_id = ?", external_id)

    def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, Booking]:
        found: dict[str, Booking] = {}
        unique = sorted(set(external_ids))
        # SQLite takes at most 32,766 parameters a statement (999 before 3.32).
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            for booking in self._select(f"external_id IN ({', '.join('?' * len(chunk))})", chunk):
                assert booking.external_id is not None
                found[booking.external_id] = booking
        return found

    def active(self) -> list[Booking]:
        found: list[Booking] = []
        for rooms, args in self._scoped([]):
            found += self._select(f"status IN ({_ACTIVE_SQL}){rooms}", args)
        return sorted(found, key=lambda b: (b.room_id, b.start))

    def find(self, query: BookingQuery) -> list[Booking]:
        where: list[str] = []
        args: list[Any] = []
        if query.rooms is not None:
            if not query.rooms:
                return []
            where.append(f"room IN ({', '.join('?' * len(query.rooms))})")
            args += sorted(query.rooms)
        for column, value in (
            ("room", query.room_id),
            ("organizer", query.organizer),
            ("external_id", query.external_id),
            ("series_id", query.series_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.end is not None:
            where.append("start_at < ?")
            args.append(query.end)
        if query.start is not None:
            where.append("end_at > ?")
            args.append(query.start)
        if query.statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            args += sorted(status.value for status in query.statuses)
        condition = " AND ".join(where) or "1 = 1"
        return self._select(
            f"{condition} ORDER BY start_at, id LIMIT ? OFFSET ?", (*args, query.limit, query.offset)
        )

    def no_shows(
        self, by: NoShowGroup, start: float, end: float, rooms: frozenset[str] | None
    ) -> list[NoShowCount]:
        column = "organizer" if by == "organizer" else "series_id"
        where = "start_at >= ? AND start_at < ? AND status IN ('released', 'ended')"
        args: list[Any] = [start, end]
        if rooms is not None:
            if not rooms:
                return []
            where += f" AND room IN ({', '.join('?' * len(rooms))})"
            args += sorted(rooms)
        with self._store.sql() as db:
            rows = db.execute(
                f"SELECT {column}, count(*), sum(CASE WHEN status = 'released' THEN 1 ELSE 0 END) "
                f"FROM bookings WHERE {where} GROUP BY {column} ORDER BY 3 DESC, 2 DESC, 1",
                args,
            ).fetchall()
        return [NoShowCount(key, total, int(no_shows)) for key, total, no_shows in rows]

    def close(self) -> None:
        pass  # the connections are the store's

    def _scoped(self, args: list[Any]) -> list[tuple[str, list[Any]]]:
        """(condition on the room, arguments) per chunk of this gateway's rooms; one
        without a condition when it owns every room."""
        if self._rooms is None:
            return [("", args)]
        return [
            (f" AND room IN ({', '.join('?' * len(chunk))})", [*args, *chunk])
            for chunk in (self._rooms[i : i + _CHUNK] for i in range(0, len(self._rooms), _CHUNK))
        ]

    def _one(self, condition: str, value: str) -> Booking | None:
        found = self._select(f"{condition} LIMIT 1", (value,))
        return found[0] if found else None

    def _select(self, tail: str, args: Sequence[Any]) -> list[Booking]:
        with self._store.sql() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM bookings WHERE {tail}", args).fetchall()
        return [_booking(row) for row in rows]


class SqliteBookingStore(SqlBookingStore):
    """Bookings in the gateway's SQLite file, on a connection of their own.

    The file must have been opened by `gateway.storage.sqlite_store.Store` first
    (which runs the migrations)."""

    def __init__(self, path: Path) -> None:
        self._connection = SqliteConnection(path)
        if not self._connection.has_table("bookings"):
            self._connection.close()
            raise BookingStoreError(
                f"{path} has no bookings table: open it with the Store first (migrations)"
            )
        super().__init__(self._connection)

    def close(self) -> None:
        self._connection.close()


_COLUMN_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))
_PLACES = ", ".join("?" * len(_COLUMN_NAMES))
_ASSIGNMENTS = ", ".join(f"{column} = ?" for column in _COLUMN_NAMES[1:])
# Parameters a statement at most (SQLite takes 32,766; PostgreSQL 65,535).
_CHUNK = 500


def _row(b: Booking) -> tuple[Any, ...]:
    return (
        b.id,
        b.room_id,
        b.start,
        b.end,
        b.title,
        b.organizer,
        b.external_id,
        b.series_id,
        b.status.value,
        b.created_at,
        b.updated_at,
        b.created_by,
        b.checked_in_at,
        b.released_at,
        b.ended_at,
        b.cancelled_at,
    )


def _booking(row: Sequence[Any]) -> Booking:
    (
        booking_id,
        room,
        start,
        end,
        title,
        organizer,
        external_id,
        series_id,
        status,
        created_at,
        updated_at,
        created_by,
        checked_in_at,
        released_at,
        ended_at,
        cancelled_at,
    ) = row
    return Booking(
        id=booking_id,
        room_id=room,
        start=start,
        end=end,
        title=title,
        organizer=organizer,
        external_id=external_id,
        series_id=series_id,
        status=BookingStatus(status),
        created_at=created_at,
        updated_at=updated_at,
        created_by=created_by,
        checked_in_at=checked_in_at,
        released_at=released_at,
        ended_at=ended_at,
        cancelled_at=cancelled_at,
    )
