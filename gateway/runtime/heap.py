"""Giving the C heap's free memory back to the system once a burst has passed.

A registration storm (20,000 devices saying hello at once: benchmarks/memory.py)
makes the C allocator's heaps grow by tens of megabytes for what is short-lived:
SQLite's pages, the history writer's batches, the tables of dicts that grow a
device at a time. glibc's malloc keeps what is freed for reuse and gives back to
the system only what lies at the very top of a heap; the rest stayed resident after
the burst (20-37 MB of it at 20,000 devices, one to two kilobytes a device).
`malloc_trim` returns every free page of every heap, wherever it lies.

It walks every free chunk holding each heap's lock (tens of milliseconds after a
storm), so it runs once a burst is over, when the history writer has gone quiet
(`HistoryWriter(after_release=...)`), never on a timer; and only in a process
that owns the interpreter (`officegw run`, the demo), like `gc_schedule`. Where
the C library is not glibc there is nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time

from gateway.logs import kv

log = logging.getLogger("officegw.runtime")


class GlibcHeap:
    def __init__(self, libc: ctypes.CDLL) -> None:
        self._malloc_trim = libc.malloc_trim
        self._malloc_trim.restype = ctypes.c_int
        self._malloc_trim.argtypes = [ctypes.c_size_t]

    def trim(self) -> None:
        """Returns every free page of every heap to the system."""
        started = time.perf_counter()
        self._malloc_trim(0)
        log.debug(kv("heap trimmed", ms=round((time.perf_counter() - started) * 1000, 1)))


def glibc_heap() -> GlibcHeap | None:
    """This process's glibc heap; None under another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return GlibcHeap(libc) if hasattr(libc, "malloc_trim") else None
