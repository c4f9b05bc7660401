"""`officegw run` with `storage.url`: hold the shard's lock around the gateway.

Order matters (README: Standby takeover): the lock first, then the gateway (which
opens the SQLite history and connects to the broker under the shard's client id),
and the lock released only once the gateway has stopped. A standby (`--standby`)
waits for the lock, serving only /healthz, /readyz and /metrics meanwhile; without
`--standby` a held lock ends the command with EXIT_SHARD_HELD.

Fencing: if the lock's session is lost while active, the process exits at once
with EXIT_LOCK_LOST, like a crash. A crash loses nothing (messages are
acknowledged only after their commit, so the broker redelivers the rest to
whoever resumes the session), while going on could mean two actives: PostgreSQL
may already have granted the lock to a standby. An active whose own loops stopped
coming round (gateway/runtime/service_watchdog.py) exits with EXIT_HUNG for the
same reason: its session, and so the lock, would live on.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import psycopg

from api.standby_app import create_standby_app
from gateway.cli.server import ServerThread
from gateway.config import Settings
from gateway.logs import kv
from gateway.runtime.service_watchdog import ServiceWatchdog
from gateway.runtime.shard_lock import PROOF_DEADLINE, ShardLock, first_line
from gateway.runtime.shard_role import ShardRole

log = logging.getLogger("officegw.shard")

# Exit statuses (1: the API address cannot be served; 2: the config is not usable):
# another process is the shard's active gateway; the lock was lost while active (a
# service manager restarts it, as a standby); PostgreSQL not reachable at start.
EXIT_SHARD_HELD = 3
EXIT_LOCK_LOST = 4
EXIT_NO_DATABASE = 5
# The active's ticker or history writer stopped coming round while it held the lock.
EXIT_HUNG = 6


class _Stop(KeyboardInterrupt):
    """SIGTERM while waiting for the lock. A KeyboardInterrupt, so psycopg cancels the
    blocked `pg_advisory_lock` on its way out."""


class _NoProbes(Exception):
    """The standby's API address cannot be served (most often: in use)."""


def run_shard(
    settings: Settings,
    *,
    standby: bool,
    run: Callable[[ShardRole, Callable[[str], None]], None],
    watchdog: ServiceWatchdog | None = None,
) -> int:
    """Runs `run(role, on_hung)` (the gateway and its API, until stopped) while holding
    the shard's lock; returns the exit status. `on_hung(reason)` exits at once (a hung
    active must not keep the lock from a standby); `watchdog`: told when a standby is
    up, waiting."""
    assert settings.storage.url is not None
    shard = settings.gateway.id
    lock = ShardLock(settings.storage.url, shard)
    role = ShardRole(shard, lock.key)
    try:
        with _stop_on_sigterm():
            if not _take(lock, role, settings, standby=standby, watchdog=watchdog):
                return EXIT_SHARD_HELD
    except KeyboardInterrupt as stop:
        log.info(kv("stopped while waiting for the shard lock", shard=shard))
        lock.release()
        if isinstance(stop, _Stop):
            return 0
        raise
    except _NoProbes as exc:
        log.error(kv("standby cannot serve its probes; is api.port in use?", shard=shard, error=str(exc)))
        lock.release()
        return 1
    except psycopg.OperationalError as exc:
        log.error(
            kv(
                "cannot reach storage.url to take the shard lock",
                shard=shard,
                postgres=lock.location,
                error=first_line(exc),
            )
        )
        lock.release()
        return EXIT_NO_DATABASE
    lock.watch(lambda reason: _fence(shard, lock.location, reason))
    try:
        run(role, lambda reason: _exit_hung(shard, reason))
    finally:
        # Only now: the gateway has committed, acknowledged and disconnected, so the
        # standby that takes over finds the history and the session as we left them.
        lock.release()
        log.info(kv("shard lock released", shard=shard))
    return 0


def _take(
    lock: ShardLock, role: ShardRole, settings: Settings, *, standby: bool, watchdog: ServiceWatchdog | None
) -> bool:
    shard = role.shard
    if not standby:
        lock.connect()
        if not lock.try_take():
            holder = lock.holder()
            log.error(
                kv(
                    f"shard {shard} already has an active gateway; refusing to start a second "
                    "(run with --standby to wait and take over when it stops)",
                    shard=shard,
                    holder=holder or "unknown",
                    lock_key=lock.key,
                    postgres=lock.location,
                )
            )
            return False
        waited = role.took_lock()
    else:
        with _standby_server(settings, role):
            if watchdog is not None:
                watchdog.watch(ready=lambda: True, hung=lambda: None)  # up, and waiting
            lock.wait(
                lambda holder: log.info(
                    kv(
                        "standby waiting for the shard lock",
                        shard=shard,
                        holder=holder or "unknown",
                        lock_key=lock.key,
                        postgres=lock.location,
                    )
                )
            )
            waited = role.took_lock()  # before the probes' server takes its time to stop
    log.info(
        kv(
            "shard lock taken; this gateway is active",
            shard=shard,
            waited_s=round(waited, 3),
            lock_key=lock.key,
            postgres=lock.location,
        )
    )
    return True


@contextmanager
def _standby_server(settings: Settings, role: ShardRole) -> Iterator[None]:
    """The probes and /metrics on the API's address while waiting; stopped (the port
    freed for the gateway's API) once the lock is taken or the wait ends."""
    server = ServerThread(create_standby_app(settings, role), settings.api.host, settings.api.port)
    try:
        server.start()
    except (RuntimeError, TimeoutError) as exc:  # uvicorn logged why (address in use)
        raise _NoProbes(str(exc)) from None
    try:
        yield
    finally:
        server.stop()


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_hung(shard: str, reason: str) -> None:
    """The active's own loops stopped coming round (gateway/runtime/service_watchdog.py):
    exit now, so that the lock (held by a session that is still alive) goes to a standby."""
    log.critical(
        kv(
            "gateway hung while holding the shard lock; exiting at once so that a standby takes over "
            "(readings not yet committed stay unacknowledged: the broker redelivers them)",
            shard=shard,
            reason=reason,
            exit_status=EXIT_HUNG,
        )
    )
    _exit(EXIT_HUNG)


def _fence(shard: str, location: str, reason: str) -> None:
    """The lock's session is gone: stop now, on the watcher's thread."""
    log.critical(
        kv(
            "shard lock lost; exiting at once so that no two gateways ingest the shard "
            "(readings not yet committed stay unacknowledged: the broker redelivers them)",
            shard=shard,
            postgres=location,
            reason=reason,
            proof_deadline_s=PROOF_DEADLINE,
            exit_status=EXIT_LOCK_LOST,
        )
    )
    _exit(EXIT_LOCK_LOST)


def _exit(status: int) -> None:
    """Ends the process now, from any thread, without another commit or acknowledgement."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(status)
