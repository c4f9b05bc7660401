"""What a process that owns the interpreter tunes in it: full garbage collections on
a schedule of ours, and the GIL's switch interval."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

from gateway.runtime.periodic import PeriodicThread

FULL_GC_INTERVAL = 300.0
# The first full collection, which also moves what start-up built out of the
# collector's sight: this long after start, off the path to ready.
FIRST_COLLECTION_AFTER = 5.0


class FullCollections:
    """Full garbage collections on a schedule instead of whenever CPython decides.

    Room states are replaced every few seconds, so they survive into the oldest
    generation and trigger CPython's full collections often; each one stalls every
    thread for 20-60 ms, which is event-to-actuation latency. A process that owns
    the interpreter (`officegw run`, the demo) turns automatic full collections off
    and runs one every few minutes here; young generations stay automatic.

    The first one runs FIRST_COLLECTION_AFTER seconds after `start` and then
    freezes what survived (libraries, config, registry: what lives as long as the
    process), so that later full collections only walk what changes at run time
    (that took a 57 ms pause down to a few ms, benchmarks/actuation.py). It used to
    run in `Gateway.start`, where its 0.1-0.3 s delayed being ready; `officegw run`
    now starts up with the collector off altogether (`gc.disable()`), and `start`
    turns it back on.
    """

    def __init__(
        self,
        interval: float = FULL_GC_INTERVAL,
        first_after: float = FIRST_COLLECTION_AFTER,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._frozen = False
        self._last = monotonic()
        self._loop = PeriodicThread("gc", min(first_after, interval), self._tick)

    def start(self) -> None:
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 1_000_000)
        gc.enable()
        self._last = self._monotonic()
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _tick(self) -> None:
        if not self._frozen:
            gc.collect()
            gc.freeze()
            self._frozen = True
            self._last = self._monotonic()
        elif self._monotonic() - self._last >= self._interval:
            gc.collect()
            self._last = self._monotonic()


def prefer_latency(switch_interval: float) -> None:
    """Hands the GIL to a waiting thread after `switch_interval` seconds
    (`gateway.gil_switch_interval`; CPython's default, 5 ms, unless configured).

    The MQTT network thread sleeps in select() between messages; when a motion
    message wakes it while another thread runs Python (the history writer building
    a batch's rows, the room-state publisher rendering, a /metrics scrape), it waits
    for the GIL until that thread's interval ends. In isolation 1 ms cut that wait's
    p99 from ~20 to ~5 ms, but in benchmarks/actuation.py at 5,000 msgs/s it did
    not shorten the tail (the room-state scans and the history's merges were the
    larger causes), so the default stays CPython's; the knob is there to measure.
    """
    sys.setswitchinterval(switch_interval)
