"""Full garbage collections on a schedule of ours."""

from __future__ import annotations

import gc

from gateway.runtime.periodic import PeriodicThread

FULL_GC_INTERVAL = 300.0


class FullCollections:
    """Full garbage collections on a schedule instead of whenever CPython decides.

    Room states are replaced every few seconds, so they survive into the oldest
    generation and trigger CPython's full collections often; each one stalls every
    thread for 20-60 ms, which is event-to-actuation latency. A process that owns
    the interpreter (`officegw run`, the demo) turns automatic full collections off
    and runs one every few minutes here; young generations stay automatic.
    """

    def __init__(self, interval: float = FULL_GC_INTERVAL) -> None:
        self._loop = PeriodicThread("gc", interval, self._collect)

    def start(self) -> None:
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 1_000_000)
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _collect(self) -> None:
        gc.collect()
