"""What the reports read from the store: the SQL behind `gateway.reports`.

A report is read in one transaction (`ReportSource.read()`), on a connection of
its own: its readings, events and bookings are one consistent snapshot, and a
report over a month of a campus never waits for, nor holds up, the history
writer's lock (WAL lets it read between the writer's commits).

Readings are read room by room (a report holds one room's in memory at a time),
along the clustered key (room, metric, ts): each room's range of the window is a
key range, in time order, without a sort.
The readings committed but not merged yet (`readings_recent`, about a second's
worth) are read apart and put in their places, as `Store.readings` does.
Occupancy changes and commands come from the events by their time index.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import orjson

from gateway.storage.sql import SqlStore
from rules.reporting.energy import PowerStart
from rules.reporting.spans import Span

Point = tuple[float, float]
CACHE_KIB = 64 * 1024


@dataclass(frozen=True, slots=True)
class OccupancyRows:
    # The state the last change before the window set (None: no change before it).
    initial: str | None
    # (time, new state) of the changes within the window, in order.
    changes: list[tuple[float, str]]


class CommandRow(NamedTuple):
    at: float
    room: str
    device: str
    rule: str


@dataclass(frozen=True, slots=True)
class BookingRow:
    room: str
    start: float
    end: float
    status: str


class ReportRows(Protocol):
    """One consistent read of the store. `rooms`: the rooms asked about (others'
    rows are left out); times are epoch seconds, windows [start, end)."""

    def occupancy(self, rooms: Collection[str], start: float, end: float) -> dict[str, OccupancyRows]: ...

    def series(self, room: str, metric: str, start: float, end: float) -> list[Point]:
        """(ts, value) of the room's readings of `metric` from any device, by time."""
        ...

    def device_series(self, room: str, metric: str, start: float, end: float) -> dict[str, list[Point]]:
        """Per device, (ts, value) of the room's readings of `metric`, by time."""
        ...

    def series_during(self, room: str, metric: str, spans: Sequence[Span], hold: float) -> list[Point]:
        """(ts, value), by time, of the readings that say what the room's `metric` was
        during `spans` (sorted, disjoint): those within them, and the last one within
        `hold` before each (others may come along)."""
        ...

    def power_starts(self, room: str, start: float, end: float, hold: float) -> dict[str, list[PowerStart]]:
        """Per device, its power readings above 0 W in [start, end), each with the time of
        the device's next reading if that came within `hold` (rules.reporting.energy)."""
        ...

    def off_commands(self, rooms: Collection[str], start: float, end: float) -> list[CommandRow]:
        """First sends of commands turning a device off (`{"state": "OFF"}`), by time."""
        ...

    def bookings(
        self, rooms: Collection[str], start: float, end: float, longest: float
    ) -> dict[str, list[BookingRow]]:
        """Bookings overlapping the window that were not cancelled, by start (none is
        longer than `longest` seconds)."""
        ...


class ReportSource(Protocol):
    def read(self) -> AbstractContextManager[ReportRows]: ...


class SqliteReportSource:
    """Reads the gateway's SQLite file (opened and migrated by `Store` first).

    `bookings`: where the bookings are when not in the file (a shared PostgreSQL);
    read there with the same SQL, within the report's read but not in its snapshot."""

    def __init__(self, path: Path, bookings: SqlStore | None = None) -> None:
        self.path = path
        self._bookings = bookings

    @contextmanager
    def read(self) -> Iterator[ReportRows]:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA query_only=1")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            db.execute("BEGIN")
            try:
                yield SqliteReportRows(db, self._bookings)
            finally:
                db.execute("ROLLBACK")
        finally:
            db.close()


# One key range of the clustered key each: no sort.
_SERIES = (
    "SELECT ts, value FROM readings WHERE room = ? AND metric = ? AND ts >= ? AND ts < ? ORDER BY ts, device"
)
_DEVICE_SERIES = (
    "SELECT ts, device, value FROM readings "
    "WHERE room = ? AND metric = ? AND ts >= ? AND ts < ? ORDER BY ts, device"
)
# The readings within each span, and the last one within :hold before each: one key
# range a span, and one key lookup backwards.
_DURING = """
    SELECT r.ts, r.value FROM json_each(:spans) AS j JOIN readings AS r
        ON r.room = :room AND r.metric = :metric AND r.ts >= j.value ->> 0 AND r.ts < j.value ->> 1
    UNION
    SELECT r.ts, r.value FROM json_each(:spans) AS j JOIN readings AS r
        ON r.room = :room AND r.metric = :metric AND r.ts = (
            SELECT max(k.ts) FROM readings AS k WHERE k.room = :room AND k.metric = :metric
            AND k.ts < j.value ->> 0 AND k.ts >= (j.value ->> 0) - :hold)
    ORDER BY 1
"""
# Power above 0 W and when the same device spoke next (a key range forward from the
# reading, at most :hold long): lights that are off cost nothing to read.
_POWER_STARTS = """
    SELECT r.ts, r.device, r.value, (
        SELECT k.ts FROM readings AS k WHERE k.room = :room AND k.metric = 'power'
        AND k.ts > r.ts AND k.ts < r.ts + :hold AND k.device = r.device ORDER BY k.ts LIMIT 1)
    FROM readings AS r
    WHERE r.room = :room AND r.metric = 'power' AND r.ts >= :start AND r.ts < :end AND r.value <> 0
    ORDER BY r.ts, r.device
"""
# Bookings starting in the window (or up to the longest booking before it) that overlap it.
_BOOKINGS = (
    "SELECT room, start_at, end_at, status FROM bookings "
    "WHERE start_at >= ? AND start_at < ? AND end_at > ? AND status <> 'cancelled' "
    "ORDER BY start_at, id"
)
# As `readings_all` has them: each reading once, the first received, none `readings` holds.
_RECENT = (
    "SELECT room, ts, device, value, min(received_at) FROM readings_recent AS r "
    "WHERE metric = ? AND NOT EXISTS (SELECT 1 FROM readings AS k "
    "WHERE k.room = r.room AND k.metric = r.metric AND k.ts = r.ts AND k.device = r.device) "
    "GROUP BY room, ts, device ORDER BY room, ts, device"
)


class SqliteReportRows:
    def __init__(self, db: sqlite3.Connection, bookings: SqlStore | None = None) -> None:
        self._db = db
        self._bookings = bookings
        self._recent_cache: dict[str, dict[str, list[tuple[float, str, float]]]] = {}

    def occupancy(self, rooms: Collection[str], start: float, end: float) -> dict[str, OccupancyRows]:
        wanted = set(rooms)
        changes: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for room, at, new in self._db.execute(
            "SELECT room, at, data ->> '$.new' FROM events "
            "WHERE at >= ? AND at < ? AND kind = 'occupancy' ORDER BY at, seq",
            (start, end),
        ):
            if room in wanted:
                changes[room].append((at, new))
        # Occupancy events are logged as they happen, so sequence follows time: the
        # last change before the window is the room's last one numbered below the
        # first event of the window (an index range backwards from there).
        first = self._db.execute(
            "SELECT seq FROM events WHERE at >= ? ORDER BY at LIMIT 1", (start,)
        ).fetchone()
        bound = first[0] if first is not None else (1 << 62)
        before = (
            "SELECT data ->> '$.new' FROM events "
            "WHERE room = ? AND seq < ? AND kind = 'occupancy' AND at < ? ORDER BY seq DESC LIMIT 1"
        )
        found: dict[str, OccupancyRows] = {}
        for room in wanted:
            row = self._db.execute(before, (room, bound, start)).fetchone()
            found[room] = OccupancyRows(row[0] if row is not None else None, changes.get(room, []))
        return found

    def series(self, room: str, metric: str, start: float, end: float) -> list[Point]:
        points: list[Point] = self._db.execute(_SERIES, (room, metric, start, end)).fetchall()
        recent = [(ts, value) for ts, _, value in self._recent(metric, room) if start <= ts < end]
        if recent:
            points = sorted(points + recent, key=lambda point: point[0])
        return points

    def device_series(self, room: str, metric: str, start: float, end: float) -> dict[str, list[Point]]:
        rows = self._db.execute(_DEVICE_SERIES, (room, metric, start, end)).fetchall()
        recent = [row for row in self._recent(metric, room) if start <= row[0] < end]
        if recent:
            rows = sorted(rows + recent)
        names = {row[1] for row in rows}
        if len(names) == 1:
            return {names.pop(): [(ts, value) for ts, _, value in rows]}
        devices: dict[str, list[Point]] = defaultdict(list)
        for ts, device, value in rows:
            devices[device].append((ts, value))
        return dict(devices)

    def series_during(self, room: str, metric: str, spans: Sequence[Span], hold: float) -> list[Point]:
        if not spans:
            return []
        args = {"spans": orjson.dumps(spans).decode(), "room": room, "metric": metric, "hold": hold}
        points: list[Point] = self._db.execute(_DURING, args).fetchall()
        # Readings not merged yet are few: all of the room's come along (more readings
        # than needed only say more precisely what was held when).
        recent = [(ts, value) for ts, _, value in self._recent(metric, room)]
        if recent:
            points = sorted(set(points) | set(recent), key=lambda point: point[0])
        return points

    def power_starts(self, room: str, start: float, end: float, hold: float) -> dict[str, list[PowerStart]]:
        args = {"room": room, "start": start, "end": end, "hold": hold}
        rows = self._db.execute(_POWER_STARTS, args).fetchall()
        names = {row[1] for row in rows}
        devices: dict[str, list[PowerStart]] = defaultdict(list)
        if len(names) == 1:
            devices[names.pop()] = [(ts, watts, after) for ts, _, watts, after in rows]
        else:
            for ts, device, watts, after in rows:
                devices[device].append((ts, watts, after))
        recent = self._recent("power", room)
        if recent:
            self._add_recent_power(devices, recent, start, end, hold)
        return dict(devices)

    @staticmethod
    def _add_recent_power(
        devices: dict[str, list[PowerStart]],
        recent: list[tuple[float, str, float]],
        start: float,
        end: float,
        hold: float,
    ) -> None:
        """Power readings not merged yet: they end the steps before them, and the ones
        above 0 W start their own."""
        by_device: dict[str, list[Point]] = defaultdict(list)
        for ts, device, watts in recent:
            by_device[device].append((ts, watts))
        for device, points in by_device.items():
            times = [ts for ts, _ in points]
            starts = devices.get(device, [])
            merged: list[PowerStart] = []
            for ts, watts, after in starts:
                k = bisect_right(times, ts)
                if k < len(times) and times[k] < ts + hold and (after is None or times[k] < after):
                    after = times[k]
                merged.append((ts, watts, after))
            known = [ts for ts, _, _ in starts]
            for i, (ts, watts) in enumerate(points):
                if watts <= 0 or not start <= ts < end:
                    continue
                later = [
                    t for t in (*times[i + 1 : i + 2], *known[bisect_right(known, ts) :][:1]) if t < ts + hold
                ]
                merged.append((ts, watts, min(later) if later else None))
            devices[device] = sorted(merged)

    def _recent(self, metric: str, room: str) -> list[tuple[float, str, float]]:
        """The room's readings of `metric` committed but not merged into `readings` yet,
        each once, by time (all rooms' read once per metric and report)."""
        found = self._recent_cache.get(metric)
        if found is None:
            found = defaultdict(list)
            for r, ts, device, value, _ in self._db.execute(_RECENT, (metric,)):
                found[r].append((ts, device, value))
            self._recent_cache[metric] = found
        return found.get(room, [])

    def off_commands(self, rooms: Collection[str], start: float, end: float) -> list[CommandRow]:
        wanted = set(rooms)
        return [
            CommandRow(at, room, device, rule or "unknown")
            for room, at, device, rule in self._db.execute(
                "SELECT room, at, data ->> '$.device', data ->> '$.rule' FROM events "
                "WHERE at >= ? AND at < ? AND kind = 'command' AND data ->> '$.status' = 'sent' "
                "AND coalesce(data ->> '$.attempt', 1) = 1 AND data ->> '$.payload.state' = 'OFF' "
                "ORDER BY at, seq",
                (start, end),
            )
            if room in wanted and device is not None
        ]

    def bookings(
        self, rooms: Collection[str], start: float, end: float, longest: float
    ) -> dict[str, list[BookingRow]]:
        wanted = set(rooms)
        found: dict[str, list[BookingRow]] = defaultdict(list)
        parameters = (start - longest, end, start)
        if self._bookings is None:
            rows = self._db.execute(_BOOKINGS, parameters).fetchall()
        else:
            with self._bookings.sql() as db:
                rows = db.execute(_BOOKINGS, parameters).fetchall()
        for room, s, e, status in rows:
            if room in wanted:
                found[room].append(BookingRow(room, s, e, status))
        return dict(found)
