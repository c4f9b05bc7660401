"""Whether this process is its shard's active gateway or a standby, and how its
takeover went: read by /metrics and /readyz (of the gateway, and of the small app
a standby serves while it waits)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ShardRole:
    """Written by the CLI (waiting, lock taken) and the gateway (broker session
    resumed); read at scrape time from the server's threads."""

    def __init__(
        self,
        shard: str,
        lock_key: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.shard = shard
        self.lock_key = lock_key
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._asked_at = monotonic()
        self._waited: float | None = None  # None while waiting for the lock
        self._taken_at: float | None = None  # monotonic
        self._active_since: float | None = None  # wall clock, for the metric
        self._resumed_after: float | None = None

    @property
    def active(self) -> bool:
        return self._taken_at is not None

    def took_lock(self) -> float:
        """The lock is ours: returns how long this process waited for it."""
        with self._lock:
            self._taken_at = self._monotonic()
            self._active_since = self._wall()
            self._waited = self._taken_at - self._asked_at
            return self._waited

    def session_resumed(self) -> float | None:
        """The first broker connection after taking the lock: returns the seconds
        from lock to session (None on later reconnects, or before the lock)."""
        with self._lock:
            if self._taken_at is None or self._resumed_after is not None:
                return None
            self._resumed_after = self._monotonic() - self._taken_at
            return self._resumed_after

    def waited(self) -> float:
        """Seconds waited for the lock: so far while waiting, in all once taken."""
        with self._lock:
            return self._waited if self._waited is not None else self._monotonic() - self._asked_at

    @property
    def active_since(self) -> float | None:
        return self._active_since

    @property
    def resumed_after(self) -> float | None:
        return self._resumed_after


class ShardCollector(Collector):
    def __init__(self, role: ShardRole) -> None:
        self._role = role

    def collect(self) -> Iterator[GaugeMetricFamily]:
        role = self._role
        labels = ["shard"]
        active = GaugeMetricFamily(
            "officegw_shard_active",
            "1: this process holds its shard's lock and ingests; 0: a standby waiting for it",
            labels=labels,
        )
        active.add_metric([role.shard], 1.0 if role.active else 0.0)
        yield active
        waited = GaugeMetricFamily(
            "officegw_shard_lock_wait_seconds",
            "Seconds this process waited for its shard's lock (so far, while a standby)",
            labels=labels,
        )
        waited.add_metric([role.shard], role.waited())
        yield waited
        since = role.active_since
        if since is not None:
            taken = GaugeMetricFamily(
                "officegw_shard_active_since_seconds",
                "Unix time this process took its shard's lock",
                labels=labels,
            )
            taken.add_metric([role.shard], since)
            yield taken
        resumed = role.resumed_after
        if resumed is not None:
            takeover = GaugeMetricFamily(
                "officegw_shard_takeover_seconds",
                "Seconds from taking the shard's lock to the broker session resumed (connected)",
                labels=labels,
            )
            takeover.add_metric([role.shard], resumed)
            yield takeover
