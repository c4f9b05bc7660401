"""`GET /v1/availability` answered from a kept answer before FastAPI sees the request.

Booking systems and room panels poll availability for now (no `start`, `end`).
Once its answer is kept (`api.availability_answers`), what such a request costs is
FastAPI's own work: solving the route's dependencies and reading its nine
parameters is ~250 µs of Python per request, several times the rest. This pure
ASGI middleware answers those requests itself, with the route's own pieces (the
query, the window, the body), and leaves everything else to the route, untouched:

- any request it does not fully understand: another path or method, `start` or
  `end` given, an unknown or repeated parameter, an empty value, a
  `min_capacity` that is not plain digits, an `available` that is not `true` or
  `false`, a request that announces a body;
- any request the route would refuse or count: no key, an unknown key, a
  locked-out client (the guard's `recognise` looks without recording);
- any query whose answer is not kept, or no longer holds (the route rebuilds it).

So for a request it answers, the route would have answered the same bytes
(tests/unit/api/test_availability_answers.py compares the two), and every
refusal, error and audit is the route's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import AuthGuard
from api.availability_answers import AvailabilityAnswers
from api.backends import AvailabilitySource
from api.routes.availability import DEFAULT_WINDOW, Window, query_of

PATH = "/v1/availability"
# The route's parameters this path reads (`start` and `end` are left to the route).
SINGLE_VALUED = frozenset({"min_capacity", "building", "floor", "type", "available"})
LISTS = frozenset({"features"})
# A min_capacity it reads itself: up to nine digits (the route reads every int).
MAX_DIGITS = 9
BOOLEANS = {"true": True, "false": False}


class AvailabilityFastPath:
    def __init__(
        self, app: ASGIApp, guard: AuthGuard, gateway: AvailabilitySource, answers: AvailabilityAnswers
    ) -> None:
        self.app = app
        self.guard = guard
        self.gateway = gateway
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            body = self._kept(scope)
            if body is not None:
                # The headers Starlette's Response(media_type="application/json") sends,
                # then the pieces as they are: no copy of the kept rooms.
                length = str(sum(len(piece) for piece in body)).encode()
                headers = [(b"content-length", length), (b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                *first, last = body
                for piece in first:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                await send({"type": "http.response.body", "body": last, "more_body": False})
                return
        await self.app(scope, receive, send)

    def _kept(self, scope: Scope) -> tuple[bytes, ...] | None:
        """The body the route would answer, when this request is one this path
        understands and its answer is kept; else None (the route answers)."""
        headers = Headers(scope=scope)
        if "content-length" in headers or "transfer-encoding" in headers:
            return None
        p = _params(QueryParams(scope["query_string"]))
        if p is None:
            return None
        who = self.guard.recognise(scope, headers.get("authorization"))
        if who is None:
            return None
        query = query_of(who, p.building, p.floor, p.type, p.min_capacity, p.features, p.available)
        now = datetime.fromtimestamp(self.gateway.now(), UTC)
        window = Window(now, now, now + DEFAULT_WINDOW)
        answer = self.answers.cached(self.gateway.availability_version(), query, *window.instants)
        return None if answer is None else window.json(answer)


@dataclass(frozen=True, slots=True)
class _Params:
    building: str | None = None
    floor: str | None = None
    type: str | None = None
    min_capacity: int = 0
    features: list[str] | None = None
    available: bool | None = None


def _params(query: QueryParams) -> _Params | None:
    """The parameters, when every one is read here as the route reads it; else None."""
    read: dict[str, str] = {}
    features: list[str] | None = None
    for name in query:
        values = query.getlist(name)
        if not all(values):
            return None
        if name in LISTS:
            features = values
        elif name in SINGLE_VALUED and len(values) == 1:
            read[name] = values[0]
        else:
            return None
    min_capacity = read.get("min_capacity", "0")
    if not (min_capacity.isascii() and min_capacity.isdigit() and len(min_capacity) <= MAX_DIGITS):
        return None
    available = read.get("available")
    if available is not None and available not in BOOLEANS:
        return None
    return _Params(
        read.get("building"),
        read.get("floor"),
        read.get("type"),
        int(min_capacity),
        features,
        None if available is None else BOOLEANS[available],
    )
