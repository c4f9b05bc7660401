"""405 with the right `Allow`: every method the resource at the path takes.

Starlette answers a method no route takes with the `Allow` of the first route whose
path matches, so a path served by several routes (`GET` and `POST /v1/bookings`, one
route each) advertised only one of them. This handler, for every 405 the router
raises, asks the app's routes which methods they take at that path, whatever routes
there are and however they were included.

Of those, it lists the ones of the resource the router resolved the path to: the
path template of the route that refused the method, one path item of the OpenAPI
schema. A path that a literal template and a templated one both match names the
literal one's resource: `/v1/bookings/no-shows` takes GET, though
`/v1/bookings/{booking_id}` would route a PATCH there too.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

# The methods asked about (RFC 9110's, but CONNECT, which no route takes).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def taken_methods(routes: Iterable[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route takes (matches fully) at the request's path."""
    routes = list(routes)
    taken = []
    for method in METHODS:
        # A scope of its own for each question: matching records things in the scope.
        probe: Scope = {
            "type": "http",
            "method": method,
            "path": scope["path"],
            "root_path": scope.get("root_path", ""),
            "headers": [],
            "query_string": b"",
        }
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            taken.append(method)
    return taken


def _documented(app: FastAPI) -> dict[str, frozenset[str]]:
    """Path template -> the methods the OpenAPI schema documents for it."""
    known: dict[str, frozenset[str]] | None = getattr(app.state, "documented_methods", None)
    if known is None:
        # The schema is built once (FastAPI caches it); so is this.
        known = app.state.documented_methods = {
            path: frozenset(method.upper() for method in item if method.upper() in METHODS)
            for path, item in app.openapi().get("paths", {}).items()
        }
    return known


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    taken = taken_methods(request.app.router.routes, request.scope)
    # The router answers 405 when no route takes the method. When one did (a mount,
    # which takes every method, such as the static files), the 405 is that app's own:
    # its Allow, if any, stands.
    if taken and request.method not in taken:
        template = getattr(request.scope.get("route"), "path", None)
        # A route the schema leaves out (the docs pages): what the routes take.
        documented = _documented(request.app).get(template) if isinstance(template, str) else None
        headers["Allow"] = ", ".join(m for m in taken if documented is None or m in documented)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
