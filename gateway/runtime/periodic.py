"""One background loop for everything the gateway does on a schedule."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.logs import kv

log = logging.getLogger("officegw.runtime")


class PeriodicThread:
    """Runs `work` every `interval` seconds on a daemon thread until `stop`.

    A failing run is logged and the loop goes on: one bad tick must not end
    vacancy timeouts, snapshots or collections for the rest of the process.

    `wait(interval)`, when given, replaces the real-time sleep between runs (the
    ticker in device time waits for the devices' clock); `wake` then releases it
    when the thread is stopped.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        work: Callable[[], None],
        *,
        wait: Callable[[float], object] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._interval = interval
        self._work = work
        self._wait = wait
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"officegw-{name}", daemon=True)
        # time.monotonic() when the loop last came round (a run ended, or it started):
        # a loop stuck in a run stops moving it (gateway/runtime/service_watchdog.py).
        self.beat_at = time.monotonic()

    def start(self) -> None:
        self.beat_at = time.monotonic()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._wake is not None:
            self._wake()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _sleep(self) -> bool:
        """Waits for the next run; True when the thread is to stop."""
        if self._wait is None:
            return self._stop.wait(self._interval)
        self._wait(self._interval)
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._sleep():
            try:
                self._work()
            except Exception:
                log.exception(kv("periodic task failed", task=self._name))
            self.beat_at = time.monotonic()
