"""The state snapshot: what the gateway needs to pick up where it left off,
besides the room states (which the history writer commits with the readings).

Rule memory, manual overrides and auto-registered rooms are saved to the store
every few seconds and on shutdown, and restored before the broker connection
opens; the first tick after a restart then catches up on every deadline that
passed while the gateway was down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.logs import kv
from gateway.runtime.periodic import PeriodicThread
from gateway.storage.open_stores import StateStore
from gateway.storage.sql import STORE_ERRORS

log = logging.getLogger("officegw.snapshot")


class Snapshotter:
    """Saves `capture()` every `interval` seconds in the background, and once more on stop."""

    def __init__(self, store: StateStore, capture: Callable[[], dict[str, Any]], interval: float) -> None:
        self._store = store
        self._capture = capture
        self._interval = interval
        self._loop = PeriodicThread("snapshot", interval, self.save)
        self.failures = 0

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        self.save()

    def save(self) -> None:
        try:
            self._store.save_snapshot(self._capture(), time.time())
        except STORE_ERRORS as exc:
            # Live state keeps being served; the next attempt may succeed (disk freed).
            self.failures += 1
            log.error(kv("snapshot failed", error=str(exc)))
