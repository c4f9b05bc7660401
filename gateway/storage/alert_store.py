"""Where each alert stands (acknowledged, resolved: who, when, why), in the gateway's store.

The table (`alert_states`) is made by migration 7 of gateway/storage/sqlite_store.py
(PostgreSQL: gateway/storage/postgres_store.py); the SQL here runs on both. On a
shared PostgreSQL each shard's alerts are its own rows (keyed by shard and the
event's sequence number).
An alert is the `alert` event its rule or the actuator raised; its id is that event's
sequence number. The event itself never changes: `alert_states` holds one row per
alert someone acknowledged or resolved (none: still open). Each change is one
transaction that locks the row (inserting it empty when there is none: the no-op
UPDATE takes PostgreSQL's row lock; SQLite's write lock is already held), reads it
and writes it, so of two operators resolving the same alert at once exactly one
succeeds, on either engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.storage.sql import SqlStore

AlertStateName = Literal["open", "acknowledged", "resolved"]

_COLUMNS = "alert, acked_at, acked_by, ack_note, resolved_at, resolved_by, resolve_note"


@dataclass(frozen=True, slots=True)
class AlertLifecycle:
    """What people did about one alert; all None while it is open."""

    alert: int
    acked_at: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    resolve_note: str | None = None

    @property
    def state(self) -> AlertStateName:
        if self.resolved_at is not None:
            return "resolved"
        return "acknowledged" if self.acked_at is not None else "open"


class AlreadyResolved(Exception):
    """The alert was resolved before: nothing more can happen to it."""

    def __init__(self, lifecycle: AlertLifecycle) -> None:
        super().__init__(f"alert {lifecycle.alert} is already resolved")
        self.lifecycle = lifecycle


class AlertStore:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def all(self) -> dict[int, AlertLifecycle]:
        """Every alert acknowledged or resolved (kept while its event is: see `Store.prune`)."""
        with self._store.sql() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM alert_states WHERE shard = ? AND "
                "(acked_at IS NOT NULL OR resolved_at IS NOT NULL)",
                (db.shard,),
            ).fetchall()
        return {row[0]: AlertLifecycle(*row) for row in rows}

    def acknowledge(self, alert: int, actor: str, note: str | None, at: float) -> tuple[AlertLifecycle, bool]:
        """Acknowledges an open alert; (its lifecycle, whether this call changed it: an
        alert acknowledged before keeps its first acknowledgement). Raises AlreadyResolved."""

        def change(before: AlertLifecycle) -> AlertLifecycle | None:
            if before.resolved_at is not None:
                raise AlreadyResolved(before)
            if before.acked_at is not None:
                return None
            return AlertLifecycle(alert, at, actor, note)

        return self._change(alert, change)

    def resolve(self, alert: int, actor: str, note: str | None, at: float) -> AlertLifecycle:
        """Resolves an alert, acknowledging it too when nobody had. Raises AlreadyResolved."""

        def change(before: AlertLifecycle) -> AlertLifecycle:
            if before.resolved_at is not None:
                raise AlreadyResolved(before)
            if before.acked_at is None:
                return AlertLifecycle(alert, at, actor, None, at, actor, note)
            return AlertLifecycle(alert, before.acked_at, before.acked_by, before.ack_note, at, actor, note)

        lifecycle, _ = self._change(alert, change)
        return lifecycle

    def _change(
        self, alert: int, change: Callable[[AlertLifecycle], AlertLifecycle | None]
    ) -> tuple[AlertLifecycle, bool]:
        with self._store.sql_transaction() as db:
            key = (db.shard, alert)
            db.execute("INSERT INTO alert_states (shard, alert) VALUES (?, ?) ON CONFLICT DO NOTHING", key)
            db.execute("UPDATE alert_states SET alert = alert WHERE shard = ? AND alert = ?", key)
            row = db.execute(
                f"SELECT {_COLUMNS} FROM alert_states WHERE shard = ? AND alert = ?", key
            ).fetchone()
            before = AlertLifecycle(*row)
            after = change(before)
            if after is not None:
                db.execute(
                    "UPDATE alert_states SET acked_at = ?, acked_by = ?, ack_note = ?, resolved_at = ?, "
                    "resolved_by = ?, resolve_note = ? WHERE shard = ? AND alert = ?",
                    (
                        after.acked_at,
                        after.acked_by,
                        after.ack_note,
                        after.resolved_at,
                        after.resolved_by,
                        after.resolve_note,
                        *key,
                    ),
                )
        return (before, False) if after is None else (after, True)
