"""Whether the gateway's own loops still come round, told to systemd and acted on.

A gateway can hang without dying: a deadlock, a store that never answers, a
process stopped by a debugger or a paused VM. A hung active keeps its shard's lock
(its session with PostgreSQL is alive), so no standby takes over, and nothing
restarts it. Two answers:

- **systemd's watchdog** (`Type=notify`, `WatchdogSec=` in deploy/officegw.service):
  the process sends `READY=1` once it has started (for a gateway: stores open, state
  restored, the broker connection under way, whether or not the broker answers yet,
  which is /readyz's business; for a standby: once it waits), then `WATCHDOG=1`
  every half `WatchdogSec` *only while* the ticker and the history writer have come
  round within HUNG_AFTER s. systemd kills and restarts a process that stops
  sending, so a process stopped as a whole is caught too. `STOPPING=1` on the way
  out. The protocol is sd_notify(3): one datagram per message to the socket
  `NOTIFY_SOCKET` names (no library needed for four fixed strings).
- **Hung with the shard's lock**: `on_hung` (gateway/cli/shard.py) exits at once,
  so the lock goes to the standby, without waiting for a service manager.

Without `NOTIFY_SOCKET` (not under systemd) only the second applies.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Mapping

from gateway.logs import kv

log = logging.getLogger("officegw.runtime")

# A loop that has not come round for this long is hung: well past any pause a busy
# machine gives it (a store retrying takes seconds), well under what a site notices.
HUNG_AFTER = 30.0
# How often the loops are looked at when systemd asks for no pets more often.
CHECK_INTERVAL = 1.0


def stale_loop(beats: Iterable[tuple[str, float]], now: float, after: float = HUNG_AFTER) -> str | None:
    """Which of these loops ((name, time.monotonic() it last came round)) has not come
    round for `after` s, said for a log line; None when every one has."""
    for loop, beat_at in beats:
        if now - beat_at > after:
            return f"{loop} has not come round for {now - beat_at:.0f} s"
    return None


def notify_address(value: str) -> str | bytes:
    """NOTIFY_SOCKET as a socket address: a path, or '@name' for Linux's abstract
    namespace (a leading NUL)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class ServiceWatchdog:
    def __init__(
        self,
        address: str | bytes | None,
        watchdog_interval: float | None,
    ) -> None:
        """`address`: where notifications go (None: nowhere); `watchdog_interval`: s
        between pets (None: systemd asked for none)."""
        self._address = address
        self._interval = watchdog_interval
        self._socket: socket.socket | None = None
        if address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # What is watched: set by `watch` (a standby watches nothing but itself).
        self._ready: Callable[[], bool] = lambda: False
        self._hung: Callable[[], str | None] = lambda: None
        self._on_hung: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._told_ready = False
        self._send_failed = False
        self._hung_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="officegw-watchdog", daemon=True)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ServiceWatchdog:
        """As systemd sets it up: NOTIFY_SOCKET, and WATCHDOG_USEC (with WATCHDOG_PID,
        when set, naming this process) for the watchdog."""
        socket_name = environ.get("NOTIFY_SOCKET") or None
        interval = None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            interval = int(usec) / 1e6 / 2
        return cls(notify_address(socket_name) if socket_name else None, interval)

    def watch(
        self,
        ready: Callable[[], bool],
        hung: Callable[[], str | None],
        on_hung: Callable[[str], None] | None = None,
    ) -> None:
        """From now on: READY=1 once `ready()` (once per process: a standby that takes
        over has told it), pets only while `hung()` is None, and `on_hung(reason)` once
        when it is not."""
        with self._lock:
            self._ready, self._hung, self._on_hung = ready, hung, on_hung

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._send("STOPPING=1")
        if self._socket is not None:
            self._socket.close()

    def check(self) -> None:
        """One look: READY=1 once ready, a pet unless hung (and `on_hung` once)."""
        with self._lock:
            ready, hung, on_hung = self._ready, self._hung, self._on_hung
        if not self._told_ready and ready():
            self._told_ready = True
            self._send("READY=1")
        reason = hung()
        if reason is None:
            if self._hung_reason is not None:
                log.warning(kv("gateway loops come round again", was=self._hung_reason))
                self._hung_reason = None
            if self._interval is not None:
                self._send("WATCHDOG=1")
            return
        if self._hung_reason is None:
            self._hung_reason = reason
            log.error(
                kv(
                    "gateway hung: no more watchdog pets (systemd restarts it after WatchdogSec)",
                    reason=reason,
                    watchdog=self._interval is not None,
                )
            )
            if on_hung is not None:
                on_hung(reason)

    def _run(self) -> None:
        period = CHECK_INTERVAL if self._interval is None else min(CHECK_INTERVAL, self._interval)
        while True:
            try:
                self.check()
            except Exception:
                log.exception("watchdog check failed")
            if self._stop.wait(period):
                return

    def _send(self, message: str) -> None:
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:  # systemd gone or the socket not ours: nothing to tell
            if not self._send_failed:  # once, not once a second
                log.warning(kv("service notifications not sent", message=message, error=str(exc)))
            self._send_failed = True
        else:
            self._send_failed = False
