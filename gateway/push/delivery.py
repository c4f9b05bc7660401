"""One webhook POST, with what a receiver we do not control may try kept in bounds.

The receiver is a stranger (an admin typed its URL): redirects are not followed (a
3xx would send the signed body somewhere nobody chose), no proxy or netrc comes from
the environment, the whole attempt has one deadline (`timeout`; a receiver that drips
its answer a byte at a time is cut off), and at most `MAX_RESPONSE_BYTES` of the
answer are read, raw (no decompression), and only to end the exchange cleanly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    # Imported where used: httpx (with the rich and pygments its command line pulls
    # in) is a tenth of the gateway's import time, and most gateways have no webhooks.
    import httpx

MAX_RESPONSE_BYTES = 4096
MAX_URL_LENGTH = 2048
# What the delivery log keeps of an error message.
MAX_ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class Attempt:
    status: int | None
    error: str | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.error is None


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether `host` is one of `allowed` (or under a ".domain" of it); any host when empty."""
    if not allowed:
        return True
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False


def url_problem(url: str, allowed_hosts: Sequence[str] = ()) -> str | None:
    """Why `url` cannot be a webhook receiver, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        # It would be shown by GET /v1/webhooks; the secret is how receivers authenticate us.
        return "must not carry credentials (user:password@); receivers check the signature"
    if parts.fragment:
        return "must not have a #fragment"
    if port == 0:
        return "port must be from 1 to 65535"
    if not host_allowed(parts.hostname, allowed_hosts):
        return "host not in push.webhooks.allowed_hosts"
    return None


def new_client(timeout: float) -> httpx.Client:
    import httpx

    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
        headers={"user-agent": "officegw-webhooks/1"},
    )


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    import httpx

    started = time.perf_counter()
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            received = 0
            # (A transport may hand over a body it read already: httpx.MockTransport.)
            for chunk in () if response.is_stream_consumed else response.iter_raw():
                received += len(chunk)
                if received >= MAX_RESPONSE_BYTES or time.perf_counter() - started > timeout:
                    break
            status = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as exc:
        return Attempt(None, _short(f"{type(exc).__name__}: {exc}"), time.perf_counter() - started)
    duration = time.perf_counter() - started
    if 200 <= status < 300:
        return Attempt(status, None, duration)
    if 300 <= status < 400:
        return Attempt(status, f"HTTP {status}: redirects are not followed", duration)
    return Attempt(status, f"HTTP {status}", duration)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
