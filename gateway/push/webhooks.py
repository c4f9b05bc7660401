"""Webhook delivery: the outbox in the store, sent on a thread of its own.

Each subscription gets its events in order, one POST each, signed
(gateway/push/signing.py) and carrying the event's id (`officegw-event-id` and the
body's `id`), so a receiver can drop what it already has: delivery is at least once.
An event leaves the outbox only when the receiver answered 2xx; a failure keeps it
first in line and the subscription waits (doubling from `retry_min_delay` to
`retry_max_delay`) before the next try. A subscription that failed
`pause_after_failures` times in a row over at least `pause_after` seconds (or whose
receiver answered 410 Gone) is paused: `on_pause` raises an alert, the API shows
`status: paused`, and its outbox keeps filling until an admin resumes it.

Nothing here runs on the ingest path: the history writer commits events and their
outbox rows together and only wakes this thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from gateway.automation.event_log import EventKind, LoggedEvent
from gateway.config import WebhooksSection
from gateway.logs import kv
from gateway.push.delivery import Attempt, new_client, post, url_problem
from gateway.push.documents import event_id, event_json
from gateway.push.signing import SIGNATURE_HEADER, signature
from gateway.storage.sql import STORE_ERRORS
from gateway.storage.webhook_store import Target, Waiting, WebhookStore

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("officegw.webhooks")

# Events taken from one subscription's outbox before the next subscription's turn.
BATCH = 50
# With nothing due, look at the outbox this often anyway (commits wake the thread).
IDLE_POLL = 5.0
# How often (in attempts) a subscription's delivery log is trimmed to `deliveries_kept`.
TRIM_EVERY = 100

# (building, floor) of an event, from its room and data (see `Gateway._place`).
Place = Callable[[str | None, Mapping[str, Any]], tuple[str | None, str | None]]
# (subscription id, failures in a row, the last error)
PauseListener = Callable[[str, int, str], None]


@dataclass(slots=True)
class DispatchStats:
    delivered: int = 0
    failed: int = 0
    paused: int = 0


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        settings: WebhooksSection,
        *,
        gateway_id: str,
        place: Place,
        on_pause: PauseListener,
        clock: Callable[[], float],
        client: httpx.Client | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._gateway_id = gateway_id
        self._place = place
        self._on_pause = on_pause
        self._clock = clock
        # Made at the first delivery (its TLS setup is tens of ms of a start).
        self._client = client
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="officegw-webhooks", daemon=True)
        self._attempts = 0
        self._store_error: str | None = None
        self.stats = DispatchStats()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something may be waiting now (events committed, a subscription resumed)."""
        self._wake.set()

    def stop(self, timeout: float = 1.0) -> None:
        # A POST in flight finishes on its own (it is bounded by `timeout`); its event
        # stays in the outbox unless its success was recorded, and goes again next start.
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive() and self._client is not None:
            self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_once()
                wait = 0.0 if busy else self._idle_wait()
            except STORE_ERRORS as exc:
                # The store is failing (disk full) or closing: try again later.
                if str(exc) != self._store_error:
                    log.warning(kv("webhook outbox unreadable", error=str(exc)))
                self._store_error = str(exc)
                wait = IDLE_POLL
            else:
                self._store_error = None
            if wait > 0:
                self._wake.wait(wait)

    def _idle_wait(self) -> float:
        due = self._store.next_due()
        if due is None:
            return IDLE_POLL
        return min(IDLE_POLL, max(0.0, due - self._clock()))

    def run_once(self) -> bool:
        """One round over every subscription that is due; True if it attempted anything."""
        attempted = False
        for target in self._store.targets_due(self._clock()):
            failures, failing_since = target.failures, target.failing_since
            for waiting in self._store.waiting(target.id, BATCH):
                if self._stop.is_set():
                    return attempted
                attempted = True
                error = self._deliver(target, waiting, failures, failing_since)
                if error is not None:
                    break
                failures, failing_since = 0, None
        return attempted

    def _deliver(
        self, target: Target, waiting: Waiting, failures: int, failing_since: float | None
    ) -> str | None:
        """One attempt at the subscription's first waiting event; the error, or None."""
        attempt = waiting.attempts + 1
        self._attempts += 1
        if self._attempts % TRIM_EVERY == 0:
            self._store.trim_deliveries(target.id, self._settings.deliveries_kept)
        if waiting.kind is None or waiting.at is None:
            # Deleted by retention while it waited (a subscription paused for months).
            self._store.delivered(target.id, waiting.seq, attempt, self._clock(), None, 0.0)
            return None
        kind = cast(EventKind, waiting.kind)
        event = LoggedEvent(waiting.seq, waiting.at, kind, waiting.room_id, waiting.data)
        building, floor = self._place(waiting.room_id, waiting.data)
        body = event_json(self._gateway_id, event, building, floor)
        sent_at = self._clock()
        headers = {
            "content-type": "application/json",
            "officegw-event-id": event_id(self._gateway_id, waiting.seq),
            "officegw-event-kind": waiting.kind,
            "officegw-delivery-attempt": str(attempt),
            SIGNATURE_HEADER: signature(target.secret, body, int(sent_at)),
        }
        # The allowed hosts may have changed since the subscription was made.
        refused = url_problem(target.url, self._settings.allowed_hosts)
        if refused is not None:
            result = Attempt(None, f"not sent: {refused}", 0.0)
        else:
            if self._client is None:
                self._client = new_client(self._settings.timeout)
            result = post(self._client, target.url, body, headers, self._settings.timeout)
        done = self._clock()
        if result.ok:
            self._store.delivered(target.id, waiting.seq, attempt, done, result.status, result.duration)
            self.stats.delivered += 1
            return None
        error = result.error or "failed"
        failures += 1
        failing_for = done - (failing_since if failing_since is not None else sent_at)
        s = self._settings
        pause = result.status == 410 or (failures >= s.pause_after_failures and failing_for >= s.pause_after)
        delay = min(s.retry_max_delay, s.retry_min_delay * 2 ** min(failures - 1, 30))
        self._store.failed(
            target.id,
            waiting.seq,
            attempt,
            done,
            result.status,
            error,
            result.duration,
            retry_at=done + delay,
            pause=pause,
        )
        self.stats.failed += 1
        if failures == 1 or pause:
            log.warning(
                kv(
                    "webhook delivery failed",
                    subscription=target.id,
                    seq=waiting.seq,
                    error=error,
                    failures=failures,
                    paused=pause,
                )
            )
        if pause:
            self.stats.paused += 1
            self._on_pause(target.id, failures, error)
        return error
