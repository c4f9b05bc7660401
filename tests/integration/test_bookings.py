"""Bookings end to end, through mosquitto and HTTP, with check-in windows of seconds:
a no-show is released, presence checks a booking in, a room left empty ends its
booking early, and availability says so; keys, roles and building scopes."""

from __future__ import annotations

import hashlib
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until, watching

KEYS = {
    "viewer": ("wall-display", "viewer", []),
    "booking": ("booking-system", "booking", []),
    "operator": ("facilities", "operator", []),
    "annex": ("annex-panel", "booking", ["annex"]),
}


def site(hq: str) -> dict[str, Any]:
    """Two buildings; `hq` is unique per test, so the booking events it publishes on
    officegw/events/... are this test's alone."""
    return {
        "site": {
            "rooms": [
                {"id": "orion", "building": hq, "floor": 2, "type": "meeting", "capacity": 8,
                 "features": ["Display", "VC"], "bookable": True},
                {"id": "lyra", "building": hq, "floor": 2, "type": "meeting", "capacity": 4,
                 "bookable": True},
                {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 12,
                 "bookable": True},
                {"id": "desks", "building": hq, "floor": 3, "type": "open", "capacity": 40},
            ],
            "devices": [
                {"id": f"{room}-pir", "room": room, "power_source": "battery"}
                for room in ("orion", "lyra", "vega")
            ]
            + [{"id": "orion-light", "room": "orion", "kind": "light"}],
        },
        "occupancy": {"vacancy_timeout": 3},
        "bookings": {"checkin_window": 1.5, "release_when_vacant": 1.5, "presence_min": 0.5},
        "api": {
            "keys": [
                {"name": name, "sha256": hashlib.sha256(role_key.encode()).hexdigest(), "role": role,
                 "buildings": buildings}
                for role_key, (name, role, buildings) in KEYS.items()
            ]
        },
    }  # fmt: skip


class Client:
    """The gateway's HTTP API as one key sees it."""

    def __init__(self, gw: RunningGateway, key: str) -> None:
        self._http = gw.http
        self._headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self._http.get(path, params=params, headers=self._headers)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self._http.post(path, json=body, headers=self._headers)

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._http.patch(path, json=body, headers=self._headers)

    def delete(self, path: str) -> httpx.Response:
        return self._http.delete(path, headers=self._headers)

    def book(self, room: str, start: datetime, minutes: float, **fields: Any) -> dict[str, Any]:
        response = self.post("/v1/bookings", {"room_id": room, **window(start, minutes), **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def status(self, booking_id: str) -> str:
        response = self.get(f"/v1/bookings/{booking_id}")
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def availability(self, **params: Any) -> dict[str, dict[str, Any]]:
        response = self.get("/v1/availability", **params)
        assert response.status_code == 200, response.text
        return {room["id"]: room for room in response.json()["rooms"]}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def window(start: datetime, minutes: float) -> dict[str, str]:
    return {"start": iso(start), "end": iso(start + timedelta(minutes=minutes))}


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def hq() -> str:
    return f"hq{uuid.uuid4().hex[:6]}"


@pytest.fixture
def gw(mqtt_broker: BrokerProcess, hq: str) -> Iterator[RunningGateway]:
    running = start_gateway(mqtt_broker, site(hq))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def either_gw(
    request: pytest.FixtureRequest, mqtt_broker: BrokerProcess, hq: str, tmp_path: Path
) -> Iterator[RunningGateway]:
    """A gateway with its bookings in its SQLite file, or in the shared PostgreSQL."""
    config = site(hq)
    if request.param == "postgresql":
        config["storage"] = {"path": str(tmp_path / "gw.db"), "url": request.getfixturevalue("postgres_url")}
    running = start_gateway(mqtt_broker, config)
    try:
        yield running
    finally:
        running.stop()


def test_bookings_follow_presence_and_availability_follows_them(
    either_gw: RunningGateway, mqtt_broker: BrokerProcess, publisher: Publisher, hq: str
) -> None:
    gw = either_gw
    system, ops = Client(gw, "booking"), Client(gw, "operator")
    pir = {room: f"{gw.prefix}/{hq}/2/{room}/{room}-pir" for room in ("orion", "lyra")}
    # Lyra's sensor reports (nobody there): the room can see, and sees no one.
    publisher.publish(pir["lyra"], {"occupancy": False})
    wait_until(
        lambda: "occupancy" in ops.get("/v1/devices/lyra-pir").json()["capabilities"],
        5,
        "lyra's sensor heard",
    )

    with watching(mqtt_broker, f"officegw/events/+/{hq}/+") as events:
        no_show = system.book("lyra", now(), 60, title="Budget", organizer="ana")
        attended = system.book("orion", now(), 60, title="Design review", organizer="bo")
        later = system.book("orion", now() + timedelta(hours=2), 60, title="Retro")

        # Lyra: nobody comes, released once the 1.5 s check-in window is over.
        wait_until(lambda: system.status(no_show["id"]) == "released", 10, "lyra released")
        released = system.get(f"/v1/bookings/{no_show['id']}").json()
        assert released["released_at"] is not None and released["checked_in_at"] is None
        free = system.availability()["lyra"]
        assert (free["available"], free["reasons"], free["free_until"]) == (True, [], None)

        # Orion: people come and move about: checked in.
        def someone_moves() -> bool:
            publisher.publish(pir["orion"], {"occupancy": True})
            return system.status(attended["id"]) == "checked_in"

        wait_until(someone_moves, 10, "orion checked in")
        publisher.publish(pir["orion"], {"occupancy": True})  # occupied for 3 s more
        taken = ops.availability()["orion"]
        assert (taken["available"], taken["reasons"], taken["free_until"]) == (
            False,
            ["booked", "occupied"],
            None,
        )
        assert taken["next_booking"]["id"] == attended["id"]
        assert taken["next_booking"]["title"] == "Design review"  # operator sees titles...
        assert system.availability()["orion"]["next_booking"]["title"] is None  # ...a booking key does not
        room = ops.get("/v1/rooms/orion").json()
        assert room["available_now"] is False
        assert room["booking"]["current"]["id"] == attended["id"]
        assert room["booking"]["next"]["id"] == later["id"]

        # They leave: vacant 3 s after the last motion, the booking ends 1.5 s later.
        wait_until(lambda: system.status(attended["id"]) == "ended", 10, "orion ended early")
        ended = system.get(f"/v1/bookings/{attended['id']}").json()
        assert datetime.fromisoformat(ended["ended_at"]) < datetime.fromisoformat(ended["end"])
        free = system.availability()["orion"]
        assert (free["available"], free["reasons"]) == (True, [])
        assert free["free_until"] == later["start"]
        assert free["next_booking"]["id"] == later["id"]

        # A window two hours on: booked, and live occupancy does not count there.
        future = system.availability(**window(now() + timedelta(hours=2, minutes=10), 30))
        assert (future["orion"]["available"], future["orion"]["reasons"]) == (False, ["booked"])
        assert future["orion"]["occupancy"] is None
        assert future["lyra"]["available"] is True

        # Each transition was published on MQTT, with its event's sequence number.
        seen: dict[str, Any] = {}

        def three_events() -> bool:
            seen.update(_drain(events))
            return len(seen) >= 3

        wait_until(three_events, 5, "booking events on MQTT", progress=lambda: sorted(seen))
    assert seen[f"officegw/events/booking_released/{hq}/lyra"]["booking"] == no_show["id"]
    assert seen[f"officegw/events/booking_checked_in/{hq}/orion"]["booking"] == attended["id"]
    assert seen[f"officegw/events/booking_ended/{hq}/orion"]["reason"] == "room vacant for 1.5 s"
    logged = ops.get("/v1/events", kind="booking_released").json()["events"]
    assert [(e["room_id"], e["data"]["booking"]) for e in logged] == [("lyra", no_show["id"])]
    assert seen[f"officegw/events/booking_released/{hq}/lyra"]["seq"] == logged[0]["seq"]

    # No-shows per organizer: ana's one booking was one.
    counts = ops.get("/v1/bookings/no-shows", by="organizer").json()["groups"]
    assert {g["key"]: (g["bookings"], g["no_shows"]) for g in counts} == {"ana": (1, 1), "bo": (1, 0)}
    metrics = ops.get("/metrics").text
    for status in ("checked_in", "released", "ended"):
        assert f'officegw_booking_transitions_total{{status="{status}"}} 1.0' in metrics
    assert 'officegw_bookings_active{status="booked"} 1.0' in metrics


def _drain(inbox: queue.SimpleQueue[tuple[str, Any]]) -> list[tuple[str, Any]]:
    drained = []
    while True:
        try:
            drained.append(inbox.get_nowait())
        except queue.Empty:
            return drained


def test_the_booking_api_contract(mqtt_broker: BrokerProcess, hq: str, tmp_path: Path) -> None:
    storage = tmp_path / "officegw.db"
    gw = start_gateway(mqtt_broker, site(hq), storage=storage)
    try:
        system = Client(gw, "booking")
        start = now() + timedelta(hours=1)
        first = system.book("orion", start, 60, title="Plan", organizer="ana", external_id="cal-1")
        assert (first["status"], first["title"], first["created_by"]) == ("booked", "Plan", "booking-system")

        # A re-send with the same external_id is the same booking: unchanged, or updated.
        again = system.post("/v1/bookings", {"room_id": "orion", **window(start, 60), "title": "Plan",
                                             "organizer": "ana", "external_id": "cal-1"})  # fmt: skip
        assert (again.status_code, again.json()["id"]) == (200, first["id"])
        moved = system.post("/v1/bookings", {"room_id": "orion", **window(start, 90), "title": "Plan",
                                             "organizer": "ana", "external_id": "cal-1"})  # fmt: skip
        assert (moved.status_code, moved.json()["id"], moved.json()["end"]) == (
            200,
            first["id"],
            iso(start + timedelta(minutes=90)),
        )

        # An overlap is a 409 naming the booking it clashes with.
        clash = system.post("/v1/bookings", {"room_id": "orion", **window(start + timedelta(minutes=80), 30)})
        assert clash.status_code == 409
        assert clash.json()["booking"]["id"] == first["id"]
        assert first["id"] in clash.json()["detail"]
        # Back to back is fine.
        second = system.book("orion", start + timedelta(minutes=90), 30, external_id="cal-2")

        # Windows are validated.
        bad = {
            "no time zone": {"start": "2030-01-01T09:00:00", "end": "2030-01-01T10:00:00"},
            "epoch numbers": {"start": 1_900_000_000, "end": 1_900_003_600},
            "backwards": {"start": iso(start), "end": iso(start - timedelta(minutes=5))},
            "over 24 h": window(start, 25 * 60),
            "already over": window(now() - timedelta(hours=3), 60),
        }
        for why, times in bad.items():
            response = system.post("/v1/bookings", {"room_id": "lyra", **times})
            assert response.status_code == 422, (why, response.text)
        assert system.post("/v1/bookings", {"room_id": "desks", **window(start, 30)}).status_code == 422
        assert system.post("/v1/bookings", {"room_id": "nowhere", **window(start, 30)}).status_code == 404
        unknown_field = system.post("/v1/bookings", {"room_id": "lyra", **window(start, 30), "colour": "red"})
        assert unknown_field.status_code == 422

        # PATCH moves it; DELETE cancels (kept) and frees the slot.
        patched = system.patch(f"/v1/bookings/{second['id']}", {"room_id": "lyra", "title": "Moved"})
        assert (patched.status_code, patched.json()["room_id"], patched.json()["title"]) == (
            200,
            "lyra",
            "Moved",
        )
        cancelled = system.delete(f"/v1/bookings/{first['id']}")
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        assert system.status(first["id"]) == "cancelled"
        system.book("orion", start, 30)
        assert system.post(f"/v1/bookings/{first['id']}/checkin").status_code == 409

        # Filters and pages.
        listed = system.get("/v1/bookings", room_id="orion", status="booked").json()
        assert [b["status"] for b in listed["bookings"]] == ["booked"]
        page = system.get("/v1/bookings", limit=2).json()
        assert (page["count"], page["next_offset"]) == (2, 2)
        rest = system.get("/v1/bookings", limit=2, offset=2).json()
        assert (rest["count"], rest["next_offset"]) == (1, None)
        assert system.get("/v1/bookings", external_id="cal-2").json()["bookings"][0]["id"] == second["id"]
        assert system.get("/v1/bookings/nope").status_code == 404

        # Book-now from a room panel: checked in at once; refused when booked or occupied.
        adhoc = system.post("/v1/rooms/vega/book-now", {"minutes": 15})
        assert (adhoc.status_code, adhoc.json()["status"]) == (201, "checked_in")
        assert system.post("/v1/rooms/vega/book-now", {"minutes": 15}).status_code == 409
        assert system.post("/v1/rooms/vega/book-now", {"minutes": 0}).status_code == 422
    finally:
        gw.stop()

    # Everything survives a restart.
    gw = start_gateway(mqtt_broker, site(hq), storage=storage)
    try:
        system = Client(gw, "booking")
        assert system.status(first["id"]) == "cancelled"
        assert system.get(f"/v1/bookings/{second['id']}").json()["room_id"] == "lyra"
        assert system.post("/v1/rooms/vega/book-now", {"minutes": 15}).status_code == 409
    finally:
        gw.stop()


def test_roles_and_building_scopes(gw: RunningGateway) -> None:
    viewer, system, annex = Client(gw, "viewer"), Client(gw, "booking"), Client(gw, "annex")
    start = now() + timedelta(hours=1)
    hq_booking = system.book("orion", start, 30, title="Board", organizer="ana")

    # A viewer reads (without titles or organizers) and cannot book.
    assert viewer.post("/v1/bookings", {"room_id": "orion", **window(start, 30)}).status_code == 403
    assert viewer.post("/v1/rooms/lyra/book-now", {"minutes": 15}).status_code == 403
    assert viewer.delete(f"/v1/bookings/{hq_booking['id']}").status_code == 403
    seen = viewer.get(f"/v1/bookings/{hq_booking['id']}").json()
    assert (seen["id"], seen["title"], seen["organizer"]) == (hq_booking["id"], None, None)
    # A booking key books but does not command lights or read no-shows.
    assert system.post("/v1/rooms/orion/lights", {"on": True}).status_code == 403
    assert system.get("/v1/bookings/no-shows").status_code == 403

    # A key scoped to the annex neither sees nor books the other building's rooms.
    assert annex.get(f"/v1/bookings/{hq_booking['id']}").status_code == 404
    assert annex.delete(f"/v1/bookings/{hq_booking['id']}").status_code == 404
    assert annex.post(f"/v1/bookings/{hq_booking['id']}/checkin").status_code == 404
    assert annex.patch(f"/v1/bookings/{hq_booking['id']}", {"title": "x"}).status_code == 404
    assert annex.post("/v1/bookings", {"room_id": "orion", **window(start, 30)}).status_code == 404
    assert annex.post("/v1/rooms/orion/book-now", {"minutes": 15}).status_code == 404
    assert annex.get("/v1/bookings").json()["bookings"] == []
    assert set(annex.availability()) == {"vega"}
    own = annex.book("vega", start, 30)
    assert [b["id"] for b in annex.get("/v1/bookings").json()["bookings"]] == [own["id"]]
    # Nor moves its own booking into them.
    assert annex.patch(f"/v1/bookings/{own['id']}", {"room_id": "lyra"}).status_code == 404
    # Nor takes over a booking there through its external id.
    system.book("lyra", start, 30, external_id="hq-only")
    taken = annex.post("/v1/bookings", {"room_id": "vega", **window(start, 30), "external_id": "hq-only"})
    assert taken.status_code == 409
    assert "booking" not in taken.json()


def test_availability_filters_and_best_fit(gw: RunningGateway, publisher: Publisher, hq: str) -> None:
    ops = Client(gw, "operator")
    assert list(ops.availability()) == ["lyra", "orion", "vega"]  # smallest first; desks is not bookable
    assert list(ops.availability(min_capacity=5)) == ["orion", "vega"]
    assert list(ops.availability(features="display,vc")) == ["orion"]  # case-insensitive
    assert list(ops.availability(features=["DISPLAY"], building=hq)) == ["orion"]
    assert list(ops.availability(type="meeting", floor="1")) == ["vega"]
    # A room whose presence sensors are all offline is offered on bookings alone, with a caveat.
    vega_pir = f"{gw.prefix}/annex/1/vega/vega-pir"
    publisher.publish(vega_pir, {"occupancy": False})
    publisher.publish(vega_pir + "/availability", "offline")
    wait_until(
        lambda: ops.availability()["vega"]["reasons"] == ["sensors_offline"], 5, "vega sensors offline"
    )
    assert ops.availability()["vega"]["available"] is True
    # Occupied rooms are listed as taken, after the free ones.
    publisher.publish(f"{gw.prefix}/{hq}/2/lyra/lyra-pir", {"occupancy": True})
    wait_until(lambda: not ops.availability()["lyra"]["available"], 5, "lyra occupied")
    rooms = ops.availability()
    assert list(rooms) == ["orion", "vega", "lyra"]
    assert rooms["lyra"]["reasons"] == ["occupied"]
    assert rooms["lyra"]["occupancy"] == "occupied"
    assert list(ops.availability(available="false")) == ["lyra"]
    assert list(ops.availability(available="true")) == ["orion", "vega"]
