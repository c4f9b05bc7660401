"""The REST contract: filters, availability, errors and auth, over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

ROOMS = [
    {
        "id": "orion",
        "name": "Orion",
        "building": "hq",
        "floor": 2,
        "type": "meeting",
        "capacity": 8,
        "features": ["display", "vc"],
        "bookable": True,
    },
    {
        "id": "lyra",
        "name": "Lyra",
        "building": "hq",
        "floor": 2,
        "type": "meeting",
        "capacity": 4,
        "features": ["display"],
        "bookable": True,
    },
    {
        "id": "vega",
        "name": "Vega",
        "building": "annex",
        "floor": 1,
        "type": "meeting",
        "capacity": 12,
        "features": ["vc"],
        "bookable": True,
    },
    {"id": "desks", "building": "hq", "floor": 3, "type": "open", "capacity": 40},
]


@pytest.fixture
def gw(mqtt_broker: BrokerProcess, publisher: Publisher) -> Iterator[RunningGateway]:
    running = start_gateway(mqtt_broker, {"site": {"rooms": ROOMS}})
    publisher.publish(f"{running.prefix}/hq/2/orion/orion-pir", {"occupancy": True})
    wait_until(lambda: running.room("orion")["occupancy"]["state"] == "occupied", 2.0, "orion occupied")
    try:
        yield running
    finally:
        running.stop()


def ids(response: httpx.Response, key: str = "rooms") -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()[key]]


def test_room_filters(gw: RunningGateway) -> None:
    assert ids(gw.get("/v1/rooms")) == ["vega", "lyra", "orion", "desks"]
    assert ids(gw.get("/v1/rooms", building="hq", floor="2")) == ["lyra", "orion"]
    assert ids(gw.get("/v1/rooms", type="open")) == ["desks"]
    assert ids(gw.get("/v1/rooms", occupied="true")) == ["orion"]
    assert ids(gw.get("/v1/rooms", occupied="false", bookable="true")) == ["vega", "lyra"]


def test_room_status_has_the_contract_shape(gw: RunningGateway) -> None:
    room = gw.room("lyra")
    assert set(room) >= {
        "occupancy",
        "environment",
        "lighting",
        "access",
        "energy",
        "available_now",
        "updated_at",
    }
    assert room["occupancy"] == {
        "state": "unknown",
        "people": None,
        "since": None,
        "confidence": 0.0,
        "reason": "no evidence yet",
        "sensors_offline": False,
    }
    assert room["environment"] == {
        "co2_ppm": None,
        "temperature_c": None,
        "humidity_pct": None,
        "illuminance_lux": None,
    }
    assert room["lighting"] == {"on": None, "brightness_pct": None, "power_w": None}
    assert room["access"] == {"door_open": None, "locked": None}
    assert room["energy"] == {"kwh_today": None, "kwh_wasted_today": None}
    assert room["available_now"] is True


@pytest.mark.parametrize("path", ["/v1/rooms/nowhere", "/v1/devices/nothing"])
def test_unknown_ids_are_404_json(gw: RunningGateway, path: str) -> None:
    response = gw.get(path)
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


def test_bad_query_values_are_422_with_a_reason(gw: RunningGateway) -> None:
    response = gw.get("/v1/rooms", occupied="perhaps")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "occupied"]
    assert gw.get("/v1/availability", start="yesterday-ish").status_code == 422
    assert gw.get("/v1/availability", min_capacity=-1).status_code == 422


def test_availability_now_marks_occupied_rooms_and_skips_unbookable_ones(gw: RunningGateway) -> None:
    body = gw.get("/v1/availability").json()
    assert body["includes_now"] is True
    # Best fit first: free rooms before taken ones, the smallest first.
    assert [(room["id"], room["available"]) for room in body["rooms"]] == [
        ("lyra", True),
        ("vega", True),
        ("orion", False),
    ]
    assert body["rooms"][2]["reasons"] == ["occupied"]
    assert ids(gw.get("/v1/availability", available="true")) == ["lyra", "vega"]
    assert ids(gw.get("/v1/availability", available="true", min_capacity=5)) == ["vega"]
    assert ids(gw.get("/v1/availability", available="true", features="display")) == ["lyra"]
    assert ids(gw.get("/v1/availability", available="true", building="hq")) == ["lyra"]


def test_availability_for_a_future_window_lists_all_bookable_rooms(gw: RunningGateway) -> None:
    start = datetime.now(UTC) + timedelta(hours=2)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    body = gw.get("/v1/availability", **window).json()
    assert body["includes_now"] is False
    assert [(room["id"], room["available"]) for room in body["rooms"]] == [
        ("lyra", True),
        ("orion", True),
        ("vega", True),
    ]
    assert ids(gw.get("/v1/availability", features=["display", "vc"], **window)) == ["orion"]
    assert ids(gw.get("/v1/availability", features="display,vc", **window)) == ["orion"]


def test_availability_rejects_impossible_windows(gw: RunningGateway) -> None:
    now = datetime.now(UTC)
    backwards = gw.get("/v1/availability", start=now.isoformat(), end=(now - timedelta(hours=1)).isoformat())
    assert backwards.status_code == 422
    assert backwards.json()["detail"] == "end must be after start"
    past = gw.get(
        "/v1/availability",
        start=(now - timedelta(hours=3)).isoformat(),
        end=(now - timedelta(hours=2)).isoformat(),
    )
    assert past.status_code == 422


def test_health_and_openapi(gw: RunningGateway) -> None:
    assert gw.get("/healthz").json() == {"status": "ok"}
    assert gw.get("/readyz").json() == {"status": "ready", "checks": {"mqtt": True, "storage": True}}
    schema = gw.get("/openapi.json").json()
    # Without keys configured no route takes one (loopback only).
    assert "securitySchemes" not in schema.get("components", {})
    assert not any("security" in op for ops in schema["paths"].values() for op in ops.values())
    paths = schema["paths"]
    assert {
        "/v1/rooms",
        "/v1/rooms/{room_id}",
        "/v1/rooms/{room_id}/history",
        "/v1/availability",
        "/v1/devices",
    } <= set(paths)
    metrics = gw.get("/metrics").text
    assert "officegw_rooms 4.0" in metrics
    assert "officegw_rooms_occupied 1.0" in metrics


def test_api_keys_authenticate_and_scope_buildings(mqtt_broker: BrokerProcess) -> None:
    keys = [
        {"name": "ops", "sha256": hashlib.sha256(b"ops-secret").hexdigest(), "role": "operator"},
        {
            "name": "annex-panel",
            "sha256": hashlib.sha256(b"annex-secret").hexdigest(),
            "role": "viewer",
            "buildings": ["annex"],
        },
    ]
    running = start_gateway(mqtt_broker, {"site": {"rooms": ROOMS}, "api": {"keys": keys}})
    try:
        missing = running.get("/v1/rooms")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = running.http.get("/v1/rooms", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ops = running.http.get("/v1/rooms", headers={"Authorization": "Bearer ops-secret"})
        assert ids(ops) == ["vega", "lyra", "orion", "desks"]
        panel = {"Authorization": "Bearer annex-secret"}
        assert ids(running.http.get("/v1/rooms", headers=panel)) == ["vega"]
        assert running.http.get("/v1/rooms/orion", headers=panel).status_code == 404
        assert running.http.get("/v1/rooms/orion/occupancy/explain", headers=panel).status_code == 404
        assert running.http.get("/v1/rooms/vega/occupancy/explain", headers=panel).status_code == 200
        assert ids(running.http.get("/v1/availability", headers=panel)) == ["vega"]
        # Probes stay open for orchestrators.
        assert running.get("/healthz").status_code == 200
    finally:
        running.stop()


def test_lights_of_a_room_without_any_are_a_conflict_and_not_audited(gw: RunningGateway) -> None:
    response = gw.http.post("/v1/rooms/lyra/lights", json={"on": True, "brightness_pct": 50})
    assert response.status_code == 409
    assert response.json()["detail"] == "room 'lyra' has no lights"
    assert gw.get("/v1/events", kind="audit").json()["events"] == []
