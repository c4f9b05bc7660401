"""What a process owning the interpreter tunes in it."""

from __future__ import annotations

import sys

from gateway.runtime.gc_schedule import prefer_latency


def test_prefer_latency_sets_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    try:
        prefer_latency(0.001)
        assert sys.getswitchinterval() == 0.001
    finally:
        sys.setswitchinterval(before)
