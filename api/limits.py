"""What a request must pass before any route reads it: the body size limit and, for
requests that carry a body, authentication (pure ASGI middleware, so nothing of the
body is read or parsed for a request that is refused)."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import PRINCIPAL_SCOPE_KEY, AuthGuard

# Methods whose routes never read a body: authenticated by the routes' dependencies.
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body larger than {limit} bytes")


async def _refuse(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the server refuses such requests itself; counted below anyway


class BodyLimit:
    """413 for a body over `max_bytes`: at once when Content-Length says so, else
    (chunked bodies) as soon as the bytes received pass the limit; what comes after
    is never buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(BodyTooLarge(self.max_bytes), scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException: FastAPI answers it while reading the body.
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(exc, scope, receive, send)


class AuthBeforeBody:
    """With keys configured, a request that may carry a body (not GET, HEAD or
    OPTIONS) to a route is authenticated before anything reads the body: a refused
    one is answered (401, or 429 when its address is locked out) without it. The
    principal waits in the scope for the route's dependencies, which check roles.
    A request that no route takes, by its path (404) or its method (405), is left
    to the router, which answers it without reading the body, as it does for GET."""

    def __init__(self, app: ASGIApp, guard: AuthGuard, router: Router) -> None:
        self.app = app
        self.guard = guard
        self.router = router

    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is Match.FULL for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.guard.enabled
            and scope["method"] not in BODILESS_METHODS
            and self._routed(scope)
        ):
            try:
                who = self.guard.authenticate(scope, Headers(scope=scope).get("authorization"))
            except HTTPException as exc:
                await _refuse(exc, scope, receive, send)
                return
            scope[PRINCIPAL_SCOPE_KEY] = who
        await self.app(scope, receive, send)
