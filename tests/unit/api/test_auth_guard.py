"""The auth guard: lockout per client address, throttled audit of refused calls."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi import HTTPException

from api.auth import MAX_TRACKED_CLIENTS, AuthGuard, Principal
from gateway.config import ApiSection


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Audit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, actor: str, action: str, room_id: str | None, **detail: Any) -> None:
        self.events.append({"actor": actor, "action": action, "room": room_id, **detail})


def guard(**api: Any) -> tuple[AuthGuard, Clock, Audit]:
    keys = [{"name": "ops", "sha256": hashlib.sha256(b"ops-key").hexdigest(), "role": "operator"}]
    clock, audit = Clock(), Audit()
    return AuthGuard(ApiSection.model_validate({"keys": keys, **api}), audit, clock), clock, audit


def scope(client: str = "10.0.0.1", path: str = "/v1/rooms") -> dict[str, Any]:
    return {"type": "http", "client": (client, 50000), "method": "GET", "path": path}


def status_of(g: AuthGuard, authorization: str | None, client: str = "10.0.0.1") -> int:
    try:
        g.authenticate(scope(client), authorization)
    except HTTPException as exc:
        return exc.status_code
    return 200


def test_a_good_key_is_a_principal() -> None:
    g, _, _ = guard()
    assert g.authenticate(scope(), "Bearer ops-key") == Principal("ops", "operator", None)


def test_failures_within_the_window_lock_the_address_out_then_it_expires() -> None:
    g, clock, audit = guard(auth_failure_limit=3, auth_failure_window=10, auth_lockout=30)
    assert [status_of(g, "Bearer nope") for _ in range(3)] == [401, 401, 401]
    # Before the key is looked at: a good key from that address is refused too...
    assert status_of(g, "Bearer ops-key") == 429
    # ...but not from another address.
    assert status_of(g, "Bearer ops-key", client="10.0.0.2") == 200
    assert [e["action"] for e in audit.events] == ["auth_failed", "auth_locked_out"]
    with pytest.raises(HTTPException) as refused:
        g.authenticate(scope(), "Bearer ops-key")
    assert refused.value.headers == {"Retry-After": "30"}
    clock.now += 29.5
    assert status_of(g, "Bearer ops-key") == 429
    clock.now += 1
    assert status_of(g, "Bearer ops-key") == 200


def test_failures_spread_wider_than_the_window_do_not_lock_out() -> None:
    g, clock, _ = guard(auth_failure_limit=3, auth_failure_window=10)
    for _ in range(10):
        assert status_of(g, None) == 401
        clock.now += 6


def test_a_limit_of_zero_never_locks_out() -> None:
    g, _, _ = guard(auth_failure_limit=0)
    assert {status_of(g, "Bearer nope") for _ in range(100)} == {401}


def test_identical_refusals_are_audited_once_a_minute_with_a_count() -> None:
    g, clock, audit = guard(auth_failure_limit=0)
    for _ in range(5):
        status_of(g, "Bearer nope")
    assert len(audit.events) == 1
    assert audit.events[0] == {
        "actor": "anonymous",
        "action": "auth_failed",
        "room": None,
        "client": "10.0.0.1",
        "method": "GET",
        "path": "/v1/rooms",
        "status": 401,
        "reason": "unknown API key",
    }
    # Another reason is another line.
    status_of(g, None)
    assert audit.events[-1]["reason"] == "missing bearer key"
    clock.now += 61
    status_of(g, "Bearer nope")
    assert audit.events[-1]["repeats"] == 4


def test_forbidden_calls_are_audited_with_the_key_name() -> None:
    g, _, audit = guard()
    ops = Principal("ops", "operator", None)
    error = g.forbidden(scope(path="/v1/rules/reload"), ops, "needs role 'admin'")
    assert error.status_code == 403
    assert audit.events[0]["actor"] == "ops"
    assert audit.events[0]["action"] == "forbidden"
    assert audit.events[0]["path"] == "/v1/rules/reload"


def test_memory_stays_bounded_under_failures_from_many_addresses() -> None:
    g, clock, _ = guard(auth_failure_limit=5, auth_failure_window=1)
    for n in range(MAX_TRACKED_CLIENTS + 500):
        status_of(g, "Bearer nope", client=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        clock.now += 0.001
    assert len(g._failures) <= MAX_TRACKED_CLIENTS


def test_without_keys_everyone_is_the_loopback_admin() -> None:
    g = AuthGuard(ApiSection(), Audit())
    assert g.authenticate(scope(), None).role == "admin"


def test_recognise_looks_without_recording() -> None:
    g, _, audit = guard(auth_failure_limit=2, auth_failure_window=10, auth_lockout=30)
    assert g.recognise(scope(), "Bearer ops-key") == Principal("ops", "operator", None)
    # Refusals are None, and count for nothing: the route that answers them counts them.
    refused = ("Bearer nope", "Bearer nope", None, "ops-key")
    assert [g.recognise(scope(), key) for key in refused] == [None] * 4
    assert audit.events == []
    assert status_of(g, "Bearer nope") == 401
    # Locked out (the second failure): no longer recognised, even with a good key.
    assert status_of(g, "Bearer nope") == 401
    assert g.recognise(scope(), "Bearer ops-key") is None
    assert g.recognise(scope(client="10.0.0.2"), "Bearer ops-key") == Principal("ops", "operator", None)
