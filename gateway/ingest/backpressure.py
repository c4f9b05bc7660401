"""The bound on what the gateway has read from the broker but not yet committed.

Reading is faster than committing (the live model takes several times the rate the
history holds), so without a bound every burst, and the backlog a broker delivers
after an outage, piles up in memory until the process is killed. Here the MQTT
network thread, before it hands a message to ingest, waits while the messages or
bytes pending commit are at the bound, and carries on once the history writer has
brought them below the low-water mark. While it waits it reads nothing: the
socket's buffers fill, TCP stops the broker, and the broker keeps the rest, which
is its job. Nothing is dropped and nothing is acknowledged early.

Only messages read from the broker count: events, ticks and room states the
gateway produces itself are small, bounded by the rooms, and must never wait on
the network thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BacklogStats:
    pending_messages: int
    pending_bytes: int
    # Times the network thread stopped reading at the bound, and for how long in all.
    pauses: int
    paused_seconds: float
    paused_now: bool
    max_messages: int
    max_bytes: int


class IngestBacklog:
    """Counts messages (and their payload bytes) read but not yet committed; `admit`
    blocks the reader at the bound. Thread-safe: the network thread admits, the
    history writer settles."""

    def __init__(self, max_messages: int, max_bytes: int, resume_below: float = 0.5) -> None:
        if max_messages < 1 or max_bytes < 1 or not 0.0 <= resume_below < 1.0:
            raise ValueError("IngestBacklog: bounds must be positive and resume_below in [0, 1)")
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        # The low-water mark: reading resumes once the pending work is at most this.
        self._resume_messages = int(max_messages * resume_below)
        self._resume_bytes = int(max_bytes * resume_below)
        self._messages = 0
        self._bytes = 0
        self._pauses = 0
        self._paused_seconds = 0.0
        self._paused = False
        self._closed = False
        self._changed = threading.Condition()

    def admit(self, size: int) -> None:
        """Counts one message about to be handled; first waits, if the bound is
        reached, until the pending work is below the low-water mark (or `close`)."""
        with self._changed:
            if not self._closed and (self._messages >= self._max_messages or self._bytes >= self._max_bytes):
                self._pauses += 1
                self._paused = True
                started = time.monotonic()
                while not self._closed and (
                    self._messages > self._resume_messages or self._bytes > self._resume_bytes
                ):
                    self._changed.wait()
                self._paused = False
                self._paused_seconds += time.monotonic() - started
            self._messages += 1
            self._bytes += size

    def settle(self, messages: int, size: int) -> None:
        """What the history writer committed (or gave up holding): no longer pending."""
        if not messages and not size:
            return
        with self._changed:
            self._messages = max(0, self._messages - messages)
            self._bytes = max(0, self._bytes - size)
            if self._paused and self._messages <= self._resume_messages and self._bytes <= self._resume_bytes:
                self._changed.notify_all()

    def close(self) -> None:
        """Shutdown: a reader waiting at the bound carries on, and none waits again."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stats(self) -> BacklogStats:
        with self._changed:
            return BacklogStats(
                self._messages,
                self._bytes,
                self._pauses,
                self._paused_seconds,
                self._paused,
                self._max_messages,
                self._max_bytes,
            )
