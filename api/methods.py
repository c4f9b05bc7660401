"""405 answers list every method the path takes.

Starlette answers a method no route of a path takes with the `Allow` of the first
route that matched the path alone; a path served by several routes (GET and POST
/v1/webhooks, /v1/bookings) then listed only one method. This middleware puts in
`Allow` every method the OpenAPI schema documents for the path (the schema is the
one list of what the API takes, as for `api.query`); paths outside the schema (the
docs' static files) keep Starlette's answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (path pattern, its methods)
PathMethods = list[tuple[re.Pattern[str], str]]


def path_methods(openapi: dict[str, Any]) -> PathMethods:
    """Each documented path as a pattern with its methods; the paths with fewer
    parameters first, so `/v1/bookings/no-shows` wins over `/v1/bookings/{booking_id}`."""
    found: list[tuple[int, re.Pattern[str], str]] = []
    for path, operations in openapi.get("paths", {}).items():
        pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
        found.append((path.count("{"), pattern, ", ".join(sorted(method.upper() for method in operations))))
    found.sort(key=lambda entry: entry[0])
    return [(pattern, methods) for _, pattern, methods in found]


class AllowEveryMethod:
    def __init__(self, app: ASGIApp, schema: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self._schema = schema
        self._paths: PathMethods | None = None

    def _allow(self, path: str) -> str | None:
        if self._paths is None:
            # Built once, at the first 405 (FastAPI caches the schema too).
            self._paths = path_methods(self._schema())
        return next((methods for pattern, methods in self._paths if pattern.match(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = self._allow(scope["path"])
                if allow:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
