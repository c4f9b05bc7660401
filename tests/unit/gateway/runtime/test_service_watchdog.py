"""systemd's notifications on a real datagram socket, and a gateway (real threads, a
FakeTransport) whose ticker hangs on the live-state lock: the pets stop, `on_hung`
is told once, and they start again when it comes round."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config import settings_from_dict
from gateway.runtime.gateway import Gateway
from gateway.runtime.service_watchdog import ServiceWatchdog, notify_address, stale_loop
from tests.fakes import FakeTransport
from tests.support import wait_until


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[socket.socket]:
    """The socket systemd listens on (NOTIFY_SOCKET)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(0.0)
    yield listener
    listener.close()


def received(listener: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(listener.recv(1024).decode())
        except BlockingIOError:
            return messages


def test_the_first_loop_that_has_not_come_round_is_named() -> None:
    beats = [("ticker", 100.0), ("history writer", 95.0), ("event feed", 90.0)]
    assert stale_loop(beats, 115.0, after=30) is None
    assert stale_loop(beats, 121.0, after=30) == "event feed has not come round for 31 s"
    assert stale_loop(beats, 131.0, after=30) == "ticker has not come round for 31 s"
    assert stale_loop([], 1e9) is None


def test_the_environment_says_where_and_how_often(tmp_path: Path) -> None:
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@abstract/name") == b"\0abstract/name"
    here = str(os.getpid())
    cases = [
        ({}, None),
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000"}, 15.0),
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": here}, 15.0),
        # The watchdog is another process's (a parent that set it up for itself).
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "zero"}, None),
    ]
    for environ, interval in cases:
        watchdog = ServiceWatchdog.from_environment(environ)
        assert watchdog._interval == interval, environ
        watchdog.stop()


def test_ready_once_started_pets_while_the_loops_come_round(systemd: socket.socket) -> None:
    started, stuck = threading.Event(), threading.Event()
    told: list[str] = []
    watchdog = ServiceWatchdog(systemd.getsockname(), 15.0)
    watchdog.watch(started.is_set, lambda: "ticker stuck" if stuck.is_set() else None, told.append)
    watchdog.check()
    assert received(systemd) == ["WATCHDOG=1"]  # starting: alive, not ready yet
    started.set()
    watchdog.check()
    watchdog.check()
    assert received(systemd) == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
    stuck.set()
    watchdog.check()
    watchdog.check()
    assert received(systemd) == [] and told == ["ticker stuck"]
    stuck.clear()
    watchdog.check()
    assert received(systemd) == ["WATCHDOG=1"]
    watchdog.stop()
    assert received(systemd) == ["STOPPING=1"]


def test_without_a_watchdog_only_ready_and_stopping(systemd: socket.socket) -> None:
    watchdog = ServiceWatchdog(systemd.getsockname(), None)
    watchdog.watch(lambda: True, lambda: None)
    watchdog.check()
    watchdog.check()
    watchdog.stop()
    assert received(systemd) == ["READY=1", "STOPPING=1"]


def test_a_gateway_whose_ticker_is_stuck_is_hung(tmp_path: Path, systemd: socket.socket) -> None:
    config = {
        "storage": {"path": str(tmp_path / "officegw.db")},
        "occupancy": {"vacancy_timeout": 1},  # a tick every 0.1 s
        "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]},
    }
    gateway = Gateway(settings_from_dict(config), transport=FakeTransport(), clock=ManualClock())
    assert gateway.hung(after=0.5) is None and not gateway.running  # not started: never hung
    told: list[str] = []
    watchdog = ServiceWatchdog(systemd.getsockname(), 0.05)
    watchdog.watch(lambda: gateway.running, lambda: gateway.hung(after=0.5), told.append)
    gateway.start()
    watchdog.start()
    try:
        wait_until(lambda: "READY=1" in received(systemd), 5, "READY=1")
        with gateway._live.lock:  # the ticker waits for it from its next tick on
            wait_until(lambda: told, 5, "the gateway found hung")
            received(systemd)  # pets sent before it was found
            assert told[0].startswith("ticker has not come round for ")
            watchdog.check()
            assert received(systemd) == []  # no pets while hung
        wait_until(lambda: "WATCHDOG=1" in received(systemd), 5, "pets again")
        assert len(told) == 1
    finally:
        watchdog.stop()
        gateway.stop()
    assert gateway.hung(after=0.0) is None  # stopping is not hanging


def test_a_socket_nobody_listens_on_is_told_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    watchdog = ServiceWatchdog(str(tmp_path / "nobody"), 0.5)
    watchdog.watch(lambda: True, lambda: None)
    for _ in range(5):
        watchdog.check()
    watchdog.stop()
    assert sum("service notifications not sent" in r.getMessage() for r in caplog.records) == 1
