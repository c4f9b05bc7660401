"""Giving the C heap's free memory back once a burst has passed."""

from __future__ import annotations

import pytest

from gateway.runtime.heap import glibc_heap


def test_the_glibc_heap_gives_back_what_a_burst_left() -> None:
    heap = glibc_heap()
    if heap is None:
        pytest.skip("not glibc")
    burst = [bytes(4096) for _ in range(2_000)]
    del burst
    heap.trim()
