"""The alert lifecycle over real HTTP, with alerts raised from readings on mosquitto:
operators of a building acknowledge and resolve their building's alerts only, viewers
none; who and when are kept, audited, streamed, and still there after a restart."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.broker import BrokerProcess
from tests.sse import StreamReader
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

KEYS = {
    "admin-key": ("admin", "admin", []),
    "hq-ops-key": ("hq-ops", "operator", ["hq"]),
    "annex-ops-key": ("annex-ops", "operator", ["annex"]),
    "hq-view-key": ("hq-view", "viewer", ["hq"]),
}


def site(keys: bool = True) -> dict[str, Any]:
    config: dict[str, Any] = {
        "site": {
            "rooms": [
                {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
                {"id": "vega", "building": "annex", "floor": 1, "type": "meeting"},
            ],
        },
        "push": {"stream": {"ping_interval": 0.5}},
    }
    if keys:
        config["api"] = {
            "keys": [
                {
                    "name": name,
                    "sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "role": role,
                    "buildings": b,
                }
                for key, (name, role, b) in KEYS.items()
            ],
            "auth_failure_limit": 0,
        }
    return config


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raise_co2_alerts(
    gw: RunningGateway, publisher: Publisher, *rooms: tuple[str, str, str]
) -> dict[str, int]:
    """Room -> the id of the CO2 alert its sensor's 1,200 ppm raised."""
    for building, floor, room in rooms:
        publisher.publish(f"{gw.prefix}/{building}/{floor}/{room}/{room}-co2", {"co2": 1200})

    def raised() -> dict[str, int] | None:
        alerts = gw.http.get("/v1/alerts", headers=as_key("admin-key")).json()["events"]
        by_room = {a["room_id"]: a["seq"] for a in alerts if a["data"]["rule"] == "co2-ventilation-alert"}
        return by_room if len(by_room) == len(rooms) else None

    found = wait_until(raised, 10.0, "a CO2 alert per room")
    return found


def post(http: httpx.Client, path: str, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return http.post(path, json=body, headers=as_key(key))


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "officegw.db"


def test_operators_acknowledge_and_resolve_their_buildings_alerts_and_it_survives_a_restart(
    mqtt_broker: BrokerProcess, publisher: Publisher, storage: Path
) -> None:
    gw = start_gateway(mqtt_broker, site(), storage=storage)
    try:
        alerts = raise_co2_alerts(gw, publisher, ("hq", "2", "orion"), ("annex", "1", "vega"))
        orion, vega = alerts["orion"], alerts["vega"]
        http = gw.http
        audits = StreamReader(gw.server.url, "/v1/stream?kind=audit", headers=as_key("hq-ops-key"))
        try:
            audits.wait_ready()

            # A viewer may not; another building's operator does not even see it.
            assert post(http, f"/v1/alerts/{orion}/ack", "hq-view-key").status_code == 403
            assert post(http, f"/v1/alerts/{vega}/ack", "hq-ops-key").status_code == 404
            assert post(http, f"/v1/alerts/{vega}/resolve", "hq-ops-key").status_code == 404
            assert http.get(f"/v1/alerts/{vega}", headers=as_key("hq-ops-key")).status_code == 404
            listed = http.get("/v1/alerts", headers=as_key("hq-ops-key")).json()["events"]
            assert [a["seq"] for a in listed] == [orion]
            assert listed[0]["state"] == "open" and listed[0]["acked_by"] is None

            acked = post(http, f"/v1/alerts/{orion}/ack", "hq-ops-key", {"note": "window opened"})
            assert acked.status_code == 200, acked.text
            body = acked.json()
            assert (body["state"], body["acked_by"], body["ack_note"]) == (
                "acknowledged",
                "hq-ops",
                "window opened",
            )
            assert body["acked_at"] is not None and body["resolved_at"] is None
            # Acknowledged again: the first acknowledgement stays.
            again = post(http, f"/v1/alerts/{orion}/ack", "admin-key")
            assert again.status_code == 200
            assert (again.json()["acked_by"], again.json()["acked_at"]) == ("hq-ops", body["acked_at"])

            resolved = post(http, f"/v1/alerts/{orion}/resolve", "admin-key", {"note": "CO2 back to 600 ppm"})
            assert resolved.status_code == 200
            r = resolved.json()
            assert (r["state"], r["resolved_by"], r["resolve_note"], r["acked_by"]) == (
                "resolved",
                "admin",
                "CO2 back to 600 ppm",
                "hq-ops",
            )
            for step in ("ack", "resolve"):
                conflict = post(http, f"/v1/alerts/{orion}/{step}", "hq-ops-key")
                assert conflict.status_code == 409
                assert "already resolved (by admin at " in conflict.json()["detail"]

            # Resolving an open alert acknowledges it in the same instant.
            direct = post(http, f"/v1/alerts/{vega}/resolve", "annex-ops-key").json()
            assert (direct["acked_by"], direct["acked_at"]) == ("annex-ops", direct["resolved_at"])

            # The audit: who did what to which alert, also on the (scoped) stream.
            audit = http.get("/v1/events", params={"kind": "audit"}, headers=as_key("admin-key")).json()[
                "events"
            ]
            done = [
                (e["data"]["actor"], e["data"]["action"], e["data"]["alert"])
                for e in audit
                if "alert" in e["data"]
            ]
            assert done == [
                ("hq-ops", "alert_ack", orion),
                ("admin", "alert_resolve", orion),
                ("annex-ops", "alert_resolve", vega),
            ]

            def streamed() -> list[tuple[str, str]]:
                return [
                    (sse.json()["data"]["action"], sse.json()["room_id"])
                    for sse in audits.events
                    if sse.event == "audit" and "alert" in sse.json()["data"]
                ]

            # The annex alert's audit is not for this key.
            wait_until(lambda: len(streamed()) >= 2, 5.0, "the audit events on hq's stream")
            assert streamed() == [("alert_ack", "orion"), ("alert_resolve", "orion")]
        finally:
            audits.close()

        by_state = http.get("/v1/alerts", params={"state": "resolved"}, headers=as_key("admin-key")).json()
        assert sorted(a["seq"] for a in by_state["events"]) == sorted([orion, vega])
        assert (
            http.get("/v1/alerts", params={"state": "open"}, headers=as_key("admin-key")).json()["events"]
            == []
        )
        before = http.get(f"/v1/alerts/{orion}", headers=as_key("admin-key")).json()
    finally:
        gw.stop()

    again_gw = start_gateway(mqtt_broker, site(), storage=storage)
    try:
        after = again_gw.http.get(f"/v1/alerts/{orion}", headers=as_key("admin-key"))
        assert after.status_code == 200
        assert after.json() == before
        assert post(again_gw.http, f"/v1/alerts/{orion}/resolve", "admin-key").status_code == 409
    finally:
        again_gw.stop()


def test_bad_ids_and_bodies_get_clear_answers(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    gw = start_gateway(mqtt_broker, site())
    try:
        orion = raise_co2_alerts(gw, publisher, ("hq", "2", "orion"))["orion"]
        http = gw.http
        publisher.publish(f"{gw.prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        not_an_alert = wait_until(
            lambda: [
                e["seq"]
                for e in http.get("/v1/events", headers=as_key("admin-key")).json()["events"]
                if e["kind"] == "occupancy"
            ],
            5.0,
            "an occupancy event",
        )[0]
        assert post(http, f"/v1/alerts/{not_an_alert}/ack", "admin-key").status_code == 404
        assert post(http, "/v1/alerts/999999/ack", "admin-key").status_code == 404
        assert post(http, "/v1/alerts/0/ack", "admin-key").status_code == 422
        assert post(http, "/v1/alerts/abc/ack", "admin-key").status_code == 422
        assert post(http, f"/v1/alerts/{orion}/ack", "admin-key", {"note": 5}).status_code == 422
        assert post(http, f"/v1/alerts/{orion}/ack", "admin-key", {"note": "x" * 1001}).status_code == 422
        assert post(http, f"/v1/alerts/{orion}/ack", "admin-key", {"reason": "x"}).status_code == 422
        assert http.post(f"/v1/alerts/{orion}/ack").status_code == 401
        assert (
            http.get("/v1/alerts", params={"state": "closed"}, headers=as_key("admin-key")).status_code == 422
        )
    finally:
        gw.stop()


def test_without_keys_the_local_operator_is_named_local(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    gw = start_gateway(mqtt_broker, site(keys=False))
    try:
        publisher.publish(f"{gw.prefix}/hq/2/orion/orion-co2", {"co2": 1500})
        alert = wait_until(lambda: gw.get("/v1/alerts").json()["events"], 10.0, "a CO2 alert")[0]
        resolved = gw.http.post(f"/v1/alerts/{alert['seq']}/resolve").json()
        assert (resolved["acked_by"], resolved["resolved_by"]) == ("local", "local")
    finally:
        gw.stop()
