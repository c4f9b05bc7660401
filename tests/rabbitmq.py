"""Private RabbitMQ nodes for tests, started from Debian's `rabbitmq-server` with its MQTT plugin.

A node gets its own temporary directory (HOME with its own Erlang cookie, config,
enabled_plugins, mnesia and log), a unique node name (`officegw-test-<hex>@localhost`),
random loopback ports for AMQP, MQTT and Erlang distribution, no management plugin,
and anonymous MQTT (as the `guest` user, which RabbitMQ allows from loopback only).

Erlang nodes find each other through epmd, which is one per machine and port: the
machine's own RabbitMQ (5672, `rabbit@localhost`) registers with the system epmd on
4369. Ours run their own epmd, started and stopped by us, on a random port
(`ERL_EPMD_PORT`), and never start one themselves (`-start_epmd false`): the system
node and its epmd are never touched, and nothing of ours outlives the session.

`RabbitNode` mirrors `simulators.broker.BrokerProcess` (`host`, `port`, `url`,
`mqtt5`, `pid`, `start`, `stop`, `kill`, `restart`, `log_tail`), so a test written
for mosquitto takes either. Its data stays across `stop()`/`kill()` and `start()`
(broker restart tests); `close()` removes it. `RabbitCluster` joins nodes with
`rabbitmqctl join_cluster`, sharing the epmd and the cookie.

Start-up on this machine (2 cores): ~9 s for a new node, ~4 s for a restart, ~2.5 s
for a clean stop (SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from simulators.broker import free_port, mqtt_handshake, port_is_free

SCRIPTS = Path("/usr/lib/rabbitmq/bin")
_POLL_INTERVAL = 0.05


def rabbitmq_installed() -> bool:
    return (SCRIPTS / "rabbitmq-server").exists() and epmd_executable() is not None


def epmd_executable() -> str | None:
    found = shutil.which("epmd") or next(iter(sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None)
    return str(found) if found is not None else None


def _clean_environment() -> dict[str, str]:
    """The environment without anything that would point a node or rabbitmqctl at
    another node's settings (RABBITMQ_*, ERL_*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_", "CONF_ENV"))}


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Epmd:
    """An Erlang port mapper of our own on a random loopback port, in the foreground
    (a child we stop by its PID, unlike `epmd -daemon`)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        exe = epmd_executable()
        if exe is None:
            raise FileNotFoundError("epmd not found (apt-get install rabbitmq-server)")
        self.host = host
        self.port = free_port(host)
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [exe, "-port", str(self.port), "-address", host],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._finalizer = weakref.finalize(self, _stop_process, self._proc, 5.0)
        deadline = time.monotonic() + 10
        while not _accepts(host, self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"epmd did not listen on {host}:{self.port}")
            time.sleep(0.01)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        self._finalizer()
        self._proc = None


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _reap(proc_holder: list[subprocess.Popen[bytes]], directory: Path) -> None:
    for proc in proc_holder:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
    shutil.rmtree(directory, ignore_errors=True)


class RabbitNode:
    """One RabbitMQ node with the MQTT plugin on random loopback ports; see the module docstring."""

    kind = "rabbitmq"
    # RabbitMQ 3.x's MQTT plugin speaks 3.1.1 only (MQTT 5 came with 3.13).
    mqtt5 = False
    # Durable queues (persistent MQTT sessions) and the retained store are on disk.
    persistence = True

    def __init__(
        self,
        *,
        epmd: Epmd,
        cookie: str,
        host: str = "127.0.0.1",
        name: str | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        if not rabbitmq_installed():
            raise FileNotFoundError("rabbitmq-server not installed (apt-get install rabbitmq-server)")
        self.host = host
        self.epmd = epmd
        self.name = name or f"officegw-test-{secrets.token_hex(4)}@localhost"
        self.port = free_port(host)  # MQTT
        self.amqp_port = free_port(host)
        self.dist_port = free_port(host)
        self.directory = Path(tempfile.mkdtemp(prefix="officegw-rabbitmq-"))
        self._extra_config = tuple(extra_config)
        cookie_file = self.directory / ".erlang.cookie"
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)  # Erlang refuses a cookie others may read
        (self.directory / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        (self.directory / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (self.directory / "rabbitmq.conf").write_text(self.config_text())
        self._proc: subprocess.Popen[bytes] | None = None
        # Seconds the last `start()` took until MQTT answered (the suite reports it).
        self.started_in: float | None = None
        # Every process this node started, for the finalizer (a leaked node holds ports).
        self._procs: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, _reap, self._procs, self.directory)

    def config_text(self) -> str:
        """rabbitmq.conf: the settings the README recommends for the gateway, on our ports."""
        lines = [
            f"listeners.tcp.default = {self.host}:{self.amqp_port}",
            f"mqtt.listeners.tcp.default = {self.host}:{self.port}",
            "mqtt.allow_anonymous = true",
            "mqtt.vhost = /",
            "mqtt.exchange = amq.topic",
            # Unacknowledged messages per MQTT subscriber (default 10): the gateway
            # acknowledges after the history commit, as with mosquitto's in-flight window.
            "mqtt.prefetch = 1000",
            # How long a persistent session outlives its client (default 24 h): the
            # gateway's mqtt.session_expiry default, 7 days.
            "mqtt.subscription_ttl = 604800000",
            # Many nodes share this machine: free disk and memory alarms would block
            # publishers for reasons of no interest to a test.
            "disk_free_limit.absolute = 10MB",
            "log.console = false",
            "log.file.level = info",
            *self._extra_config,
        ]
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def environment(self) -> dict[str, str]:
        d = self.directory
        return _clean_environment() | {
            "HOME": str(d),  # the Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd.port),
            "ERL_EPMD_ADDRESS": self.epmd.host,
            # `rabbitmq-server` then execs erl (so our PID is the VM's) instead of
            # running it in the background behind a shell that traps signals.
            "RABBITMQ_ALLOW_INPUT": "1",
            "RABBITMQ_SERVER_START_ARGS": "-noinput",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
            ),
        }

    def start(self, timeout: float = 60.0) -> Self:
        """Boot the node (on its existing data, if any) and return once MQTT answers."""
        if self.is_running():
            raise RuntimeError(f"rabbitmq node {self.name} already running (pid {self.pid})")
        for port in (self.port, self.amqp_port, self.dist_port):
            if not port_is_free(self.host, port):
                raise RuntimeError(f"port {self.host}:{port} is already in use")
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(SCRIPTS / "rabbitmq-server")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=self.environment(),
            )
        self._proc = proc
        self._procs.append(proc)
        began = time.monotonic()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self.started_in = time.monotonic() - began
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not mqtt_handshake(self.host, self.port):
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"rabbitmq node {self.name} exited before listening\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"rabbitmq node {self.name}: no MQTT on {self.host}:{self.port} within "
                    f"{timeout:g} s\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM, which RabbitMQ handles like `rabbitmqctl stop`);
        the data stays for `start()`. Idempotent."""
        proc, self._proc = self._proc, None
        _stop_process(proc, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data stays for `start()`."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def restart(self, timeout: float = 60.0) -> Self:
        """Stop cleanly, then start again on the same ports and data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and remove the node's directory."""
        self.stop()
        self._finalizer()

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """`rabbitmqctl -n <this node> ARGS`; its output, or RuntimeError with it."""
        env = self.environment()
        # rabbitmqctl is an Erlang node too; its own distribution port, not 35672 (the
        # machine's node's CLI range).
        cli_port = str(free_port(self.host))
        env |= {"RABBITMQ_CTL_DIST_PORT_MIN": cli_port, "RABBITMQ_CTL_DIST_PORT_MAX": cli_port}
        result = subprocess.run(
            [str(SCRIPTS / "rabbitmqctl"), "-n", self.name, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            cwd=self.directory,
            timeout=timeout,
            check=False,
        )
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}):\n{output}")
        return output

    def log_tail(self, chars: int = 2000) -> str:
        parts = []
        for path in (self.log_path, self.directory / "log" / f"{self.name}.log"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name} ---\n" + path.read_bytes()[-chars:].decode(errors="replace"))
        return "\n".join(parts)

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<RabbitNode {self.name} {self.url} {state}>"


class RabbitMQ(RabbitNode):
    """A standalone node with an epmd of its own; closing it stops both."""

    def __init__(self, *, host: str = "127.0.0.1", extra_config: Sequence[str] = ()) -> None:
        epmd = Epmd(host)
        try:
            super().__init__(epmd=epmd, cookie=secrets.token_hex(16), host=host, extra_config=extra_config)
        except BaseException:
            epmd.close()
            raise

    def close(self) -> None:
        super().close()
        self.epmd.close()


class RabbitCluster:
    """Nodes joined into one RabbitMQ cluster (`rabbitmqctl join_cluster`), sharing an
    epmd and an Erlang cookie; each has its own MQTT port."""

    def __init__(self, size: int = 2, *, host: str = "127.0.0.1", extra_config: Sequence[str] = ()) -> None:
        self.epmd = Epmd(host)
        cookie = secrets.token_hex(16)
        self.nodes = [RabbitNode(epmd=self.epmd, cookie=cookie, host=host, extra_config=extra_config)]
        self.nodes += [
            RabbitNode(epmd=self.epmd, cookie=cookie, host=host, extra_config=extra_config)
            for _ in range(size - 1)
        ]

    def start(self, timeout: float = 90.0) -> Self:
        first, *others = self.nodes
        first.start(timeout)
        for node in others:
            node.start(timeout)
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_ready(timeout)
        return self

    def running_nodes(self) -> list[str]:
        """The cluster's running members as the first running node sees them."""
        node = next(n for n in self.nodes if n.is_running())
        output = node.ctl("eval", "rabbit_nodes:all_running().")
        return sorted(n.name for n in self.nodes if n.name in output)

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.close()
        self.epmd.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
