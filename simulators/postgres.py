"""A private PostgreSQL for tests and benchmarks, started from Debian's binaries with
`initdb` and `pg_ctl`.

Each instance gets its own data directory and a random port on 127.0.0.1, trusts
local connections (no password: it listens on loopback only and lives for one
test session), and is stopped by its own postmaster PID. It can be stopped and
started again on the same port and data (outage tests).

PostgreSQL refuses to run as root; when the tests run as root (CI containers), the
server runs as the `postgres` system user that Debian's package creates, in a
directory handed over to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg

from simulators.broker import free_port, port_is_free

SEARCH_PATH = ":".join(
    [f"/usr/lib/postgresql/{major}/bin" for major in (17, 16, 15, 14, 13)] + ["/usr/local/bin", "/usr/bin"]
)

# Settings for a throwaway test server. fsync off: nothing waits for the disk, and a
# crash of the *server process* (pg_ctl -m immediate, SIGKILL: the outage tests) still
# loses nothing, since what was written sits in the OS's cache. synchronous_commit
# stays on: off, a commit is acknowledged before its WAL leaves the server's memory,
# and an immediate stop then loses commits the gateway was told are durable.
SETTINGS = (
    "fsync=off",
    "full_page_writes=off",
    "max_connections=200",
    "shared_buffers=64MB",
)


def executable(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def _run_as() -> list[str]:
    """The prefix that runs a command as the server's user (postgres when we are root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _reap(pid_file: Path, directory: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown
    shutil.rmtree(directory, ignore_errors=True)


class PostgresServer:
    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        initdb, pg_ctl = executable("initdb"), executable("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix="officegw-postgres-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._initialised = False
        self._finalizer = weakref.finalize(self, _reap, self.data / "postmaster.pid", self.dir)

    @property
    def url(self) -> str:
        """A libpq URL for the `officegw` database (created on first start)."""
        return self.url_for("officegw")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _command(self, *argv: str, timeout: float = 60.0) -> None:
        result = subprocess.run(
            [*_run_as(), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            command = " ".join(argv[:2])
            raise RuntimeError(f"{command} failed ({result.returncode}):\n{output}\n{self.log_tail()}")

    def start(self, timeout: float = 30.0) -> Self:
        if self.is_running():
            raise RuntimeError(f"postgres already running (pid {self.pid})")
        if not port_is_free(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        if not self._initialised:
            self._command(
                self._initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-sync",
            )  # fmt: skip
        options = " ".join(
            [f"-c listen_addresses={self.host}", f"-p {self.port}", f"-k {self.socket_dir}"]
            + [f"-c {setting}" for setting in SETTINGS]
        )
        self._command(
            self._pg_ctl, "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-o", options,
            "-w", "-t", str(int(timeout)), "start",
            timeout=timeout + 10,
        )  # fmt: skip
        if not self._initialised:
            self._wait_ready(timeout)
            with self.connect("postgres") as conn:
                conn.autocommit = True
                conn.execute("CREATE DATABASE officegw")
            self._initialised = True
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url_for("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def connect(self, database: str = "officegw") -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url_for(database), connect_timeout=5)

    def create_database(self, name: str) -> str:
        """A fresh, empty database on this server (one per test); returns its URL."""
        with self.connect("postgres") as conn:
            conn.autocommit = True
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop_process(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Stop the server (`fast`, or `immediate` for a crash); data stays for `start()`."""
        if not self.is_running():
            return
        self._command(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop", timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop_process(mode="immediate")
        self._finalizer()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return (self.dir / "postgres.log").read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
