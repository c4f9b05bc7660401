"""One webhook POST against receivers that misbehave on purpose (raw sockets on
127.0.0.1): an answer dripped byte by byte is cut at the deadline, a huge one is not
read past 4 KiB, and URLs are checked before anything is sent."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.push.delivery import MAX_RESPONSE_BYTES, new_client, post, url_problem

Behaviour = Callable[[socket.socket], None]


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], str]]:
    """Starts a one-connection-at-a-time server whose answer is `behaviour(conn)`."""
    servers: list[tuple[socket.socket, threading.Thread]] = []
    stop = threading.Event()

    def start(behaviour: Behaviour) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.recv(65536)  # the request (small enough for one read)
                    # OSError: the client went away, which is what it was tested for.
                    with contextlib.suppress(OSError):
                        behaviour(conn)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((listener, thread))
        return f"http://127.0.0.1:{listener.getsockname()[1]}/hook"

    yield start
    stop.set()
    for listener, thread in servers:
        thread.join(2)
        listener.close()


def drip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
    for _ in range(100):
        conn.sendall(b"x")
        time.sleep(0.1)


def flood(conn: socket.socket) -> None:
    size = 50 * 1024 * 1024
    conn.sendall(f"HTTP/1.1 500 Oops\r\ncontent-length: {size}\r\n\r\n".encode())
    chunk = b"y" * 65536
    for _ in range(size // len(chunk)):
        conn.sendall(chunk)


def test_an_answer_dripped_slowly_is_cut_at_the_deadline(raw_server: Callable[[Behaviour], str]) -> None:
    url = raw_server(drip)
    with new_client(1.0) as client:
        started = time.perf_counter()
        attempt = post(client, url, b"{}", {}, 1.0)
    # Each byte comes well within the read timeout; the attempt's own deadline ends it.
    assert time.perf_counter() - started < 2.0
    assert attempt.status == 200 and attempt.ok


def test_a_huge_answer_is_not_read(raw_server: Callable[[Behaviour], str]) -> None:
    url = raw_server(flood)
    with new_client(5.0) as client:
        started = time.perf_counter()
        attempt = post(client, url, b"{}", {}, 5.0)
    assert (attempt.status, attempt.error) == (500, "HTTP 500")
    assert time.perf_counter() - started < 2.0
    assert MAX_RESPONSE_BYTES <= 65536


def test_a_refused_connection_is_a_failure_with_its_reason() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with new_client(1.0) as client:
        attempt = post(client, f"http://127.0.0.1:{port}/hook", b"{}", {}, 1.0)
    assert attempt.status is None and attempt.error is not None and "ConnectError" in attempt.error


URLS = [
    ("http://127.0.0.1:8080/hook", None),
    ("https://bms.example/officegw?site=hq", None),
    ("ftp://bms.example/", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("javascript:alert(1)", "must be an http:// or https:// URL"),
    ("http:///hook", "must name a host"),
    ("https://user:secret@bms.example/", "must not carry credentials"),
    ("http://bms.example/#x", "must not have a #fragment"),
    ("http://bms.example:99999/", "not a valid URL"),
    ("http://bms.example:0/", "port must be from 1 to 65535"),
    ("http://bms.example/" + "a" * 3000, "at most 2048 characters"),
]


@pytest.mark.parametrize(("url", "problem"), URLS, ids=[u[:40] for u, _ in URLS])
def test_url_checks(url: str, problem: str | None) -> None:
    found = url_problem(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
