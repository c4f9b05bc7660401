"""Giving the C heap's free memory back once a burst has passed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from tests.support import ROOT

# In a fresh interpreter (a test process's heap is whatever earlier tests left):
# 80 MB of blocks glibc serves from its heap (over pymalloc's 512 bytes, under
# malloc's mmap threshold), then one that outlives them; freed, the burst's pages
# stay resident below it (glibc returns by itself only what lies at the top).
BURST = """
import os
from gateway.runtime.heap import glibc_heap

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

heap = glibc_heap()
assert heap is not None
burst = [bytes(4096) for _ in range(20_000)]
survivor = bytes(1024)
del burst
before = rss()
heap.trim()
print(before - rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_glibc_heap_gives_back_what_a_burst_left() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BURST], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert int(done.stdout) >= 4 * 2**20
