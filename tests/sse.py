"""A Server-Sent Events client for the tests: GET /v1/stream read in a thread of its
own, what arrives collected with the time it arrived."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from tests.support import wait_until


@dataclass(frozen=True)
class Sse:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return orjson.loads(self.data)


class StreamReader:
    """GET /v1/stream in a thread of its own; what arrives is collected in `events`
    (comments aside), each with the time it arrived."""

    def __init__(
        self, base_url: str, path: str = "/v1/stream", headers: dict[str, str] | None = None
    ) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(5.0, read=10.0))
        self._path = path
        self._headers = headers or {}
        self._lock = threading.Lock()
        self._events: list[tuple[float, Sse]] = []
        self._stop = threading.Event()
        self.status: int | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._path, headers=self._headers) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    return
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if "data" in fields or "event" in fields:
                            event = fields.get("event", "message")
                            sse = Sse(event, fields.get("data", ""), fields.get("id"))
                            with self._lock:
                                self._events.append((time.monotonic(), sse))
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    @property
    def events(self) -> list[Sse]:
        with self._lock:
            return [sse for _, sse in self._events]

    def arrivals(self) -> list[tuple[float, Sse]]:
        with self._lock:
            return list(self._events)

    def wait_ready(self, timeout: float = 10.0) -> list[Sse]:
        """What came before `ready` (the catch-up and the room snapshot)."""

        def ready() -> list[Sse] | None:
            events = self.events
            for index, sse in enumerate(events):
                if sse.event == "ready":
                    return events[:index] or [sse]
            return None

        wait_until(ready, timeout, "the stream's ready event", progress=lambda: (self.status, self.events))
        events = self.events
        return events[: [sse.event for sse in events].index("ready")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.close()


def logged(events: list[Sse]) -> list[Sse]:
    """The events with an id (what the event log holds), in arrival order."""
    return [sse for sse in events if sse.id is not None]
