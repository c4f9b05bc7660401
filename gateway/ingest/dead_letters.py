"""A bounded log of rejected messages, so an operator can see what a device sent.

Kept in memory (the newest `capacity`), with payloads cut short and badge ids
blanked out, like the log lines.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    at: float
    topic: str
    reason: str
    detail: str
    payload: str  # preview, credential redacted
    size: int


class DeadLetters:
    def __init__(self, capacity: int = 1000) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, at: float, topic: str, reason: str, detail: str, payload: str, size: int) -> None:
        with self._lock:
            self._seq += 1
            self._letters.append(DeadLetter(self._seq, at, topic, reason, detail, payload, size))

    def page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        reason: str | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
    ) -> list[DeadLetter]:
        """Up to `limit` letters after `after` that match `reason` and `where` (filtered
        before the limit, so a page is only short at the end)."""
        with self._lock:
            letters = list(self._letters)
        return [
            letter
            for letter in letters
            if letter.seq > after
            and (reason is None or letter.reason == reason)
            and (where is None or where(letter))
        ][:limit]
