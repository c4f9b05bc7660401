"""A private VictoriaMetrics for tests: a server that speaks the InfluxDB v2 write API.

Debian's `victoria-metrics` package installs `/usr/bin/victoria-metrics`. Each
instance gets a random port and its own data directory, is stopped by its own
PID, and can be stopped and started again on the same port and data (outage
tests).

VictoriaMetrics stores an InfluxDB point `m,tag=v f1=1,f2=2 ts` as the series
`m_f1{tag="v"}` and `m_f2{tag="v"}`; string fields become series with value 0.
Reading back goes through `/api/v1/export` (JSON lines, all samples, ms
timestamps) after `/internal/force_flush`, which makes just-written rows
searchable at once instead of within ~1 s.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import orjson

from simulators.broker import free_port, port_is_free

FLAGS = (
    # Test data may be stamped in the past; VictoriaMetrics' default keeps one month.
    "-retentionPeriod=100y",
    # Two samples of one series with the same timestamp are one point, as in
    # InfluxDB (a retried write overwrites instead of duplicating).
    "-dedup.minScrapeInterval=1ms",
    "-search.disableCache",
    "-search.latencyOffset=0s",
    # A line longer than this makes the whole request fail with 400: how tests
    # produce a point the server will never accept (VictoriaMetrics otherwise
    # skips unparsable lines and answers 204).
    "-influx.maxLineSize=16KB",
)
MAX_LINE_BYTES = 16_000


def executable() -> str | None:
    return shutil.which("victoria-metrics") or shutil.which(
        "victoria-metrics", path="/usr/bin:/usr/local/bin"
    )


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    ts_ms: int


def _reap(proc: subprocess.Popen[bytes], directory: Path) -> None:
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    shutil.rmtree(directory, ignore_errors=True)


class VictoriaMetrics:
    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        exe = executable()
        if exe is None:
            raise FileNotFoundError("victoria-metrics is not installed (apt-get install victoria-metrics)")
        self._exe = exe
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix="officegw-victoria-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self._http = httpx.Client(base_url=self.url, timeout=5.0)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> Self:
        if self.is_running():
            raise RuntimeError(f"victoria-metrics already running (pid {self.pid})")
        if not port_is_free(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        argv = [
            self._exe,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.dir / 'data'}",
            *FLAGS,
        ]
        # A log file, not a pipe: a pipe nobody reads would block the server.
        with open(self.dir / "victoria.log", "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._proc = proc
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _reap, proc, self.dir)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop_process()
                raise TimeoutError(f"victoria-metrics not ready within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.02)
        return self

    def _healthy(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def stop_process(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL); data stays for `start()`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop_process()
        self._http.close()
        self._finalizer()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.dir / "victoria.log").read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    def export(self, match: str) -> list[Sample]:
        """Every stored sample of the series matching `match` (a series selector)."""
        self._http.get("/internal/force_flush").raise_for_status()
        response = self._http.post("/api/v1/export", data={"match[]": match})
        response.raise_for_status()
        samples: list[Sample] = []
        for line in response.content.splitlines():
            if not line.strip():
                continue
            series = orjson.loads(line)
            labels = dict(series["metric"])
            name = labels.pop("__name__")
            for value, ts in zip(series["values"], series["timestamps"], strict=True):
                samples.append(Sample(name, labels, float(value), int(ts)))
        return samples

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
