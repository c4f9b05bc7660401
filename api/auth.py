"""Bearer-key authentication, roles (viewer < booking < operator < admin) and building scopes.

With no keys configured the API has no authentication; the config then refuses
to bind anything but loopback (see `Settings`).

Failed (401) and forbidden (403) calls are audited, one audit event per client,
path and outcome a minute (repeats are counted into the next one). A client
address with `api.auth_failure_limit` failed authentications within
`api.auth_failure_window` seconds gets 429 for `api.auth_lockout` seconds, decided
before its key is looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from starlette.types import Scope

from gateway.config import ApiSection
from gateway.logs import Throttle

ROLE_RANK = {"viewer": 0, "booking": 1, "operator": 2, "admin": 3}
# One audit event per (client, path, outcome) this often; repeats are counted.
AUDIT_INTERVAL = 60.0
# Client addresses whose failures are remembered at once (a bound on memory).
MAX_TRACKED_CLIENTS = 10_000
# Where a principal authenticated before the body was read waits for the route.
PRINCIPAL_SCOPE_KEY = "officegw.principal"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    # None: every building.
    buildings: frozenset[str] | None

    def can_see(self, building: str) -> bool:
        return self.buildings is None or building in self.buildings


ANONYMOUS_LOOPBACK = Principal("loopback", "admin", None)

# (actor, action, room, **detail), e.g. `Gateway.audit`.
Audit = Callable[..., None]


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class AuthGuard:
    """Authenticates requests, remembers failures per client address and audits
    refusals (throttled). Shared by the app's middleware and its dependencies."""

    def __init__(self, api: ApiSection, audit: Audit, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._keys = api.keys
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._throttle = Throttle(AUDIT_INTERVAL)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, scope: Scope, authorization: str | None) -> Principal:
        """The key's principal; raises 429 for a locked-out client (before looking
        at the key), 401 for a missing or unknown key."""
        if not self._keys:
            return ANONYMOUS_LOOPBACK
        client = client_of(scope)
        retry_after = self._locked_for(client)
        if retry_after is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail="too many failed authentications from this address; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        if not authorization or not authorization.lower().startswith("bearer "):
            self._failed(scope, client, "missing bearer key")
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing bearer key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = self._lookup(authorization)
        if found is not None:
            return found
        self._failed(scope, client, "unknown API key")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )

    def recognise(self, scope: Scope, authorization: str | None) -> Principal | None:
        """The principal `authenticate` would return, or None where it would refuse
        (a missing or unknown key, a locked-out client), without recording anything:
        for a fast path that leaves every refusal to the route, which counts it once."""
        if not self._keys:
            return ANONYMOUS_LOOPBACK
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        with self._lock:
            if client_of(scope) in self._locked_until:
                return None
        return self._lookup(authorization)

    def _lookup(self, authorization: str) -> Principal | None:
        """The principal of a `Bearer <key>` header's key; None for an unknown key."""
        digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256.lower()):
                return Principal(key.name, key.role, frozenset(key.buildings) if key.buildings else None)
        return None

    def forbidden(self, scope: Scope, who: Principal, detail: str) -> HTTPException:
        """Audits a refused call of a known key; the 403 to raise."""
        self.record(who.name, "forbidden", scope, status.HTTP_403_FORBIDDEN, reason=detail)
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)

    def record(self, actor: str, action: str, scope: Scope, code: int, **detail: Any) -> None:
        """An audit event of a refused call, unless the same one was audited within
        AUDIT_INTERVAL (then it is counted into the next, as `repeats`)."""
        client = client_of(scope)
        method, path = str(scope.get("method", "")), _short(str(scope.get("path", "")))
        key = (actor, action, client, method, path, str(code), str(detail.get("reason", "")))
        with self._lock:
            allowed, held_back = self._throttle.allow(key, self._clock())
        if not allowed:
            return
        extra = {"repeats": held_back} if held_back else {}
        self._audit(
            actor, action, None, client=client, method=method, path=path, status=code, **detail, **extra
        )

    def _locked_for(self, client: str) -> int | None:
        """Seconds the client is still locked out for, None when it is not."""
        with self._lock:
            until = self._locked_until.get(client)
            if until is None:
                return None
            left = until - self._clock()
            if left <= 0:
                del self._locked_until[client]
                return None
            return max(1, math.ceil(left))

    def _failed(self, scope: Scope, client: str, reason: str) -> None:
        limit, window = self._api.auth_failure_limit, self._api.auth_failure_window
        locked = False
        with self._lock:
            now = self._clock()
            if limit > 0:
                if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
                    self._forget_stale(now)
                times = self._failures.setdefault(client, deque())
                times.append(now)
                while times and times[0] <= now - window:
                    times.popleft()
                if len(times) >= limit:
                    del self._failures[client]
                    self._locked_until[client] = now + self._api.auth_lockout
                    locked = True
        self.record("anonymous", "auth_failed", scope, status.HTTP_401_UNAUTHORIZED, reason=reason)
        if locked:
            self.record(
                "anonymous",
                "auth_locked_out",
                scope,
                status.HTTP_429_TOO_MANY_REQUESTS,
                reason=f"{limit} failed authentications within {window:g} s",
                seconds=self._api.auth_lockout,
            )

    def _forget_stale(self, now: float) -> None:
        # Called with the lock held, when MAX_TRACKED_CLIENTS addresses have failed.
        window = self._api.auth_failure_window
        for client in [c for c, times in self._failures.items() if not times or times[-1] <= now - window]:
            del self._failures[client]
        for client in [c for c, until in self._locked_until.items() if until <= now]:
            del self._locked_until[client]
        if len(self._failures) >= MAX_TRACKED_CLIENTS:
            # Still full of fresh failures: start over rather than grow without bound.
            self._failures.clear()


def guard_of(request: Request) -> AuthGuard:
    guard: AuthGuard = request.app.state.guard
    return guard


# The dependencies below are coroutines: FastAPI runs a plain function dependency in a
# worker thread, a hop (and a wait for the GIL) per dependency per request that cost
# more than the checks themselves. They never block: authentication is a hash and a
# comparison (AuthBeforeBody runs it on the event loop too), an audit a queue put.


async def principal(request: Request) -> Principal:
    # Requests with a body were authenticated before it was read (see api.limits).
    early = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(early, Principal):
        return early
    return guard_of(request).authenticate(request.scope, request.headers.get("authorization"))


def require(role: str, *, site_wide: bool = False) -> Any:
    """A dependency: the caller's principal, which must have at least `role` and,
    with `site_wide`, no building scope (for what covers every building)."""

    async def check(request: Request) -> Principal:
        # `principal` called, not depended on: one dependency less to solve per request.
        who = await principal(request)
        if ROLE_RANK[who.role] < ROLE_RANK[role]:
            detail = f"needs role {role!r}; key has {who.role!r}"
            raise guard_of(request).forbidden(request.scope, who, detail)
        if site_wide and who.buildings is not None:
            raise guard_of(request).forbidden(
                request.scope, who, "covers every building: needs a key without a building scope"
            )
        return who

    return Depends(check)


Viewer = Annotated[Principal, require("viewer")]
Operator = Annotated[Principal, require("operator")]
Admin = Annotated[Principal, require("admin")]
# Site-wide data and actions (metrics of every room, reloading the rules of every building).
SiteViewer = Annotated[Principal, require("viewer", site_wide=True)]
SiteAdmin = Annotated[Principal, require("admin", site_wide=True)]


# The scheme's name in the OpenAPI schema's components.
SECURITY_SCHEME = "apiKey"


def document_bearer_keys(app: FastAPI) -> None:
    """Declares in the app's OpenAPI schema what `AuthGuard` enforces with keys
    configured: every operation that documents 401 takes `Authorization: Bearer <key>`
    (Swagger UI's "Authorize" then sends it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key of `api.keys` (its role and buildings decide what it may do)",
        }
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "401" in operation.get("responses", {}):
                    operation.setdefault("security", [{SECURITY_SCHEME: []}])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
