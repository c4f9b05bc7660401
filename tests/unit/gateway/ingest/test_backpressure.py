"""The bound on messages read but not committed: the reader waits at it, resumes below
the low-water mark, and never waits after shutdown."""

from __future__ import annotations

import threading

import pytest

from gateway.ingest.backpressure import IngestBacklog
from tests.support import wait_until


def admit_in_thread(backlog: IngestBacklog, size: int) -> threading.Event:
    """Admits one message on a thread of its own; the event is set once admitted."""
    admitted = threading.Event()

    def run() -> None:
        backlog.admit(size)
        admitted.set()

    threading.Thread(target=run, daemon=True).start()
    return admitted


def test_below_the_bound_nothing_waits_and_everything_is_counted() -> None:
    backlog = IngestBacklog(max_messages=3, max_bytes=1_000)
    backlog.admit(10)
    backlog.admit(20)
    stats = backlog.stats()
    assert (stats.pending_messages, stats.pending_bytes, stats.pauses) == (2, 30, 0)
    backlog.settle(2, 30)
    assert (backlog.stats().pending_messages, backlog.stats().pending_bytes) == (0, 0)


def test_at_the_message_bound_the_reader_waits_until_half_is_committed() -> None:
    backlog = IngestBacklog(max_messages=4, max_bytes=1_000_000, resume_below=0.5)
    for _ in range(4):
        backlog.admit(1)
    admitted = admit_in_thread(backlog, 1)
    wait_until(lambda: backlog.stats().paused_now, 2.0, "the reader waiting at the bound")
    backlog.settle(1, 1)  # 3 pending: above the low-water mark of 2
    assert not admitted.wait(0.2)
    backlog.settle(1, 1)  # 2 pending: resume
    assert admitted.wait(2.0)
    stats = backlog.stats()
    assert (stats.pending_messages, stats.pauses, stats.paused_now) == (3, 1, False)
    assert stats.paused_seconds > 0


def test_at_the_byte_bound_the_reader_waits_too() -> None:
    backlog = IngestBacklog(max_messages=1_000, max_bytes=100, resume_below=0.5)
    backlog.admit(60)
    backlog.admit(60)  # admitted: the bound is checked before a message is counted
    admitted = admit_in_thread(backlog, 10)
    wait_until(lambda: backlog.stats().paused_now, 2.0, "the reader waiting at the byte bound")
    backlog.settle(1, 60)  # 60 bytes: still above 50
    assert not admitted.wait(0.2)
    backlog.settle(1, 60)
    assert admitted.wait(2.0)


def test_one_message_larger_than_the_byte_bound_is_still_read() -> None:
    backlog = IngestBacklog(max_messages=10, max_bytes=100)
    backlog.admit(5_000)
    assert backlog.stats().pending_bytes == 5_000


def test_close_releases_a_waiting_reader_and_none_waits_after() -> None:
    backlog = IngestBacklog(max_messages=1, max_bytes=1_000)
    backlog.admit(1)
    admitted = admit_in_thread(backlog, 1)
    wait_until(lambda: backlog.stats().paused_now, 2.0, "the reader waiting at the bound")
    backlog.close()
    assert admitted.wait(2.0)
    backlog.admit(1)  # returns at once
    assert backlog.stats().pending_messages == 3


@pytest.mark.parametrize(("messages", "size", "resume"), [(0, 10, 0.5), (10, 0, 0.5), (10, 10, 1.0)])
def test_nonsense_bounds_are_refused(messages: int, size: int, resume: float) -> None:
    with pytest.raises(ValueError):
        IngestBacklog(messages, size, resume_below=resume)
