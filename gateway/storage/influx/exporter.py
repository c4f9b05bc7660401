"""Export of every reading and event to InfluxDB 2 (DESIGN.md §5).

`submit()` encodes points (gateway.storage.influx.lines) and appends them to the durable
buffer (gateway.storage.influx.buffer); it never touches the network. A thread of ours
drains the buffer in batches with influxdb-client's synchronous write API and
deletes a batch only once the server answered 2xx. Why not the client's own
batching mode: it keeps points in memory and drops them after its retries, so
neither "nothing lost up to the buffer size" nor exact drop counts would hold.

Failures are of two kinds:

- transient (no connection, timeout, 5xx, 401/403/404, 429): the batch stays
  queued and the drainer backs off, doubling from `retry_min_delay` to
  `retry_max_delay`; one log line when the failure starts (or changes), one when
  writes succeed again.
- the data itself (400, 413, 422: a line the server will never accept): the
  batch is split in halves until the bad line is alone, the good halves are
  written, the bad line is dropped and counted as `rejected`, logged once per
  status code. One bad point never blocks the queue.

Delivery is at least once: a write that times out after the server stored it is
sent again, which InfluxDB turns into an overwrite of the same point.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from gateway.config import InfluxSection, Settings
from gateway.logs import kv
from gateway.storage.influx.buffer import InfluxBuffer
from gateway.storage.influx.lines import PRECISION, event_line, reading_line
from gateway.storage.records import Reading, StoredEvent

if TYPE_CHECKING:
    from influxdb_client.client.write_api import WriteApi

log = logging.getLogger(__name__)

# Statuses that judge the data, not the server's state: retrying cannot help.
_DATA_REJECTED = frozenset({400, 413, 422})
_MAX_LOGGED_KINDS = 100


@dataclass(frozen=True, slots=True)
class InfluxStats:
    """Counters since this exporter was created (except `buffered`: on disk now)."""

    exported: int
    buffered: int
    # Refused because the buffer was full.
    dropped: int
    # Refused by the server as bad data (4xx), after isolating them.
    rejected: int
    # Not expressible as line protocol (non-finite value, bad kind); never queued.
    invalid: int
    # Write requests that failed for a transient reason (the points stayed queued).
    write_failures: int
    last_error: str | None
    last_success_at: float | None
    healthy: bool


class _Transient(Exception):
    """A write that failed for a reason that may go away; carries the server's hint."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.retry_after = retry_after


class InfluxExporter:
    """Buffers points on disk and writes them to InfluxDB from a thread of its own."""

    def __init__(self, config: InfluxSection, buffer_path: str | Path) -> None:
        if config.url is None or config.bucket is None:
            raise ValueError("influxdb.url and influxdb.bucket are required to export")
        self._config = config
        self._bucket = config.bucket
        self._buffer = InfluxBuffer(buffer_path, config.buffer_max_rows)
        self._lock = threading.Lock()
        self._exported = 0
        self._dropped = 0
        self._rejected = 0
        self._invalid = 0
        self._write_failures = 0
        self._last_error: str | None = None
        self._last_success_at: float | None = None
        self._healthy = True
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._logged_kinds: set[str] = set()
        self._failing_kind: str | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> InfluxExporter | None:
        """The exporter the config asks for, or None when `influxdb.url` is unset."""
        section = settings.influxdb
        if section is None or not section.enabled:
            return None
        return cls(section, section.buffer_file(settings.storage.path))

    @property
    def buffer_path(self) -> Path:
        return self._buffer.path

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("exporter already started")
        if self._closed:
            raise RuntimeError("exporter stopped; create a new one")
        self._thread = threading.Thread(target=self._run, name="influx-export", daemon=True)
        self._thread.start()

    def submit(self, readings: Sequence[Reading], events: Sequence[StoredEvent]) -> None:
        """Queue readings and events for export; disk only, never the network."""
        if self._closed:
            raise RuntimeError("exporter stopped; create a new one")
        lines: list[str] = []
        invalid = 0
        for reading in readings:
            line = reading_line(reading)
            if line is None:
                invalid += 1
            else:
                lines.append(line)
        for event in events:
            line = event_line(event)
            if line is None:
                invalid += 1
            else:
                lines.append(line)
        refused = self._buffer.append(lines) if lines else 0
        with self._lock:
            self._invalid += invalid
            self._dropped += refused
        if refused:
            self._log_once(
                "buffer_full", "influx buffer full: dropping new points", max_rows=self._buffer.max_rows
            )
        if len(self._buffer) >= self._config.batch_size:
            self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what can be written within `timeout` s; the rest stays on disk for the next start."""
        if self._closed:
            return
        self._stop_deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            self._close()
            return
        thread.join(timeout)
        if thread.is_alive():
            # Stuck in a write request (bounded by influxdb.timeout); its batch is
            # still on disk, and the thread closes the buffer when it returns.
            log.warning(kv("influx export did not stop in time", timeout=timeout, buffered=len(self._buffer)))

    def stats(self) -> InfluxStats:
        with self._lock:
            return InfluxStats(
                exported=self._exported,
                buffered=len(self._buffer),
                dropped=self._dropped,
                rejected=self._rejected,
                invalid=self._invalid,
                write_failures=self._write_failures,
                last_error=self._last_error,
                last_success_at=self._last_success_at,
                healthy=self._healthy,
            )

    # -- the drainer thread ---------------------------------------------------------

    def _run(self) -> None:
        client = InfluxDBClient(
            url=self._config.url or "",
            token=self._config.token or "",
            org=self._config.org or "",
            timeout=int(self._config.timeout * 1000),
        )
        write_api = client.write_api(write_options=SYNCHRONOUS)
        try:
            self._drain(write_api)
        finally:
            write_api.close()  # type: ignore[no-untyped-call]
            client.close()  # type: ignore[no-untyped-call]
            self._close()

    def _drain(self, write_api: WriteApi) -> None:
        failures = 0
        while True:
            if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                return
            rows = self._buffer.peek(self._config.batch_size)
            if not rows:
                if self._stopping.is_set():
                    return
                self._pause(self._config.flush_interval)
                continue
            try:
                self._deliver(write_api, rows)
            except _Transient as exc:
                failures += 1
                self._failed(exc)
                if self._stopping.is_set():
                    return  # the server is away: what is left stays on disk
                delay = min(self._config.retry_max_delay, self._config.retry_min_delay * 2 ** (failures - 1))
                if exc.retry_after is not None:
                    delay = min(self._config.retry_max_delay, max(delay, exc.retry_after))
                self._stopping.wait(delay)
                continue
            if failures:
                log.info(kv("influx export resumed", failed_attempts=failures, buffered=len(self._buffer)))
                failures = 0
                self._failing_kind = None
            if len(rows) < self._config.batch_size and not self._stopping.is_set():
                # A partial batch: let more points gather before the next request.
                self._pause(self._config.flush_interval)

    def _pause(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _deliver(self, write_api: WriteApi, rows: Sequence[tuple[int, str]]) -> None:
        """Writes `rows`, isolating lines the server refuses; raises _Transient."""
        try:
            self._write(write_api, [line for _, line in rows])
        except ApiException as exc:
            status = exc.status or 0
            if status not in _DATA_REJECTED:
                raise _Transient(f"http {status}", _describe(exc), _retry_after(exc)) from None
            if len(rows) > 1:
                middle = len(rows) // 2
                self._deliver(write_api, rows[:middle])
                self._deliver(write_api, rows[middle:])
                return
            self._buffer.remove(rows)
            with self._lock:
                self._rejected += 1
            self._log_once(
                f"rejected {status}",
                "influx rejected a point; dropped",
                status=status,
                error=_describe(exc),
                line=rows[0][1][:200],
            )
            return
        # Counted before the rows leave the buffer: the server has them now, and a
        # reader of `stats()` must never see them neither buffered nor exported.
        with self._lock:
            self._exported += len(rows)
            self._last_success_at = time.time()
            self._healthy = True
        self._buffer.remove(rows)

    def _write(self, write_api: WriteApi, lines: list[str]) -> None:
        try:
            write_api.write(bucket=self._bucket, record=lines, write_precision=PRECISION)
        except ApiException:
            raise
        except Exception as exc:
            # The exporter's isolation point (STYLE.md): connection refused, timeouts,
            # anything urllib3 raises. The batch stays queued; nothing is lost.
            raise _Transient(type(exc).__name__, str(exc)[:300]) from None

    def _failed(self, exc: _Transient) -> None:
        with self._lock:
            self._write_failures += 1
            self._last_error = f"{exc.kind}: {exc}"
            self._healthy = False
        if exc.kind != self._failing_kind:
            self._failing_kind = exc.kind
            log.warning(
                kv(
                    "influx write failed; points stay buffered",
                    error=exc.kind,
                    detail=str(exc)[:300],
                    buffered=len(self._buffer),
                )
            )

    def _log_once(self, kind: str, message: str, **fields: object) -> None:
        if kind in self._logged_kinds or len(self._logged_kinds) >= _MAX_LOGGED_KINDS:
            return
        self._logged_kinds.add(kind)
        log.warning(kv(message, **fields))

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._buffer.close()


def _describe(exc: ApiException) -> str:
    message = getattr(exc, "message", None) or exc.reason or ""
    return f"{exc.status} {message}"[:300]


def _retry_after(exc: ApiException) -> float | None:
    value = getattr(exc, "retry_after", None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
