"""The one source of time: real in production, manual in tests, the devices' own in
simulations (`clock.mode: device`)."""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to, so tests control every deadline."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


class DeviceClock:
    """Gateway time that follows the devices: the newest device time (`ts`) the gateway
    accepted. A simulator that runs a day in a minute, stamping its messages with
    simulated time, thereby runs the gateway's vacancy timeouts, rule timers, retries
    and bookings through the same day (`clock.mode: device`; never for a real site,
    where one device with a wrong clock would move everyone's time).

    Until the first device time the gateway has no time of its own: `started` is
    False, `now()` gives the system time (for log lines and start-up), and the ticker
    waits (time stands still). The first device time is taken as it is, however far
    from the system clock; later ones only ever move the clock forward.

    Written by the ingest thread (`follow`); read anywhere. `wait_until` lets the
    ticker sleep until device time reaches its next tick.
    """

    def __init__(self, before_first: Clock | None = None) -> None:
        self._before_first = before_first or SystemClock()
        self._newest: float | None = None
        self._moved = threading.Condition()
        # The earliest time a waiter wants to be woken at; `follow` takes the
        # condition's lock only when the clock reaches it (not once per message).
        self._wake_at = math.inf
        self._woken = False

    @property
    def started(self) -> bool:
        return self._newest is not None

    def now(self) -> float:
        newest = self._newest
        return self._before_first.now() if newest is None else newest

    def follow(self, ts: float) -> None:
        """A device time the gateway accepted; the clock moves to it if it is newer."""
        newest = self._newest
        if newest is not None and ts <= newest:
            return
        self._newest = ts
        if newest is None or ts >= self._wake_at:
            with self._moved:
                self._moved.notify_all()

    def wait_until(self, at: float | None, timeout: float) -> bool:
        """Blocks until device time reaches `at` (None: until there is a device time at
        all), `wake()` is called, or `timeout` real seconds pass. True when reached."""

        def reached() -> bool:
            newest = self._newest
            return self._woken or (newest is not None and (at is None or newest >= at))

        with self._moved:
            self._wake_at = -math.inf if at is None else at
            try:
                return self._moved.wait_for(reached, timeout) and not self._woken
            finally:
                self._wake_at = math.inf

    def wake(self) -> None:
        """Releases every `wait_until`, now and later (the ticker is stopping)."""
        with self._moved:
            self._woken = True
            self._moved.notify_all()
