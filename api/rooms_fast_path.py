"""`GET /v1/rooms` and `GET /v1/rooms/{id}` answered from the kept room documents
(`api.room_documents`) before FastAPI sees the request.

Once the documents are kept, what a request costs is mostly FastAPI's own work
(solving dependencies, reading parameters, a worker-thread hop: several hundred µs).
This pure ASGI middleware answers the requests it fully understands with the route's
own pieces (`rooms_query`, the documents) and leaves every other request to the route,
untouched:

- another path or method, a request that announces a body;
- a parameter the route does not take, a repeated or empty one, a boolean other than
  `true` or `false` (the route reads `1`, `yes`, ... too), any parameter on one room;
- a request the route would refuse or count: no key, an unknown key, a locked-out
  client (the guard's `recognise` looks without recording); a room that does not
  exist or that the key may not see (the route's 404).

A listing is joined on the event loop when that is quick (about a millisecond for a
campus whose documents are kept: less than a worker thread's hop and its wait for
the GIL, which made the slowest answers); one with many rooms to render, or
while another join runs, is joined in a worker thread.
"""

from __future__ import annotations

from anyio import to_thread
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import AuthGuard, Principal
from api.booking_schemas import may_see_details
from api.room_documents import RoomDocuments, RoomsQuery
from api.routes.rooms import rooms_query
from gateway.runtime.gateway import Gateway

PATH = "/v1/rooms"
ROOM_PREFIX = "/v1/rooms/"
STRINGS = frozenset({"building", "floor", "type"})
BOOLEANS = {"true": True, "false": False}
FLAGS = frozenset({"occupied", "bookable"})
# Rooms a listing may render on the event loop (~50 µs each); more go to a thread.
MAX_RENDERS_ON_LOOP = 16


class RoomsFastPath:
    def __init__(self, app: ASGIApp, guard: AuthGuard, gateway: Gateway, documents: RoomDocuments) -> None:
        self.app = app
        self.guard = guard
        self.gateway = gateway
        self.documents = documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            body = None
            if path == PATH:
                body = await self._rooms(scope)
            elif path.startswith(ROOM_PREFIX) and "/" not in path[len(ROOM_PREFIX) :]:
                body = self._room(scope, path[len(ROOM_PREFIX) :])
            if body is not None:
                headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        await self.app(scope, receive, send)

    def _principal(self, scope: Scope) -> Principal | None:
        headers = Headers(scope=scope)
        if "content-length" in headers or "transfer-encoding" in headers:
            return None
        return self.guard.recognise(scope, headers.get("authorization"))

    async def _rooms(self, scope: Scope) -> bytes | None:
        query = self._query(scope)
        if query is None:
            return None
        view, booked = self.gateway.rooms_view()
        now = self.gateway.now()
        body = self.documents.rooms_at_once(view, booked, query, now, max_renders=MAX_RENDERS_ON_LOOP)
        if body is not None:
            return body
        return await to_thread.run_sync(self.documents.rooms, view, booked, query, now)

    def _query(self, scope: Scope) -> RoomsQuery | None:
        """The listing asked for, when every parameter is read here as the route reads
        it and the caller is one the route would serve; else None."""
        params = QueryParams(scope["query_string"])
        read: dict[str, str] = {}
        for name in params:
            values = params.getlist(name)
            if len(values) != 1 or not values[0] or name not in STRINGS | FLAGS:
                return None
            if name in FLAGS and values[0] not in BOOLEANS:
                return None
            read[name] = values[0]
        who = self._principal(scope)
        if who is None:
            return None
        flags = {name: BOOLEANS[read[name]] if name in read else None for name in FLAGS}
        return rooms_query(
            who,
            read.get("building"),
            read.get("floor"),
            read.get("type"),
            flags["occupied"],
            flags["bookable"],
        )

    def _room(self, scope: Scope, room_id: str) -> bytes | None:
        if not room_id or scope["query_string"]:
            return None
        who = self._principal(scope)
        if who is None:
            return None
        room = self.gateway.room(room_id)
        if room is None or not who.can_see(room.config.building):
            return None
        bookings = self.gateway.bookings_of_room(room_id)
        return self.documents.room(
            room, bookings, self.gateway.now(), details=may_see_details(who, "operator")
        )
