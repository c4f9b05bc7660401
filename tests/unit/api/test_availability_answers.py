"""Kept availability answers over a real gateway on a FakeTransport and a manual clock,
asked through the app (ASGI, in process): every answer is the one computed afresh at
that moment, right after a booking is made, moved or cancelled, a room turns
occupied, a sensor goes offline or the window crosses a booking's boundary; and it
is kept (not computed again) while nothing it rests on changed. Keys scoped to a
building never get another building's rooms. The fast path answers the very bytes
the route does, and leaves to the route every request it does not fully understand."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import Principal
from api.availability_answers import AvailabilityAnswers
from api.availability_fast_path import AvailabilityFastPath
from api.routes.availability import DEFAULT_WINDOW, Window, query_of
from tests.fakes import GatewayOnFakes, running_gateway

KEYS = {
    "ops-key": Principal("facilities", "operator", None),
    "view-key": Principal("wall-display", "viewer", None),
    "booking-key": Principal("booking-system", "booking", None),
    "annex-key": Principal("annex-panel", "viewer", frozenset({"annex"})),
    "hq-key": Principal("hq-panel", "viewer", frozenset({"hq"})),
}
SITE: dict[str, Any] = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "capacity": 8,
             "features": ["Display", "VC"], "bookable": True},
            {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting", "capacity": 4, "bookable": True},
            {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 12,
             "bookable": True},
            {"id": "desks", "building": "hq", "floor": 3, "type": "open", "capacity": 40},
        ],
        "devices": [
            {"id": "orion-pir", "room": "orion"},
            {"id": "lyra-pir", "room": "lyra"},
            {"id": "vega-pir", "room": "vega"},
        ],
    },
    "occupancy": {"vacancy_timeout": 60},
    "api": {
        "keys": [
            {"name": who.name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "role": who.role,
             "buildings": sorted(who.buildings or [])}
            for key, who in KEYS.items()
        ]
    },
}  # fmt: skip
LYRA_PIR = "office/hq/2/lyra/lyra-pir"
ORION_PIR = "office/hq/2/orion/orion-pir"


class Api:
    """The app around the gateway, asked in process (its lifespan is not run: the
    gateway is started and stopped by `running_gateway`)."""

    def __init__(self, g: GatewayOnFakes) -> None:
        self.g = g
        self.app = create_app(g.gateway.settings, g.gateway)
        self._runner = asyncio.Runner()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    @property
    def answers(self) -> AvailabilityAnswers:
        answers: AvailabilityAnswers = self.app.state.availability_answers
        return answers

    def request(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return self._runner.run(self._http.request(method, path, headers=headers, **kwargs))

    def availability(self, key: str = "ops-key", **params: Any) -> bytes:
        """The body of GET /v1/availability, checked against the answer computed afresh."""
        response = self.request("GET", "/v1/availability", key, params=params)
        assert response.status_code == 200, response.text
        assert response.content == fresh(self.g, KEYS[key], **params)
        # The headers the fast path sends too (see fast_path_body).
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-length"] == str(len(response.content))
        return response.content

    def rooms(self, key: str = "ops-key", **params: Any) -> dict[str, dict[str, Any]]:
        return {room["id"]: room for room in orjson.loads(self.availability(key, **params))["rooms"]}

    def book(self, room: str, start: datetime, minutes: float, **fields: Any) -> str:
        end = start + timedelta(minutes=minutes)
        body = {"room_id": room, "start": iso(start), "end": iso(end), **fields}
        response = self.request("POST", "/v1/bookings", "booking-key", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def close(self) -> None:
        self._runner.run(self._http.aclose())
        self._runner.close()


def fresh(g: GatewayOnFakes, who: Principal, **params: Any) -> bytes:
    """The body for now's default window, computed from nothing kept."""
    now = datetime.fromtimestamp(g.clock.now(), UTC)
    features = params.get("features")
    query = query_of(
        who,
        params.get("building"),
        params.get("floor"),
        params.get("type"),
        int(params.get("min_capacity", 0)),
        [features] if isinstance(features, str) else features,
        None if "available" not in params else params["available"] == "true",
    )
    window = Window(now, now, now + DEFAULT_WINDOW)
    return b"".join(window.json(AvailabilityAnswers().answer(g.gateway, query, *window.instants)))


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def now(g: GatewayOnFakes) -> datetime:
    return datetime.fromtimestamp(g.clock.now(), UTC)


@pytest.fixture
def g(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as gateway:
        yield gateway


@pytest.fixture
def api(g: GatewayOnFakes) -> Iterator[Api]:
    client = Api(g)
    try:
        yield client
    finally:
        client.close()


def test_an_answer_is_kept_while_nothing_it_rests_on_changes(api: Api, g: GatewayOnFakes) -> None:
    thermometer = "office/hq/2/orion/orion-thermo"
    g.transport.deliver(thermometer, {"temperature": 22.0})
    api.availability()
    assert (api.answers.rebuilds, api.answers.rooms_computed) == (1, 3)
    g.clock.advance(5)
    api.availability()
    # A reading that does not change occupancy changes nothing availability rests on
    # (a device's first message may: it may be a presence sensor).
    g.transport.deliver(thermometer, {"temperature": 22.5})
    api.availability()
    assert (api.answers.rebuilds, api.answers.rooms_computed) == (1, 3)


def test_a_booking_made_moved_and_cancelled_shows_at_once(api: Api, g: GatewayOnFakes) -> None:
    assert api.rooms()["lyra"]["available"] is True
    start = now(g) + timedelta(minutes=5)
    booking = api.book("lyra", start, 60, title="Retro")
    computed = api.answers.rooms_computed
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["reasons"], lyra["next_booking"]["title"]) == (False, ["booked"], "Retro")
    # Only the room whose bookings changed was computed again.
    assert api.answers.rooms_computed == computed + 1

    later = now(g) + timedelta(hours=2)
    window = {"start": iso(later), "end": iso(later + timedelta(hours=1))}
    moved = api.request("PATCH", f"/v1/bookings/{booking}", "booking-key", json=window)
    assert moved.status_code == 200, moved.text
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["free_until"]) == (True, iso(later))

    cancelled = api.request("DELETE", f"/v1/bookings/{booking}", "booking-key")
    assert cancelled.status_code == 200, cancelled.text
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["free_until"], lyra["next_booking"]) == (True, None, None)


def test_occupancy_and_offline_sensors_show_at_once(api: Api, g: GatewayOnFakes) -> None:
    tomorrow = {"start": iso(now(g) + timedelta(days=1)), "end": iso(now(g) + timedelta(days=1, hours=1))}
    api.rooms()
    api.request("GET", "/v1/availability", "ops-key", params=tomorrow)
    rebuilds = api.answers.rebuilds

    g.transport.deliver(LYRA_PIR, {"occupancy": True})
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["reasons"], lyra["occupancy"]) == (False, ["occupied"], "occupied")
    # A window that does not include now does not rest on occupancy: still kept.
    assert api.request("GET", "/v1/availability", "ops-key", params=tomorrow).status_code == 200
    assert api.answers.rebuilds == rebuilds + 1

    g.advance(61)  # the vacancy timeout: the ticker turns the room vacant
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["reasons"], lyra["occupancy"]) == (True, [], "vacant")

    g.transport.deliver(LYRA_PIR + "/availability", "offline")
    lyra = api.rooms()["lyra"]
    assert (lyra["available"], lyra["reasons"]) == (True, ["sensors_offline"])

    g.transport.deliver(LYRA_PIR + "/availability", "online")
    assert api.rooms()["lyra"]["reasons"] == []


def test_the_answer_changes_right_when_the_window_crosses_a_boundary(api: Api, g: GatewayOnFakes) -> None:
    start = now(g) + timedelta(minutes=40)
    api.book("orion", start, 30)
    orion = api.rooms()["orion"]
    assert (orion["available"], orion["free_until"]) == (True, iso(start))
    rebuilds = api.answers.rebuilds

    # The default window (30 min from now) reaches the booking's start: still free...
    g.clock.advance(600)
    assert api.rooms()["orion"]["available"] is True
    assert api.answers.rebuilds == rebuilds  # (the answer was kept through those 10 min)
    # ...and a millisecond later, booked.
    g.clock.advance(0.001)
    orion = api.rooms()["orion"]
    assert (orion["available"], orion["reasons"]) == (False, ["booked"])

    # Booked until the window starts at the booking's end (the ticker has not run: the
    # booking is still "booked"), then free.
    g.clock.advance((start + timedelta(minutes=30)).timestamp() - g.clock.now() - 0.001)
    assert api.rooms()["orion"]["available"] is False
    g.clock.advance(0.001)
    orion = api.rooms()["orion"]
    assert (orion["available"], orion["next_booking"]) == (True, None)


def test_scoped_keys_never_get_another_buildings_rooms(api: Api, g: GatewayOnFakes) -> None:
    api.book("vega", now(g) + timedelta(minutes=10), 30, title="Annex board")
    assert list(api.rooms("ops-key")) == ["lyra", "orion", "vega"]
    assert list(api.rooms("annex-key")) == ["vega"]
    assert list(api.rooms("hq-key")) == ["lyra", "orion"]
    assert list(api.rooms("annex-key", building="hq")) == []
    assert list(api.rooms("hq-key", building="hq")) == ["lyra", "orion"]
    # Titles are kept per whether the key may see them.
    assert api.rooms("ops-key")["vega"]["next_booking"]["title"] == "Annex board"
    assert api.rooms("view-key")["vega"]["next_booking"]["title"] is None
    assert api.rooms("annex-key")["vega"]["next_booking"]["title"] is None


QUERIES: list[dict[str, Any]] = [
    {},
    {"building": "hq"},
    {"features": "display,vc"},
    {"features": ["DISPLAY"], "min_capacity": "5"},
    {"available": "false"},
    {"type": "meeting", "floor": "2"},
]


def scope_of(path: str, query: str, key: str | None, method: str = "GET", **headers: str) -> dict[str, Any]:
    raw = [(b"host", b"gw")] + [(k.encode(), v.encode()) for k, v in headers.items()]
    if key is not None:
        raw.append((b"authorization", f"Bearer {key}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("gw", 80),
    }


def fast_path_body(api: Api, scope: dict[str, Any]) -> bytes | None:
    """What the fast path alone answers; None when it leaves the request to the route."""
    left: list[bool] = []
    sent: list[bytes] = []
    started: list[dict[str, Any]] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        left.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message)
        else:
            sent.append(message["body"])
            assert message["more_body"] == (len(sent) < 3)

    fast = AvailabilityFastPath(route, api.app.state.guard, api.g.gateway, api.answers)
    asyncio.run(fast(scope, receive, send))
    assert bool(left) != bool(sent)
    if not sent:
        return None
    body = b"".join(sent)
    # As Starlette's Response(body, media_type="application/json") starts one.
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    assert started == [{"type": "http.response.start", "status": 200, "headers": headers}]
    return body


def test_the_fast_path_answers_the_bytes_the_route_does(api: Api, g: GatewayOnFakes) -> None:
    api.book("orion", now(g) + timedelta(minutes=10), 30, title="Design review")
    for key in ("ops-key", "view-key", "annex-key"):
        for params in QUERIES:
            query = str(httpx.QueryParams(params))
            # Nothing kept yet for this key and query: left to the route, which keeps it.
            assert fast_path_body(api, scope_of("/v1/availability", query, key)) is None, (key, params)
            rebuilds = api.answers.rebuilds
            by_route = api.availability(key, **params)
            assert api.answers.rebuilds == rebuilds + 1, (key, params)
            assert fast_path_body(api, scope_of("/v1/availability", query, key)) == by_route, (key, params)


LEFT_TO_THE_ROUTE = [
    # (path, query, key, method, headers)
    ("/v1/availability", "start=2023-11-14T22:13:20Z", "ops-key", "GET", {}),
    ("/v1/availability", "colour=red", "ops-key", "GET", {}),
    ("/v1/availability", "building=hq&building=annex", "ops-key", "GET", {}),
    ("/v1/availability", "building=", "ops-key", "GET", {}),
    ("/v1/availability", "min_capacity=%2B5", "ops-key", "GET", {}),
    ("/v1/availability", "min_capacity=-1", "ops-key", "GET", {}),
    ("/v1/availability", "min_capacity=1234567890", "ops-key", "GET", {}),
    ("/v1/availability", "available=1", "ops-key", "GET", {}),
    ("/v1/availability", "", None, "GET", {}),
    ("/v1/availability", "", "not-a-key", "GET", {}),
    ("/v1/availability", "", "ops-key", "GET", {"content-length": "5"}),
    ("/v1/availability", "", "ops-key", "HEAD", {}),
    ("/v1/availability/", "", "ops-key", "GET", {}),
]


def test_the_fast_path_leaves_what_it_does_not_fully_understand_to_the_route(api: Api) -> None:
    api.availability()  # kept: the fast path answers plain `GET /v1/availability`
    assert fast_path_body(api, scope_of("/v1/availability", "", "ops-key")) is not None
    for path, query, key, method, headers in LEFT_TO_THE_ROUTE:
        assert fast_path_body(api, scope_of(path, query, key, method, **headers)) is None, (path, query)


def test_through_the_app_refusals_stay_the_routes(api: Api) -> None:
    api.availability()
    refused = api.request("GET", "/v1/availability", "not-a-key")
    assert (refused.status_code, refused.json()["detail"]) == (401, "unknown API key")
    repeated = api.request("GET", "/v1/availability?building=hq&building=annex", "ops-key")
    assert repeated.status_code == 422
