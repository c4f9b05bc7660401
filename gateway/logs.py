"""Structured logs: one line per event, `event key=value ...`, and no spam on repeats."""

from __future__ import annotations

import logging
import sys
from typing import Any


def kv(event: str, **fields: Any) -> str:
    """`event key=value ...`; values with spaces are quoted so lines stay parseable."""
    parts = [event]
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "='):
            text = '"' + text.replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's per-request access log costs ~24 % of API throughput and repeats
    # what /metrics already counts.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class Throttle:
    """Allows one log line per key per interval and counts what it held back."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: dict[tuple[str, ...], float] = {}
        self._held: dict[tuple[str, ...], int] = {}

    def allow(self, key: tuple[str, ...], now: float) -> tuple[bool, int]:
        """Whether to log now, and how many lines for this key were held back since."""
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False, 0
        if len(self._last) > 10_000:
            # Bounded: a flood of distinct bad topics must not grow memory forever.
            self._last.clear()
            self._held.clear()
        self._last[key] = now
        return True, self._held.pop(key, 0)
