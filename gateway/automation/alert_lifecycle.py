"""Acknowledging and resolving alerts: each alert's lifecycle, in the store and in memory.

Every change is written through the store first (gateway/storage/alert_store.py
decides it in one transaction) and then kept here, so listing alerts with their
state costs no query. Read back from the store on start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gateway.automation.event_log import LoggedEvent
from gateway.storage.alert_store import AlertLifecycle, AlertStore


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert (its event), where it was raised and what people did about it."""

    event: LoggedEvent
    # None: an alert about no room (a webhook paused), which only keys without a
    # building scope see.
    building: str | None
    lifecycle: AlertLifecycle


class AlertLifecycles:
    def __init__(self, store: AlertStore) -> None:
        self._store = store
        self._known: dict[int, AlertLifecycle] = {}
        # Held across the store's write and the memory update, so that memory never
        # goes back to an older state than the store holds.
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            self._known = self._store.all()

    def of(self, alert: int) -> AlertLifecycle:
        return self._known.get(alert) or AlertLifecycle(alert)

    def acknowledge(self, alert: int, actor: str, note: str | None, at: float) -> tuple[AlertLifecycle, bool]:
        """Raises AlreadyResolved; see AlertStore.acknowledge."""
        with self._lock:
            lifecycle, changed = self._store.acknowledge(alert, actor, note, at)
            self._known[alert] = lifecycle
        return lifecycle, changed

    def resolve(self, alert: int, actor: str, note: str | None, at: float) -> AlertLifecycle:
        """Raises AlreadyResolved; see AlertStore.resolve."""
        with self._lock:
            lifecycle = self._store.resolve(alert, actor, note, at)
            self._known[alert] = lifecycle
        return lifecycle
