"""Kept room documents over a real gateway on a FakeTransport and a manual clock, asked
through the app (ASGI, in process): after every kind of change (a reading, occupancy,
a device going offline, a booking made and reached, a lit room's energy growing, a
room registered from its topic and forgotten) `GET /v1/rooms` and `GET /v1/rooms/{id}`
answer the very bytes the pydantic models give at that moment (what the routes
answered before documents were kept); rooms are rendered once per change, for the
state publisher and the API alike; keys scoped to a building never see another's."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import orjson
import pytest

from api.app import create_app
from api.auth import Principal
from api.booking_schemas import may_see_details
from api.room_documents import RoomDocuments
from api.room_energy import energy_holds
from api.schemas import EnergyOut, RoomList, RoomOut
from rules.bookings import current_and_next
from rules.occupancy import Occupancy
from rules.room_model import Light, RoomState
from tests.fakes import GatewayOnFakes, running_gateway
from tests.support import wait_until

KEYS = {
    "ops-key": Principal("facilities", "operator", None),
    "view-key": Principal("wall-display", "viewer", None),
    "booking-key": Principal("booking-system", "booking", None),
    "annex-key": Principal("annex-panel", "viewer", frozenset({"annex"})),
}
SITE: dict[str, Any] = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "name": "Orion", "building": "hq", "floor": 2, "type": "meeting", "capacity": 8,
             "features": ["display"], "bookable": True},
            {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting", "capacity": 4, "bookable": True},
            {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 12,
             "bookable": True},
            {"id": "desks", "building": "hq", "floor": 3, "type": "open", "capacity": 40},
        ],
        "devices": [
            {"id": "orion-pir", "room": "orion"},
            {"id": "lyra-pir", "room": "lyra"},
            {"id": "vega-pir", "room": "vega"},
            {"id": "orion-light", "room": "orion"},
        ],
    },
    "occupancy": {"vacancy_timeout": 60},
    "registry": {"forget_after": 600},
    "api": {
        "keys": [
            {"name": who.name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "role": who.role,
             "buildings": sorted(who.buildings or [])}
            for key, who in KEYS.items()
        ]
    },
}  # fmt: skip
LYRA_PIR = "office/hq/2/lyra/lyra-pir"
ORION_LIGHT = "office/hq/2/orion/orion-light"
LISTINGS: list[dict[str, str]] = [
    {},
    {"building": "hq"},
    {"floor": "2", "type": "meeting"},
    {"occupied": "true"},
    {"occupied": "false", "bookable": "true"},
]


def reference_room(g: GatewayOnFakes, room_id: str, who: Principal) -> RoomOut:
    """What GET /v1/rooms/{id} answered before documents were kept: pydantic, afresh."""
    room = g.gateway.room(room_id)
    assert room is not None
    now = g.clock.now()
    pair = current_and_next(g.gateway.bookings_of_room(room_id), now)
    return RoomOut.of(room, now, pair, details=may_see_details(who, "operator"))


def occupied(state: RoomState) -> bool:
    return state.occupancy.state == Occupancy.OCCUPIED


def reference_rooms(g: GatewayOnFakes, who: Principal, **params: str) -> bytes:
    """What GET /v1/rooms answered before documents were kept."""
    flags = {name: params[name] == "true" for name in ("occupied", "bookable") if name in params}
    described = [name for name in ("building", "floor", "type") if name in params]
    rooms = [
        reference_room(g, room.config.id, who)
        for room in g.gateway.rooms()
        if who.can_see(room.config.building)
        and all(getattr(room.config, name) == params[name] for name in described)
        and ("bookable" not in flags or room.config.bookable == flags["bookable"])
        and ("occupied" not in flags or occupied(room.state) == flags["occupied"])
    ]
    rooms.sort(key=lambda r: (r.building, r.floor, r.id))
    return RoomList(rooms=rooms, count=len(rooms)).model_dump_json().encode()


class Api:
    def __init__(self, g: GatewayOnFakes, documents: RoomDocuments) -> None:
        self.g = g
        self.documents = documents
        self.app = create_app(g.gateway.settings, g.gateway, room_documents=documents)
        self._runner = asyncio.Runner()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    def request(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return self._runner.run(self._http.request(method, path, headers=headers, **kwargs))

    def listing(self, key: str = "ops-key", **params: str) -> bytes:
        """GET /v1/rooms, checked against the pydantic answer at the same moment."""
        response = self.request("GET", "/v1/rooms", key, params=params)
        assert response.status_code == 200, response.text
        assert response.content == reference_rooms(self.g, KEYS[key], **params)
        assert response.headers["content-type"] == "application/json"
        return response.content

    def room(self, room_id: str, key: str = "ops-key") -> dict[str, Any]:
        response = self.request("GET", f"/v1/rooms/{room_id}", key)
        assert response.status_code == 200, response.text
        assert response.content == reference_room(self.g, room_id, KEYS[key]).model_dump_json().encode()
        body: dict[str, Any] = orjson.loads(response.content)
        return body

    def all_agree(self) -> None:
        """Every listing and room, for every key, is the pydantic answer of this moment."""
        for key in KEYS:
            for params in LISTINGS:
                self.listing(key, **params)
            for room in orjson.loads(self.listing(key))["rooms"]:
                self.room(room["id"], key)

    def close(self) -> None:
        self._runner.run(self._http.aclose())
        self._runner.close()


@pytest.fixture
def documents() -> RoomDocuments:
    return RoomDocuments()


@pytest.fixture
def g(tmp_path: Path, documents: RoomDocuments) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE, room_status=documents.render) as gateway:
        yield gateway


@pytest.fixture
def api(g: GatewayOnFakes, documents: RoomDocuments) -> Iterator[Api]:
    client = Api(g, documents)
    try:
        yield client
    finally:
        client.close()


def book(api: Api, room: str, start: datetime, minutes: float, **fields: Any) -> str:
    body = {
        "room_id": room,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
        **fields,
    }
    response = api.request("POST", "/v1/bookings", "booking-key", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def now(g: GatewayOnFakes) -> datetime:
    return datetime.fromtimestamp(g.clock.now(), UTC)


def test_answers_are_the_models_after_every_kind_of_change(api: Api, g: GatewayOnFakes) -> None:
    api.all_agree()
    g.transport.deliver("office/hq/2/orion/orion-thermo", {"temperature": 22.5, "co2": 640})
    api.all_agree()
    g.transport.deliver(LYRA_PIR, {"occupancy": True})
    assert api.room("lyra")["occupancy"]["state"] == "occupied"
    api.all_agree()
    g.advance(61)  # the vacancy timeout: the ticker turns lyra vacant
    assert api.room("lyra")["occupancy"]["state"] == "vacant"
    api.all_agree()
    g.transport.deliver(LYRA_PIR + "/availability", "offline")
    api.all_agree()

    start = now(g) + timedelta(minutes=5)
    book(api, "vega", start, 30, title="Annex board", organizer="ana")
    assert api.room("vega")["booking"]["next"]["title"] == "Annex board"
    assert api.room("vega", "view-key")["booking"]["next"]["title"] is None
    api.all_agree()
    # Time reaches the booking's start (no booking was written): in progress at once.
    g.clock.advance(300 - 0.001)
    assert api.room("vega")["booking"]["current"] is None
    api.all_agree()
    g.clock.advance(0.001)
    assert api.room("vega")["booking"]["current"]["title"] == "Annex board"
    assert api.room("vega")["available_now"] is False
    api.all_agree()


def test_a_lit_rooms_energy_is_counted_to_the_moment(api: Api, g: GatewayOnFakes) -> None:
    g.transport.deliver(ORION_LIGHT, {"state": "ON", "brightness": 254, "power": 40.0, "energy": 1.25})
    first = api.room("orion")["energy"]["kwh_today"]
    assert first is not None
    joined = api.documents.joined
    for step in (0.01, 0.05, 0.3, 0.09, 1.7, 12.0, 0.001):
        g.clock.advance(step)
        api.all_agree()
    assert api.room("orion")["energy"]["kwh_today"] > first
    # The documents were joined again as the figures moved, not rendered again.
    assert api.documents.joined > joined
    rendered = api.documents.rendered
    g.clock.advance(0.5)
    api.all_agree()
    assert api.documents.rendered == rendered


def test_rooms_registered_from_their_topic_and_forgotten(api: Api, g: GatewayOnFakes) -> None:
    api.all_agree()
    g.transport.deliver("office/hq/4/atlas/atlas-pir", {"occupancy": True})
    assert api.room("atlas")["configured"] is False
    api.all_agree()
    g.advance(601)  # registry.forget_after: the silent room and its device are forgotten
    g.advance(61)
    assert api.request("GET", "/v1/rooms/atlas", "ops-key").status_code == 404
    assert b"atlas" not in api.listing()
    api.all_agree()


def test_a_listing_is_kept_while_nothing_changes(api: Api, g: GatewayOnFakes) -> None:
    api.listing()
    joined, rendered = api.documents.joined, api.documents.rendered
    g.clock.advance(5)
    api.listing()
    assert (api.documents.joined, api.documents.rendered) == (joined, rendered)
    # A reading changes one room: joined again, that room alone rendered again.
    g.transport.deliver("office/hq/2/orion/orion-thermo", {"temperature": 23.0})
    api.listing()
    assert (api.documents.joined, api.documents.rendered) == (joined + 1, rendered + 1)


def test_rooms_are_rendered_once_for_the_publisher_and_the_api(api: Api, g: GatewayOnFakes) -> None:
    g.transport.deliver(LYRA_PIR, {"occupancy": True})
    # The publisher's scan renders lyra (its thread may have already).
    g.gateway._room_states.scan()  # type: ignore[union-attr]
    published = [p.payload for p in g.transport.published if p.topic == "officegw/state/hq/2/lyra"]
    assert published and orjson.loads(published[-1])["occupancy"]["state"] == "occupied"
    rendered = api.documents.rendered
    assert api.request("GET", "/v1/rooms/lyra", "view-key").content == published[-1]
    assert api.documents.rendered == rendered


def test_a_room_whose_presence_sensors_are_all_offline_says_so(api: Api, g: GatewayOnFakes) -> None:
    """The room's state does not change when its sensor goes offline (nothing it said
    is forgotten): the flag alone makes its document change, for the API, the kept
    listings and the state publisher (which a replica's availability reads)."""
    publisher = g.gateway._room_states
    assert publisher is not None

    def published_flag() -> bool:
        publisher.scan()
        payloads = [p.payload for p in g.transport.published if p.topic == "officegw/state/hq/2/lyra"]
        flag: bool = orjson.loads(payloads[-1])["occupancy"]["sensors_offline"]
        return flag

    def publishes(flag: bool) -> None:
        # Each room goes out at most once per push.state.min_interval of real time.
        wait_until(lambda: published_flag() is flag, 5, f"lyra published with sensors_offline {flag}")

    g.transport.deliver(LYRA_PIR, {"occupancy": False})  # now known as a presence sensor
    assert api.room("lyra")["occupancy"]["sensors_offline"] is False
    publishes(False)
    state = g.gateway.room("lyra")
    api.listing()
    g.transport.deliver(LYRA_PIR + "/availability", "offline")
    after = g.gateway.room("lyra")
    assert state is not None and after is not None and after.state is state.state
    assert api.room("lyra")["occupancy"]["sensors_offline"] is True
    assert api.room("orion")["occupancy"]["sensors_offline"] is False
    api.all_agree()
    publishes(True)
    g.transport.deliver(LYRA_PIR + "/availability", "online")
    assert api.room("lyra")["occupancy"]["sensors_offline"] is False
    api.all_agree()
    publishes(False)


def test_scoped_keys_never_see_other_buildings(api: Api, g: GatewayOnFakes) -> None:
    book(api, "orion", now(g) + timedelta(minutes=10), 30, title="HQ board")
    assert [r["id"] for r in orjson.loads(api.listing("annex-key"))["rooms"]] == ["vega"]
    assert orjson.loads(api.listing("annex-key", building="hq"))["count"] == 0
    for room in ("orion", "lyra", "desks"):
        response = api.request("GET", f"/v1/rooms/{room}", "annex-key")
        assert (response.status_code, response.json()) == (404, {"detail": "room not found"})
    assert api.room("vega", "annex-key")["id"] == "vega"


@pytest.mark.parametrize(
    ("path", "params", "key", "status"),
    [
        ("/v1/rooms", {"occupied": "yes"}, "ops-key", 200),
        ("/v1/rooms", {"occupied": "maybe"}, "ops-key", 422),
        ("/v1/rooms", {"building": ["hq", "annex"]}, "ops-key", 422),
        ("/v1/rooms", {}, "wrong-key", 401),
        ("/v1/rooms/orion", {}, "wrong-key", 401),
        ("/v1/rooms/nowhere", {}, "ops-key", 404),
    ],
    ids=["bool-word", "bad-bool", "repeated", "unknown-key", "unknown-key-room", "no-room"],
)
def test_what_the_fast_path_leaves_to_the_route(
    api: Api, path: str, params: dict[str, Any], key: str, status: int
) -> None:
    response = api.request("GET", path, key, params=params)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.content == reference_rooms(api.g, KEYS[key], occupied="true")


@pytest.mark.parametrize(
    ("power", "occupancy"),
    [(40.0, Occupancy.VACANT), (40.0, Occupancy.OCCUPIED), (3_000.0, Occupancy.VACANT)],
)
def test_energy_figures_keep_their_rounding_over_the_window(power: float, occupancy: Occupancy) -> None:
    """Pure: over [since, until) the rounded figures are those at `since`, for many
    counters and moments (a table would not reach the steps' edges)."""
    base = 1_700_000_000.0
    kept = 0
    for n in range(400):
        kwh = 1.25 + n * 0.000_000_37
        lit = _lit(RoomState("r"), occupancy, power, kwh, base + n * 0.013)
        at = base + 10 + n * 0.0071
        today = lit.energy_today(at, UTC)
        assert today is not None
        since, until = energy_holds(today, at)
        figures = EnergyOut.of(lit, at, UTC)
        kept += until > since
        for t in (since, (since + until) / 2, until - 1e-6):
            if since <= t < until:
                assert EnergyOut.of(lit, t, UTC) == figures, (n, t)
    # Mostly kept for a while (not only near a rounding step).
    assert kept > 300


def _lit(state: RoomState, occupancy: Occupancy, power: float, kwh: float, at: float) -> RoomState:
    return replace(
        state,
        occupancy=replace(state.occupancy, state=occupancy),
        lights=MappingProxyType({"light": Light(on=True, power_w=power)}),
        energy_kwh=kwh,
        energy_waste_kwh=kwh / 3,
        energy_at=at,
    )
