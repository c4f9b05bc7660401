"""Event numbers are never given twice, not even across a crash.

An event is numbered when it happens, and live stream clients (and the in-memory
log `GET /v1/events` reads) get it at once; the file and the shared store get it
with the history writer's next commit. A gateway that dies in between has given
out numbers no store holds. And a run of the shard on another host (a standby with
a file of its own) cannot see the events its dead active kept only in its file
while PostgreSQL was away. Numbering on from the newest stored event would give
those numbers to other events, and a client resuming after one (`Last-Event-ID`,
`?after=`) would skip the new events that took them.

So each run notes where it ended, in the `event_numbering` table of the store that
keeps its events (one SQL text for both engines, gateway/storage/sql.py): at a clean
stop, the last number it gave out (`mark_clean_end`); while it runs, nothing
(`take_clean_end` clears the note at start, so a crash leaves none). A run that finds the previous one
stopped cleanly where the stores end numbers on from there; otherwise it leaves a
gap of NUMBERING_GAP numbers. Numbers always increase; they are not contiguous.
"""

from __future__ import annotations

from gateway.storage.sql import SqlStore

# More numbers than a gateway gives out before they are committed (its history
# queue is bounded) or in the few seconds its shard lock lets it run on without
# PostgreSQL (gateway/runtime/shard_lock.py). Events beyond it that the shared store
# lacks are still not lost: catch-up renumbers them (PostgresStore._recover_events).
NUMBERING_GAP = 1_000_000


def first_number_after(newest: int, clean_end: int | None) -> int:
    """The number after which a run numbers its events. `newest`: the newest event
    number its stores hold; `clean_end`: the last number the previous run gave out if
    it stopped cleanly, None if it did not."""
    if clean_end is not None and clean_end == newest:
        return newest
    return newest + NUMBERING_GAP


def take_clean_end(store: SqlStore, unrecorded: int | None = None) -> int | None:
    """The last event number the previous run gave out, if it stopped cleanly (None
    after a crash; `unrecorded` when no run was ever noted here, e.g. a gateway's
    first start with `storage.url`); marks this run as under way."""
    with store.sql_transaction() as db:
        row = db.execute("SELECT clean_end FROM event_numbering WHERE shard = ?", (db.shard,)).fetchone()
        db.execute(
            "INSERT INTO event_numbering (shard, clean_end) VALUES (?, NULL) "
            "ON CONFLICT (shard) DO UPDATE SET clean_end = NULL",
            (db.shard,),
        )
    if row is None:
        return unrecorded
    return None if row[0] is None else int(row[0])


def mark_clean_end(store: SqlStore, last: int) -> None:
    """Notes a clean stop, after which `last` was the last event number given out."""
    with store.sql_transaction() as db:
        db.execute(
            "INSERT INTO event_numbering (shard, clean_end) VALUES (?, ?) "
            "ON CONFLICT (shard) DO UPDATE SET clean_end = excluded.clean_end",
            (db.shard, last),
        )
