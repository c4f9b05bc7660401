"""Time passing: vacancy timeouts, rule timers and retries, at a fixed interval."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.automation.runner import Automation
from gateway.clock import Clock
from gateway.live_state import LiveState
from gateway.runtime.periodic import PeriodicThread
from rules.room_model import RoomState


class Ticker:
    """Moves every room forward in time (vacancy timeouts, rule timers, retries) at a fixed interval."""

    def __init__(
        self,
        live: LiveState,
        clock: Clock,
        interval: float,
        automation: Automation,
        release_throttled: Callable[[], int] = lambda: 0,
        record_rooms: Callable[[list[RoomState]], None] = lambda rooms: None,
        after_tick: Callable[[float], object] = lambda now: None,
        forget_silent: Callable[[], object] = lambda: None,
    ) -> None:
        self._live = live
        self._release_throttled = release_throttled
        self._forget_silent = forget_silent
        self._record_rooms = record_rooms
        self._after_tick = after_tick
        self._clock = clock
        self._automation = automation
        self._loop = PeriodicThread("ticker", interval, self.tick)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def tick(self) -> None:
        # Before taking the live-state lock: ingest takes its own lock, then this one.
        self._release_throttled()
        self._forget_silent()
        now = self._clock.now()
        with self._live.lock:
            before = self._live.states()
            self._live.expire(now)
            self._automation.expired(before, now)
            slices = self._automation.take_readings()
        for chunk in slices:
            # The lock (and the GIL) go back to ingest between slices.
            time.sleep(0)
            with self._live.lock:
                self._automation.evaluate(chunk, now)
        with self._live.lock:
            self._automation.timers(now)
            # Rooms that time (or a device going silent) moved on are committed like
            # the ones readings change, so a restart resumes from exactly here.
            # Queued under the lock: a later change by ingest is queued after it.
            states = self._live.states()
            changed = [state for room_id, state in states.items() if before.get(room_id) is not state]
            if changed:
                self._record_rooms(changed)
        # Bookings (check-in, release), with the lock released: they read rooms' presence.
        self._after_tick(now)
