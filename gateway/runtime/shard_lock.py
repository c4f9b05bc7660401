"""One active gateway per shard: a PostgreSQL advisory lock on the campus database.

Every gateway of a shard (same `gateway.id`, hence the same MQTT client id and
persistent session) asks for the same session-level advisory lock on
`storage.url`; whoever holds it is the active one. The lock lives as long as the
PostgreSQL session that took it: a gateway that dies (SIGKILL, crash) loses its
connection and with it the lock, and the standby blocked in `pg_advisory_lock`
gets it at once.

The lock is held on a connection of its own (never a pooled one, which could be
recycled under it), and it is a lease with two ends:

- the server ends the session of a gateway it stopped hearing from (host crash,
  partition) after `SERVER_GIVES_UP_AFTER` s: the session sets the server's TCP
  keepalives and user timeout (instead of the kernel's two hours of silence);
- the holder proves its session every `CHECK_INTERVAL` s with a round trip, and
  `watch` reports the lock lost when a check fails or none succeeded for
  `PROOF_DEADLINE` s, which is shorter: a holder that cannot reach the server has
  stopped before the server can grant the lock to a standby.

The caller must stop ingesting at once (the CLI exits, gateway/cli/shard.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from gateway.logs import kv

log = logging.getLogger("officegw.shard")

# Seconds, on both ends of the connection: silence before the first keepalive
# probe, between probes, and probes unanswered before the connection is given up
# (5 + 2 * 3 = 11 s); data not acknowledged within TCP_USER_TIMEOUT_MS fails it too.
KEEPALIVES_IDLE = 5
KEEPALIVES_INTERVAL = 2
KEEPALIVES_COUNT = 3
TCP_USER_TIMEOUT_MS = 10_000
SERVER_GIVES_UP_AFTER = min(
    KEEPALIVES_IDLE + KEEPALIVES_INTERVAL * KEEPALIVES_COUNT, TCP_USER_TIMEOUT_MS / 1000
)
CONNECT_TIMEOUT = 5
# How often the holder proves its session is alive with a round trip; a session
# the server ends (restart, pg_terminate_backend) is seen at once, without waiting
# for this, because the server's goodbye makes the socket readable.
CHECK_INTERVAL = 1.0
# With no proof for this long the holder gives the lock up; well under
# SERVER_GIVES_UP_AFTER (the lease's order, see the module's docstring).
PROOF_DEADLINE = 5.0
# A standby whose own connection fails retries with a back-off doubling up to this.
RECONNECT_MAX_DELAY = 5.0


def shard_lock_key(shard: str) -> int:
    """The advisory lock key of a shard (its `gateway.id`): the first 8 bytes of
    SHA-256(`officegw/shard/<id>`) as a signed big-endian integer. The same in every
    process and Python version (unlike `hash()`); in `pg_locks` it shows as
    classid (high 32 bits) and objid (low 32 bits)."""
    digest = hashlib.sha256(f"officegw/shard/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _server_options(url: str) -> str:
    """The server's side of the keepalives, for this session only, after any
    `options` the URL already has."""
    given = conninfo_to_dict(url).get("options") or ""
    ours = (
        f"-c tcp_keepalives_idle={KEEPALIVES_IDLE} -c tcp_keepalives_interval={KEEPALIVES_INTERVAL} "
        f"-c tcp_keepalives_count={KEEPALIVES_COUNT} -c tcp_user_timeout={TCP_USER_TIMEOUT_MS}"
    )
    return f"{given} {ours}".strip()


def safe_location(url: str) -> str:
    """host:port/database of a libpq URL, without user or password (for logs)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


class ShardLock:
    """The shard's advisory lock on a dedicated connection: take it (or wait for it),
    watch it, release it. Not thread-safe: one owner; `watch` hands the connection
    to a thread of its own."""

    def __init__(self, url: str, shard: str, *, application_name: str | None = None) -> None:
        self.shard = shard
        self.key = shard_lock_key(shard)
        self.location = safe_location(url)
        self._url = url
        # Shown in pg_stat_activity, and in the error a second active gets.
        self._application_name = (
            application_name or (f"officegw {shard} pid {os.getpid()} on {socket.gethostname()}")[:63]
        )
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._watcher: threading.Thread | None = None
        self._deadline: threading.Thread | None = None
        self._proved_at = 0.0
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    def connect(self) -> None:
        """Opens the lock's connection (raises psycopg.OperationalError when it cannot)."""
        if self._conn is not None and not self._conn.closed:
            return
        self._conn = psycopg.connect(
            self._url,
            autocommit=True,
            options=_server_options(self._url),
            application_name=self._application_name,
            connect_timeout=CONNECT_TIMEOUT,
            keepalives=1,
            keepalives_idle=KEEPALIVES_IDLE,
            keepalives_interval=KEEPALIVES_INTERVAL,
            keepalives_count=KEEPALIVES_COUNT,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        )

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            raise RuntimeError("ShardLock.connect() first")
        return self._conn

    def try_take(self) -> bool:
        """Takes the lock if nobody holds it; never waits."""
        row = self._connection().execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def holder(self) -> str | None:
        """Who holds the lock (its application name, and address when known), as far
        as this role may see; None when nobody does or it cannot be told."""
        row = (
            self._connection()
            .execute(
                "SELECT a.application_name, host(a.client_addr) FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
                ((self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF),
            )
            .fetchone()
        )
        if row is None or not row[0]:
            return None
        name, address = row
        return f"{name} ({address})" if address else str(name)

    def wait(self, on_waiting: Callable[[str | None], None]) -> float:
        """Blocks until the lock is taken; returns the seconds it waited. `on_waiting`
        is called once, with the holder, if the lock is held. A lost connection (the
        database restarting) is retried with a back-off. KeyboardInterrupt/SystemExit
        (a signal handler) interrupt the wait: psycopg cancels the query."""
        started = time.monotonic()
        told = False
        delay = 0.25
        failing = False
        while True:
            try:
                self.connect()
                if failing:
                    failing, delay = False, 0.25
                    log.info(kv("shard lock connection back; waiting again", shard=self.shard))
                if self.try_take():
                    return time.monotonic() - started
                if not told:
                    told = True
                    on_waiting(self.holder())
                # Granted by the server the moment the holder's session ends.
                self._connection().execute("SELECT pg_advisory_lock(%s)", (self.key,))
                return time.monotonic() - started
            except psycopg.OperationalError as exc:
                # Once per outage; the retries in between only at DEBUG.
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    kv(
                        "shard lock connection failed; retrying",
                        shard=self.shard,
                        postgres=self.location,
                        retry_in=delay,
                        error=first_line(exc),
                    ),
                )
                failing = True
                self._close_connection()
                time.sleep(delay)
                delay = min(RECONNECT_MAX_DELAY, delay * 2)

    def watch(self, on_lost: Callable[[str], None]) -> None:
        """Proves the lock's session from a thread of its own until `release`; calls
        `on_lost(reason)` once if a proof fails or is overdue (see PROOF_DEADLINE)."""
        conn = self._connection()
        self._proved_at = time.monotonic()
        told = threading.Lock()

        def lost(reason: str) -> None:
            # Once, and never for our own `release`.
            if told.acquire(blocking=False) and not self._stopping.is_set():
                on_lost(reason)

        self._watcher = threading.Thread(
            target=self._prove, args=(conn, lost), name="officegw-shard-lock", daemon=True
        )
        self._deadline = threading.Thread(
            target=self._expect_proofs, args=(lost,), name="officegw-shard-lease", daemon=True
        )
        self._watcher.start()
        self._deadline.start()

    def _prove(self, conn: psycopg.Connection[tuple[Any, ...]], lost: Callable[[str], None]) -> None:
        socket_fd = conn.fileno()
        while not self._stopping.is_set():
            # Readable while idle: the server is telling us something, most likely
            # that it ends the session; the check below reads it.
            select.select([socket_fd, self._wake_r], [], [], CHECK_INTERVAL)
            if self._stopping.is_set():
                return
            try:
                conn.execute("SELECT 1")
            except psycopg.Error as exc:
                lost(first_line(exc))
                return
            self._proved_at = time.monotonic()

    def _expect_proofs(self, lost: Callable[[str], None]) -> None:
        # A check can hang (a stalled link or proxy: nothing fails, nothing answers).
        while not self._stopping.wait(CHECK_INTERVAL / 4):
            silent = time.monotonic() - self._proved_at
            if silent > PROOF_DEADLINE:
                lost(f"no answer from PostgreSQL for {silent:.1f} s")
                return

    def release(self) -> None:
        """Ends the session, and with it the lock (a standby takes it at once)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._deadline is not None:
            self._deadline.join(CHECK_INTERVAL)
        if self._watcher is not None:
            # A check in flight returns or fails within the TCP user timeout.
            self._watcher.join(CHECK_INTERVAL + TCP_USER_TIMEOUT_MS / 1000)
        self._close_connection()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
