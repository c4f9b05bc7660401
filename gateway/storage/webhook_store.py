"""Webhook subscriptions, their outbox and their delivery log, in the gateway's store.

The SQL here runs on SQLite and PostgreSQL alike (gateway/storage/sql.py). The outbox
is filled by the store's `commit`, in the transaction that commits the events
(`ENQUEUE_WEBHOOKS`): an event is either committed and waiting for every matching
subscription, or neither. On a shared PostgreSQL the subscriptions are the campus's,
and each shard's outbox rows are its own (keyed by shard and event): every shard's
dispatcher delivers its own events, and they share a subscription's back-off.

The dispatcher (gateway/push/webhooks.py) takes a subscription's oldest waiting
events, and records each attempt here: a delivered event leaves the outbox in the
same transaction that logs it.

Secrets are kept in the store in the clear (they sign deliveries); they are read only
by `targets_due` and never leave in a `Subscription`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway.storage.sql import Sql, SqlStore

Status = Literal["active", "paused"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription as the API shows it: everything but the secret."""

    id: str
    url: str
    kinds: tuple[str, ...]
    buildings: tuple[str, ...]
    created_at: float
    created_by: str
    status: Status
    paused_at: float | None
    pause_reason: str | None
    # Failed attempts in a row, and since when (None: the last attempt succeeded).
    failures: int
    failing_since: float | None
    next_attempt_at: float
    last_success_at: float | None
    last_failure_at: float | None
    last_error: str | None
    delivered: int
    # Events in the outbox, waiting to be delivered.
    pending: int


@dataclass(frozen=True, slots=True)
class Target:
    """What the dispatcher needs to deliver to a subscription."""

    id: str
    url: str
    secret: str
    failures: int
    failing_since: float | None


@dataclass(frozen=True, slots=True)
class Waiting:
    """An event in a subscription's outbox; `kind` is None when the event itself is gone
    (deleted by retention before it could be delivered)."""

    seq: int
    attempts: int
    at: float | None
    kind: str | None
    room_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt, as logged."""

    id: int
    seq: int
    attempt: int
    at: float
    outcome: Literal["delivered", "failed", "expired"]
    status: int | None
    error: str | None
    duration: float


_COLUMNS = (
    "s.id, s.url, s.kinds, s.buildings, s.created_at, s.created_by, s.status, s.paused_at, "
    "s.pause_reason, s.failures, s.failing_since, s.next_attempt_at, s.last_success_at, "
    "s.last_failure_at, s.last_error, s.delivered, "
    "(SELECT count(*) FROM webhook_outbox AS o WHERE o.subscription = s.id AND o.shard = ?)"
)

# Subscriptions are listed as they were created: SQLite's rowid; PostgreSQL's
# identity column (it has no rowid).
_CREATED_ORDER = {"sqlite": "s.rowid", "postgresql": "s.created_order"}


def _subscription(row: tuple[Any, ...]) -> Subscription:
    (id_, url, kinds, buildings, *rest) = row
    return Subscription(id_, url, tuple(orjson.loads(kinds)), tuple(orjson.loads(buildings)), *rest)


class WebhookStore:
    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # Subscriptions (the API)

    def create(
        self,
        url: str,
        kinds: list[str],
        buildings: list[str],
        secret: str,
        *,
        created_by: str,
        at: float,
    ) -> Subscription:
        subscription_id = f"wh_{secrets.token_hex(8)}"
        with self._store.sql() as db:
            db.execute(
                "INSERT INTO webhook_subscriptions "
                "(id, url, kinds, buildings, secret, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription_id,
                    url,
                    orjson.dumps(sorted(set(kinds))).decode(),
                    orjson.dumps(sorted(set(buildings))).decode(),
                    secret,
                    at,
                    created_by,
                ),
            )
        created = self.get(subscription_id)
        assert created is not None
        return created

    def get(self, subscription_id: str) -> Subscription | None:
        with self._store.sql() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM webhook_subscriptions AS s WHERE s.id = ?",
                (db.shard, subscription_id),
            ).fetchone()
        return None if row is None else _subscription(row)

    def all(self) -> list[Subscription]:
        with self._store.sql() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM webhook_subscriptions AS s ORDER BY {_CREATED_ORDER[db.dialect]}",
                (db.shard,),
            ).fetchall()
        return [_subscription(row) for row in rows]

    def delete(self, subscription_id: str) -> bool:
        with self._store.sql_transaction() as db:
            found = db.execute("DELETE FROM webhook_subscriptions WHERE id = ?", (subscription_id,)).rowcount
            db.execute("DELETE FROM webhook_outbox WHERE subscription = ?", (subscription_id,))
            db.execute("DELETE FROM webhook_deliveries WHERE subscription = ?", (subscription_id,))
        return found > 0

    def resume(self, subscription_id: str) -> Subscription | None:
        """A paused subscription delivers again, starting with what waited meanwhile."""
        with self._store.sql() as db:
            db.execute(
                "UPDATE webhook_subscriptions SET status = 'active', paused_at = NULL, pause_reason = NULL, "
                "failures = 0, failing_since = NULL, next_attempt_at = 0 WHERE id = ?",
                (subscription_id,),
            )
        return self.get(subscription_id)

    def deliveries(self, subscription_id: str, limit: int) -> list[Delivery]:
        """The newest attempts first."""
        with self._store.sql() as db:
            rows = db.execute(
                "SELECT id, seq, attempt, at, outcome, status, error, duration FROM webhook_deliveries "
                "WHERE subscription = ? AND shard = ? ORDER BY id DESC LIMIT ?",
                (subscription_id, db.shard, limit),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def counts(self) -> tuple[int, int, int]:
        """(active subscriptions, paused subscriptions, events waiting in all outboxes)."""
        with self._store.sql() as db:
            active, paused = db.execute(
                "SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'paused') "
                "FROM webhook_subscriptions"
            ).fetchone()
            (waiting,) = db.execute(
                "SELECT count(*) FROM webhook_outbox WHERE shard = ?", (db.shard,)
            ).fetchone()
        return int(active), int(paused), int(waiting)

    # Delivery (the dispatcher's thread)

    def targets_due(self, now: float) -> list[Target]:
        """Active subscriptions with events waiting whose back-off is over."""
        with self._store.sql() as db:
            rows = db.execute(
                "SELECT id, url, secret, failures, failing_since FROM webhook_subscriptions AS s "
                "WHERE status = 'active' AND next_attempt_at <= ? "
                "AND EXISTS (SELECT 1 FROM webhook_outbox AS o WHERE o.subscription = s.id AND o.shard = ?) "
                "ORDER BY next_attempt_at, id",
                (now, db.shard),
            ).fetchall()
        return [Target(*row) for row in rows]

    def next_due(self) -> float | None:
        """When the earliest active subscription with events waiting may be tried again."""
        with self._store.sql() as db:
            (due,) = db.execute(
                "SELECT min(next_attempt_at) FROM webhook_subscriptions AS s WHERE status = 'active' "
                "AND EXISTS (SELECT 1 FROM webhook_outbox AS o WHERE o.subscription = s.id AND o.shard = ?)",
                (db.shard,),
            ).fetchone()
        return None if due is None else float(due)

    def waiting(self, subscription_id: str, limit: int) -> list[Waiting]:
        """The subscription's oldest waiting events, in event order."""
        with self._store.sql() as db:
            rows = db.execute(
                "SELECT o.seq, o.attempts, e.at, e.kind, e.room, e.data FROM webhook_outbox AS o "
                "LEFT JOIN events AS e ON e.shard = o.shard AND e.seq = o.seq "
                "WHERE o.subscription = ? AND o.shard = ? ORDER BY o.seq LIMIT ?",
                (subscription_id, db.shard, limit),
            ).fetchall()
        return [
            Waiting(seq, attempts, at, kind, room, orjson.loads(data) if data is not None else {})
            for seq, attempts, at, kind, room, data in rows
        ]

    def delivered(
        self, subscription_id: str, seq: int, attempt: int, at: float, status: int | None, duration: float
    ) -> None:
        """The event reached the receiver (or is gone, `status` None): out of the outbox, logged."""
        outcome = "delivered" if status is not None else "expired"
        with self._store.sql_transaction() as db:
            self._run(
                db,
                (
                    "DELETE FROM webhook_outbox WHERE subscription = ? AND shard = ? AND seq = ?",
                    (subscription_id, db.shard, seq),
                ),
                self._log(db.shard, subscription_id, seq, attempt, at, outcome, status, None, duration),
                (
                    "UPDATE webhook_subscriptions SET failures = 0, failing_since = NULL, "
                    "next_attempt_at = 0, last_success_at = ?, delivered = delivered + ? WHERE id = ?",
                    (at, int(status is not None), subscription_id),
                ),
            )

    def failed(
        self,
        subscription_id: str,
        seq: int,
        attempt: int,
        at: float,
        status: int | None,
        error: str,
        duration: float,
        *,
        retry_at: float,
        pause: bool,
    ) -> None:
        """The attempt failed: the event stays first in the outbox; the subscription waits
        until `retry_at`, or is paused."""
        with self._store.sql_transaction() as db:
            self._run(
                db,
                (
                    "UPDATE webhook_outbox SET attempts = attempts + 1 "
                    "WHERE subscription = ? AND shard = ? AND seq = ?",
                    (subscription_id, db.shard, seq),
                ),
                self._log(db.shard, subscription_id, seq, attempt, at, "failed", status, error, duration),
                (
                    "UPDATE webhook_subscriptions SET failures = failures + 1, "
                    "failing_since = coalesce(failing_since, ?), next_attempt_at = ?, last_failure_at = ?, "
                    "last_error = ?, status = CASE WHEN ? THEN 'paused' ELSE status END, "
                    "paused_at = CASE WHEN ? THEN ? ELSE paused_at END, "
                    "pause_reason = CASE WHEN ? THEN ? ELSE pause_reason END WHERE id = ?",
                    (at, retry_at, at, error, pause, pause, at, pause, error, subscription_id),
                ),
            )

    def trim_deliveries(self, subscription_id: str, keep: int) -> None:
        """Keeps the newest `keep` attempts of the subscription's log."""
        with self._store.sql() as db:
            db.execute(
                "DELETE FROM webhook_deliveries WHERE subscription = ? AND shard = ? AND id <= ("
                "SELECT id FROM webhook_deliveries WHERE subscription = ? AND shard = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (subscription_id, db.shard, subscription_id, db.shard, keep),
            )

    @staticmethod
    def _log(
        shard: str,
        subscription_id: str,
        seq: int,
        attempt: int,
        at: float,
        outcome: str,
        status: int | None,
        error: str | None,
        duration: float,
    ) -> tuple[str, tuple[Any, ...]]:
        return (
            "INSERT INTO webhook_deliveries (shard, subscription, seq, attempt, at, outcome, status, "
            "error, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (shard, subscription_id, seq, attempt, at, outcome, status, error, duration),
        )

    @staticmethod
    def _run(db: Sql, *statements: tuple[str, tuple[Any, ...]]) -> None:
        for sql, parameters in statements:
            db.execute(sql, parameters)
