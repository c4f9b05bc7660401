"""Launch and stop MQTT brokers as child processes, for tests, the demo and benchmarks.

Two kinds: mosquitto (MQTT 5 and 3.1.1, fast, the reference) when installed, and
amqtt (pure Python, MQTT 3.1.1 only, ~5-10x slower) as a fallback; see
PERFORMANCE.md. Both run as child processes with the same life cycle, so that a
test can kill or restart "the broker" without caring which one it is, and the
broker never shares the gateway's GIL.

Every broker owns a private temporary directory (config, persistence, log) and
is stopped by its own PID, never by name. Its output goes to a log file, not a
pipe: a pipe nobody reads fills up and blocks the broker mid-test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Literal, Protocol, Self

BrokerKind = Literal["mosquitto", "amqtt"]

# How often readiness is re-checked while waiting: short enough that a test
# pays almost nothing over the broker's real start-up time.
_POLL_INTERVAL = 0.02
_LOG_TAIL_CHARS = 2000


class MqttBroker(Protocol):
    """What tests, the demo and benchmarks need of a running broker, whichever it is
    (`BrokerProcess` here, `tests.rabbitmq.RabbitNode` for RabbitMQ)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    @property
    def mqtt5(self) -> bool:
        """Whether clients may speak MQTT 5 to it (else 3.1.1)."""
        ...


class RestartableBroker(MqttBroker, Protocol):
    """A broker a test may stop, crash and start again on the same port (and data,
    where it keeps any): `BrokerProcess` and `tests.rabbitmq.RabbitNode`."""

    def start(self, timeout: float = ...) -> Self: ...

    def stop(self, timeout: float = ...) -> None: ...

    def kill(self) -> None: ...

    def restart(self, timeout: float = ...) -> Self: ...


class BrokerStartError(RuntimeError):
    """The broker process exited or could not listen; carries the end of its log."""

    def __init__(self, kind: str, message: str, log_tail: str = "") -> None:
        self.kind = kind
        self.log_tail = log_tail
        detail = f"\n--- {kind} log (tail) ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{kind}: {message}{detail}")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (bind to 0, read it, close)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether a broker could listen on host:port now.

    SO_REUSEADDR mirrors what mosquitto and amqtt do, so connections of a
    stopped broker lingering in TIME_WAIT do not count as "in use": that is what
    lets `BrokerProcess.restart()` come back on the same port at once.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def mqtt_handshake(host: str, port: int) -> bool:
    """Whether an MQTT 3.1.1 CONNECT on host:port is accepted (CONNACK 0).

    Readiness is checked at the MQTT level, not just TCP: it proves the broker
    speaks MQTT, and a bare connect-and-close makes amqtt log a spurious ERROR
    ("No data to decode MQTT packet fixed header") on every start.
    """
    client_id = f"officegw-ready-probe-{os.getpid()}".encode()
    # Protocol "MQTT" level 4 (3.1.1), clean session, keepalive 10 s.
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(client_id).to_bytes(2, "big") + client_id
    connect = bytes([0x10, len(body)]) + body  # body < 128 bytes: one-byte length
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(connect)
            connack = _recv_exactly(sock, 4)
            if connack[:2] != b"\x20\x02" or connack[3:4] != b"\x00":
                return False
            sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean exit
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port.

    Raises TimeoutError when nothing does within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while not _accepts_connections(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:g} s")
        time.sleep(_POLL_INTERVAL)


def mosquitto_executable() -> str | None:
    """Path of the mosquitto binary; Debian installs it in /usr/sbin, often not on PATH."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# A mosquitto.conf option's value: written as is (True/False as true/false); None
# leaves the option out, so mosquitto's own default applies.
OptionValue = str | int | bool | None

# The options that make the loss-free broker below a stock one again: with these
# overrides a `BrokerProcess` runs on mosquitto's own defaults (max_queued_messages
# 1000, max_inflight_messages 20, no TCP_NODELAY), as an untuned deployment does.
MOSQUITTO_DEFAULTS: Mapping[str, OptionValue] = MappingProxyType(
    {
        "set_tcp_nodelay": None,
        "max_queued_messages": None,
        "max_queued_bytes": None,
        "max_inflight_messages": None,
    }
)


def _option_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mosquitto_config(
    port: int,
    host: str = "127.0.0.1",
    *,
    persistence_dir: Path | None = None,
    autosave_interval: int = 1,
    user: str | None = None,
    options: Mapping[str, OptionValue] | None = None,
) -> str:
    """mosquitto 2.x configuration text for a private, anonymous, loss-free broker.

    `user` matters only when running as root: mosquitto then switches to the
    `mosquitto` user, which cannot write a persistence database in a private
    temporary directory owned by root. Passing the current user keeps it.

    `options` replaces or adds global options by name, e.g.
    `{"max_queued_messages": 10, "sys_interval": 1}`; a None value leaves the
    option out (mosquitto's default; see `MOSQUITTO_DEFAULTS`).
    """
    settings: dict[str, OptionValue] = {
        # mosquitto 2.x given a config file listens nowhere and refuses
        # anonymous clients unless told otherwise.
        "listener": f"{port} {host}",
        "allow_anonymous": True,
        # Nagle + delayed ACK add ~5 ms per hop on the broker's sockets
        # (PERFORMANCE.md, latency); clients must set TCP_NODELAY on their side too.
        "set_tcp_nodelay": True,
        # Per-client queue above the in-flight window. The default of 1000
        # silently dropped 14-31 % of a burst to a slow Python subscriber
        # (PERFORMANCE.md). 0 = no maximum (mosquitto.conf(5), 2.0.11): a slow or
        # offline persistent client may grow the broker's memory, which on a test,
        # demo or benchmark broker beats losing messages without a trace.
        "max_queued_messages": 0,
        # The same limit counted in bytes; 0 = no maximum (also the default,
        # made explicit so the config says it never drops).
        "max_queued_bytes": 0,
        # Unacknowledged QoS 1/2 messages per client at once (default 20). With
        # 20 a QoS 1 stream stalls on round trips (~14k msgs/s); ~1000 reaches
        # ~24k (PERFORMANCE.md) and still bounds what is resent after a reconnect.
        # mosquitto also announces it to MQTT 5 publishers as Receive Maximum.
        "max_inflight_messages": 1000,
        # Readable timestamps in the log file instead of epoch seconds.
        "log_timestamp_format": "%Y-%m-%dT%H:%M:%S",
        "user": user,
    }
    if persistence_dir is not None:
        settings |= {
            # Sessions, subscriptions, retained and queued messages survive a
            # restart: that is what the delivery-guarantee tests need.
            "persistence": True,
            # Older mosquitto versions join location and file name without a
            # separator, so the slash is required; 2.x tolerates the double one.
            "persistence_location": f"{persistence_dir}/",
            # mosquitto saves on a clean exit anyway; a short interval also covers
            # a broker that is SIGKILLed, as crash tests do.
            "autosave_interval": autosave_interval,
        }
    settings |= options or {}
    lines = [f"{name} {_option_text(value)}" for name, value in settings.items() if value is not None]
    return "\n".join(lines) + "\n"


def _tail(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-chars:].decode("utf-8", errors="replace")


def _reap_orphan(proc: subprocess.Popen[bytes], directory: Path | None) -> None:
    """Last-resort cleanup when a started BrokerProcess is garbage-collected or
    the interpreter exits without `stop()`: a leaked broker would hold its port."""
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class BrokerProcess:
    """One MQTT broker child process on a fixed host:port; a context manager.

    The port is chosen once (at construction when not given) and kept across
    `restart()`, so clients configured with `url` reconnect to the same place.
    """

    def __init__(
        self,
        kind: BrokerKind,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        persistence: bool = False,
        keep_dir: bool = False,
        executable: str | None = None,
        options: Mapping[str, OptionValue] | None = None,
    ) -> None:
        if kind not in ("mosquitto", "amqtt"):
            raise ValueError(f"unknown broker kind {kind!r}")
        if persistence and kind != "mosquitto":
            raise ValueError("persistence is only supported with mosquitto")
        if options and kind != "mosquitto":
            raise ValueError("config options are only supported with mosquitto")
        if kind == "mosquitto":
            executable = executable or mosquitto_executable()
            if executable is None:
                raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self.kind: BrokerKind = kind
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.persistence = persistence
        self.keep_dir = keep_dir
        # mosquitto.conf options over `mosquitto_config`'s (see there).
        self.options: Mapping[str, OptionValue] = dict(options or {})
        self._executable = executable
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., BrokerProcess] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def mqtt5(self) -> bool:
        """Whether clients may speak MQTT 5 to this broker (amqtt is 3.1.1 only)."""
        return self.kind == "mosquitto"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def directory(self) -> Path | None:
        """The private directory (config, persistence, log); None when removed."""
        return self._dir

    @property
    def log_path(self) -> Path | None:
        return self._dir / "broker.log" if self._dir is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The end of the broker's log, for assertion messages and bug reports."""
        path = self.log_path
        return _tail(path, chars) if path is not None else ""

    def _command(self, directory: Path) -> tuple[list[str], dict[str, str] | None]:
        if self.kind == "mosquitto":
            assert self._executable is not None
            conf = directory / "mosquitto.conf"
            conf.write_text(
                mosquitto_config(
                    self.port,
                    self.host,
                    persistence_dir=directory if self.persistence else None,
                    user=_current_user(),
                    options=self.options,
                )
            )
            return [self._executable, "-c", str(conf)], None
        # `-m simulators.amqtt_broker` must import this package even when it is not
        # installed (a plain checkout): put its parent directory on the path.
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        argv = [
            sys.executable,
            "-m",
            "simulators.amqtt_broker",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "INFO",
        ]
        return argv, env

    def start(self, timeout: float = 10.0) -> Self:
        """Spawn the broker and return once it accepts MQTT connections.

        Raises BrokerStartError if the port is taken or the broker exits, and
        TimeoutError (after stopping it) if it does not listen within `timeout`.
        """
        if self.is_running():
            raise RuntimeError(f"{self.kind} broker already running (pid {self.pid})")
        # Checked first because otherwise another listener on the port would
        # look like our broker being ready.
        if not port_is_free(self.host, self.port):
            raise BrokerStartError(self.kind, f"port {self.host}:{self.port} is already in use")
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=f"officegw-{self.kind}-"))
        directory = self._dir
        argv, env = self._command(directory)
        # Appending keeps the log of earlier runs across restart(). The parent's
        # handle is closed right after spawning; the child keeps its own copy.
        with open(directory / "broker.log", "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
                env=env,
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _reap_orphan, proc, None if self.keep_dir else directory)
        try:
            self._wait_ready(proc, timeout)
        except BaseException:
            self._terminate(timeout=5.0)
            raise
        return self

    def _wait_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not mqtt_handshake(self.host, self.port):
            code = proc.poll()
            if code is not None:
                raise BrokerStartError(
                    self.kind, f"exited with code {code} before listening", self.log_tail()
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.kind} did not listen on {self.host}:{self.port} within "
                    f"{timeout:g} s\n--- log (tail) ---\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)

    def _terminate(self, timeout: float) -> None:
        """End the process (SIGTERM, then SIGKILL) but keep the directory."""
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is None:
            return
        if proc.poll() is None:
            # SIGTERM first: mosquitto writes its persistence file on a clean exit.
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker and remove its directory unless `keep_dir`; idempotent."""
        self._terminate(timeout)
        if self._dir is not None and not self.keep_dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; the directory stays for `start()`."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def restart(self, timeout: float = 10.0) -> Self:
        """Stop, then start again on the same port and directory (so persisted
        sessions and retained messages come back when persistence is on)."""
        self._terminate(timeout=5.0)
        return self.start(timeout=timeout)

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<BrokerProcess {self.kind} {self.url} {state}>"


def start_mosquitto(
    port: int | None = None,
    *,
    persistence: bool = False,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
    options: Mapping[str, OptionValue] | None = None,
) -> BrokerProcess:
    """Start a private mosquitto (FileNotFoundError when it is not installed); `options`
    override mosquitto.conf lines (`mosquitto_config`), e.g. `MOSQUITTO_DEFAULTS`."""
    return BrokerProcess("mosquitto", port, host, persistence=persistence, options=options).start(timeout)


def start_embedded_broker(
    port: int | None = None,
    *,
    prefer_mosquitto: bool = True,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> BrokerProcess:
    """Start mosquitto when installed (and preferred), else the pure-Python amqtt.

    Callers must check `.mqtt5` before speaking MQTT 5: amqtt only knows 3.1.1.
    """
    if prefer_mosquitto and mosquitto_executable() is not None:
        return start_mosquitto(port, host=host, timeout=timeout)
    return BrokerProcess("amqtt", port, host).start(timeout)
