"""Time passing: vacancy timeouts, rule timers and retries, at a fixed interval (of real
time, or of the devices' time with `clock.mode: device`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.automation.runner import Automation
from gateway.clock import Clock, DeviceClock
from gateway.live_state import LiveState
from gateway.runtime.periodic import PeriodicThread
from rules.room_model import RoomState


class Ticker:
    """Moves every room forward in time (vacancy timeouts, rule timers, retries) at a fixed interval.

    With a `DeviceClock` the interval is one of device time: a simulator running a day
    in a minute gets its ticks as often, in simulated time, as a real site gets them in
    real time (and at least once a real interval, for throttled messages and bookings,
    when device time stands still). Before the first device time there is no time to
    move to, and nothing ticks.
    """

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
        device_clock: DeviceClock | None = None,
        on_ticked: Callable[[float], object] = lambda now: None,
    ) -> None:
        self._live = live
        self._release_throttled = release_throttled
        self._forget_silent = forget_silent
        self._record_rooms = record_rooms
        self._after_tick = after_tick
        self._clock = clock
        self._automation = automation
        self._device_clock = device_clock
        self._on_ticked = on_ticked
        # The clock's time at the start of the last tick that ran to its end (bookings
        # included): a simulator waits for it to pass what it published.
        self.ticked_at: float | None = None
        if device_clock is None:
            self._loop = PeriodicThread("ticker", interval, self.tick)
        else:
            work, wait = self._tick_in_device_time, self._wait_device_time
            self._loop = PeriodicThread("ticker", interval, work, wait=wait, wake=device_clock.wake)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    @property
    def beat_at(self) -> float:
        """time.monotonic() when the ticker's loop last came round."""
        return self._loop.beat_at

    def _wait_device_time(self, interval: float) -> None:
        assert self._device_clock is not None
        last = self.ticked_at
        self._device_clock.wait_until(None if last is None else last + interval, interval)

    def _tick_in_device_time(self) -> None:
        assert self._device_clock is not None
        if self._device_clock.started:
            self.tick()

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
        self.ticked_at = now
        self._on_ticked(now)
