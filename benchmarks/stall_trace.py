"""`officegw` with a timeline of what can hold up a command, for benchmarks/actuation.py.

    python benchmarks/stall_trace.py TRACE.json run --config officegw.yaml

runs the gateway exactly as `python -m gateway.cli` does, and on exit writes to
TRACE.json what it did when (perf_counter seconds, the same clock as the
benchmark's processes on Linux: CLOCK_MONOTONIC):

- `probe_in` / `command_out`: when the network thread took each probe room's
  message, and when the command for that room's light was handed to the transport;
- `gc`: every garbage collection of 0.2 ms or more (with its generation);
- `commit`, `merge`, `ack`: the history writer's transactions, its merges into the
  series, and when it sent a batch's acknowledgements (the broker then sends more);
- `tick`, `room_states`: the ticker's rounds and the room-state publisher's scans;
- `admit_wait`: the network thread held at the back-pressure bound;
- `slow_handle`: one message taking 1 ms or more in the pipeline (its topic);
- `handled`: when the pipeline began on each message (how many a probe waited behind).

Spans are (start, end, CPU seconds of the thread meanwhile, ...): on a busy
machine wall time stretches while CPU time does not, which tells a GC pause or a
commit that worked long from one that waited for a core or the GIL.

Wrapping methods costs a few hundred nanoseconds a call; the benchmark compares
with the raw round trip measured without it, so that is in the gateway's figure.
"""

from __future__ import annotations

import atexit
import gc
import json
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GC_MIN_S = 0.0002
SLOW_HANDLE_S = 0.001
ADMIT_MIN_S = 0.0002

Trace = dict[str, list[Any]]


def _spans(trace: Trace, owner: Any, method: str, kind: str, min_s: float = 0.0) -> None:
    """Records (start, end, CPU seconds of its thread meanwhile) of every call of
    owner.method lasting min_s or more. Wall time much longer than CPU time is time
    spent waiting: for the GIL, a lock, the disk, or a core on a busy machine."""
    original: Callable[..., Any] = getattr(owner, method)
    spans = trace.setdefault(kind, [])
    clock, cpu = time.perf_counter, time.thread_time

    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu_started = clock(), cpu()
        try:
            return original(*args, **kwargs)
        finally:
            ended = clock()
            if ended - started >= min_s:
                spans.append((started, ended, cpu() - cpu_started))

    setattr(owner, method, timed)


def install(trace: Trace) -> None:
    from gateway.ingest.backpressure import IngestBacklog
    from gateway.ingest.pipeline import IngestPipeline
    from gateway.mqtt.paho_transport import PahoTransport
    from gateway.mqtt.transport import InboundMessage
    from gateway.runtime.room_state_publisher import RoomStatePublisher
    from gateway.runtime.ticker import Ticker
    from gateway.storage.history_writer import HistoryWriter

    clock = time.perf_counter
    gc_spans = trace.setdefault("gc", [])
    gc_started = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0], gc_started[1] = clock(), time.thread_time()
        else:
            ended = clock()
            if ended - gc_started[0] >= GC_MIN_S:
                cpu = time.thread_time() - gc_started[1]
                gc_spans.append((gc_started[0], ended, cpu, info["generation"]))

    gc.callbacks.append(on_gc)

    _spans(trace, HistoryWriter, "_commit", "commit")
    _spans(trace, HistoryWriter, "_merge", "merge")
    _spans(trace, Ticker, "tick", "tick")
    _spans(trace, RoomStatePublisher, "scan", "room_states")
    _spans(trace, IngestBacklog, "admit", "admit_wait", ADMIT_MIN_S)

    acks = trace.setdefault("ack", [])
    acknowledge = HistoryWriter._acknowledge

    def acknowledged(self: HistoryWriter, batch: list[Any]) -> None:
        acks.append((clock(), len(batch)))
        acknowledge(self, batch)

    setattr(HistoryWriter, "_acknowledge", acknowledged)  # noqa: B010 - a benchmark patch

    probes, slow = trace.setdefault("probe_in", []), trace.setdefault("slow_handle", [])
    # When every message's handling began: how many a probe waited behind.
    every = array("d")
    trace["handled"] = every  # type: ignore[assignment]
    handle = IngestPipeline.handle

    def handled(self: IngestPipeline, message: InboundMessage) -> Any:
        started = clock()
        every.append(started)
        if "/probe-" in message.topic:
            probes.append((started, message.topic.split("/")[3]))
        try:
            return handle(self, message)
        finally:
            ended = clock()
            if ended - started >= SLOW_HANDLE_S:
                slow.append((started, ended, None, message.topic))

    setattr(IngestPipeline, "handle", handled)  # noqa: B010 - a benchmark patch

    commands = trace.setdefault("command_out", [])
    publish = PahoTransport.publish

    def published(
        self: PahoTransport, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if topic.endswith("/set") and "/probe-" in topic:
            commands.append((clock(), topic.split("/")[3]))
        publish(self, topic, payload, qos=qos, retain=retain)

    setattr(PahoTransport, "publish", published)  # noqa: B010 - a benchmark patch


def main() -> int:
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    trace: Trace = {}
    install(trace)
    atexit.register(lambda: out.write_text(json.dumps(trace, default=list)))
    from gateway.cli.main import main as gateway_main

    return gateway_main(argv)


if __name__ == "__main__":
    sys.exit(main())
