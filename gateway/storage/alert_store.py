"""Where each alert stands (acknowledged, resolved: who, when, why), in the gateway's SQLite store.

The table (`alert_states`) is made by migration 7 of gateway/storage/sqlite_store.py.
An alert is the `alert` event its rule or the actuator raised; its id is that event's
sequence number. The event itself never changes: `alert_states` holds one row per
alert someone acknowledged or resolved (none: still open). Each change is one
transaction that reads the row and writes it under the store's lock, so of two
operators resolving the same alert at once exactly one succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.storage.sqlite_store import Store

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
    def __init__(self, store: Store) -> None:
        self._store = store

    def all(self) -> dict[int, AlertLifecycle]:
        """Every alert acknowledged or resolved (kept while its event is: see `Store.prune`)."""
        with self._store.connection() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM alert_states").fetchall()
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
        with self._store.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(f"SELECT {_COLUMNS} FROM alert_states WHERE alert = ?", (alert,)).fetchone()
                before = AlertLifecycle(*row) if row is not None else AlertLifecycle(alert)
                after = change(before)
                if after is not None:
                    db.execute(
                        f"INSERT OR REPLACE INTO alert_states ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            after.alert,
                            after.acked_at,
                            after.acked_by,
                            after.ack_note,
                            after.resolved_at,
                            after.resolved_by,
                            after.resolve_note,
                        ),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return (before, False) if after is None else (after, True)
