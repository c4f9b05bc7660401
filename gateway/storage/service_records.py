"""What the service report reads from the event log: commands sent, their
confirmations, and alerts with their lifecycle (one query each, by the
`events_by_kind` index: a window costs its own commands and alerts, not every event)."""

from __future__ import annotations

from typing import NamedTuple

from gateway.storage.sqlite_store import Store


class SentCommand(NamedTuple):
    """A command's first attempt (retries are the same command)."""

    at: float
    room: str | None
    device: str | None
    device_kind: str | None


class Confirmation(NamedTuple):
    """A device reporting the state a command asked for."""

    sent_at: float
    room: str | None
    device: str | None
    device_kind: str | None
    confirm_ms: float


class AlertRecord(NamedTuple):
    seq: int
    at: float
    room: str | None
    rule: str | None
    acked_at: float | None
    resolved_at: float | None


def sent_commands(store: Store, start: float, end: float) -> list[SentCommand]:
    """First attempts of the commands sent in [start, end)."""
    with store.connection() as db:
        rows = db.execute(
            "SELECT at, room, data ->> 'device', data ->> 'device_kind' FROM events "
            "WHERE kind = 'command' AND at >= ? AND at < ? "
            "AND data ->> 'status' = 'sent' AND data ->> 'attempt' = 1 ORDER BY at",
            (start, end),
        ).fetchall()
    return [SentCommand(*row) for row in rows]


def confirmations(store: Store, start: float, end: float, within: float) -> list[Confirmation]:
    """Confirmations of the commands first sent in [start, end); a confirmation comes at
    most `within` seconds after its command (the actuator gives up after that)."""
    with store.connection() as db:
        rows = db.execute(
            "SELECT at - (data ->> 'confirm_ms') / 1000.0 AS sent_at, room, data ->> 'device', "
            "data ->> 'device_kind', data ->> 'confirm_ms' FROM events "
            "WHERE kind = 'command' AND at >= ? AND at < ? "
            "AND data ->> 'status' = 'confirmed' AND data ->> 'confirm_ms' IS NOT NULL "
            "AND sent_at >= ? AND sent_at < ? ORDER BY at",
            (start, end + within, start, end),
        ).fetchall()
    return [Confirmation(*row) for row in rows]


def alerts(store: Store, start: float, end: float) -> list[AlertRecord]:
    """Alerts raised in [start, end) with when they were acknowledged and resolved (so far)."""
    with store.connection() as db:
        rows = db.execute(
            "SELECT e.seq, e.at, e.room, e.data ->> 'rule', s.acked_at, s.resolved_at "
            "FROM events AS e LEFT JOIN alert_states AS s ON s.alert = e.seq "
            "WHERE e.kind = 'alert' AND e.at >= ? AND e.at < ? ORDER BY e.seq",
            (start, end),
        ).fetchall()
    return [AlertRecord(*row) for row in rows]
