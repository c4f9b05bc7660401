"""Authorisation everywhere and input limits (issue 11, points 2 and 3), over real HTTP.

A site of two buildings, hq and annex; keys scoped to hq must never get anything
of the annex back, from any route of the OpenAPI schema.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

ROOMS = [
    {"id": "orion", "name": "Orion", "building": "hq", "floor": 2, "type": "meeting", "bookable": True},
    {"id": "lyra", "name": "Lyra", "building": "hq", "floor": 2, "type": "meeting", "bookable": True},
    {"id": "vega", "name": "Vega", "building": "annex", "floor": 1, "type": "meeting", "bookable": True},
]
DEVICES = [
    {"id": "orion-light", "room": "orion", "kind": "light"},
    {"id": "orion-lock", "room": "orion", "kind": "lock"},
    {"id": "orion-badge", "room": "orion", "kind": "badge_reader"},
    {"id": "orion-hvac", "room": "orion", "kind": "hvac"},
    {"id": "vega-light", "room": "vega", "kind": "light"},
]
# Whatever of the annex could leak: building, room and device ids, names, topics.
ANNEX = re.compile(r"annex|vega", re.IGNORECASE)


def key(name: str, role: str, *buildings: str) -> dict[str, Any]:
    return {
        "name": name,
        "sha256": hashlib.sha256(f"{name}-secret".encode()).hexdigest(),
        "role": role,
        "buildings": list(buildings),
    }


KEYS = [
    key("site-admin", "admin"),
    key("site-viewer", "viewer"),
    key("hq-viewer", "viewer", "hq"),
    key("hq-operator", "operator", "hq"),
    key("hq-admin", "admin", "hq"),
]


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}-secret"}


def start(broker: BrokerProcess, *mapped: dict[str, Any], **api: Any) -> RunningGateway:
    site = {"rooms": ROOMS, "devices": [*DEVICES, *mapped]}
    return start_gateway(broker, {"site": site, "api": {"keys": KEYS, **api}})


def events(gw: RunningGateway, who: str, **params: Any) -> list[dict[str, Any]]:
    response = gw.http.get("/v1/events", params={"limit": 1000, **params}, headers=auth(who))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def dead_letters(gw: RunningGateway, who: str) -> list[dict[str, Any]]:
    response = gw.http.get("/v1/dead-letters", params={"limit": 1000}, headers=auth(who))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["dead_letters"]
    return found


@pytest.fixture(scope="module")
def site(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    """Both buildings with occupancy, alerts, commands, audit and dead letters of each,
    and events and dead letters of no building."""
    # Devices mapped by topic (Zigbee2MQTT), whose topics name no building.
    z2m = f"z2m-{uuid.uuid4().hex[:8]}"
    gw = start(
        mqtt_broker,
        {"id": "lamp-1", "room": "orion", "dialect": "zigbee2mqtt", "topic": f"{z2m}/lamp-1"},
        {"id": "lamp-2", "room": "vega", "dialect": "zigbee2mqtt", "topic": f"{z2m}/lamp-2"},
    )
    publisher = Publisher(mqtt_broker)
    p = gw.prefix
    try:
        publisher.publish(f"{p}/hq/2/orion/orion-pir", {"occupancy": True})
        publisher.publish(f"{p}/annex/1/vega/vega-pir", {"occupancy": True})
        publisher.publish(f"{p}/annex/1/vega/vega-co2", {"co2": 1500})
        publisher.publish(f"{p}/hq/2/orion/orion-co2", {"co2": 1600})
        publisher.publish(f"{p}/annex/1/vega/vega-pir", b"not json")
        publisher.publish(f"{p}/hq/2/orion/orion-pir", b"not json either")
        # In hq's topic space but naming an annex room: belongs to the annex too.
        publisher.publish(f"{p}/hq/1/vega/stray", b"{")
        # The bare prefix: a topic of no building.
        publisher.publish(p, b"junk")
        publisher.publish(f"{z2m}/lamp-1", b"[")
        publisher.publish(f"{z2m}/lamp-2", b"]")
        for device in ("vega-light", "orion-light"):
            response = gw.http.post(
                f"/v1/devices/{device}/commands", json={"state": "ON"}, headers=auth("site-admin")
            )
            assert response.status_code == 200, response.text
        assert gw.http.post("/v1/rules/reload", headers=auth("site-admin")).status_code == 200
        # A failed call (audited, of no room) whose path names an annex room.
        assert gw.http.get("/v1/rooms/vega", headers={"Authorization": "Bearer wrong"}).status_code == 401
        wait_until(
            lambda: {e["room_id"] for e in events(gw, "site-admin", kind="alert")} >= {"orion", "vega"},
            5.0,
            "CO2 alerts in both buildings",
        )
        wait_until(lambda: len(dead_letters(gw, "site-admin")) >= 6, 5.0, "six dead letters")
        # An alert in each building; the walk fills `{alert_id}` with them.
        for alert in events(gw, "site-admin", kind="alert"):
            (ANNEX_IDS if alert["room_id"] == "vega" else HQ_IDS)["alert_id"] = str(alert["seq"])
        # A booking in each building; the walk fills `{booking_id}` with them.
        for room, ids in (("vega", ANNEX_IDS), ("orion", HQ_IDS)):
            response = gw.http.post(
                "/v1/bookings",
                json={
                    "room_id": room,
                    "start": "2099-01-05T09:00:00Z",
                    "end": "2099-01-05T10:00:00Z",
                    "title": f"{room.title()} board",
                    "organizer": f"{room}-boss",
                    "external_id": f"{room}-ext",
                },
                headers=auth("site-admin"),
            )
            assert response.status_code == 201, response.text
            ids["booking_id"] = response.json()["id"]
        yield gw
    finally:
        publisher.close()
        gw.stop()


def _body(method: str, path: str) -> dict[str, Any] | None:
    if path.endswith("/commands"):
        return {"state": "ON"}
    if path.endswith("/lights"):
        return {"on": True}
    if path.endswith("/book-now"):
        return {"minutes": 30}
    if path == "/v1/bookings/{booking_id}" and method == "patch":
        return {"title": "moved"}
    if path == "/v1/bookings" and method == "post":
        return {"room_id": "vega", "start": "2099-02-01T09:00:00Z", "end": "2099-02-01T10:00:00Z"}
    return None


# Path parameters filled with annex ids, and with hq ids (the ids of rooms, devices
# and, once the site fixture made them, of a booking and an alert in each building).
ANNEX_IDS = {"room_id": "vega", "device_id": "vega-light"}
HQ_IDS = {"room_id": "orion", "device_id": "orion-light"}
# Query parameters some routes filter by, asking for the annex; others ignore them.
ANNEX_QUERY = {"room": "vega", "building": "annex", "metric": "co2"}


def _with_ids(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), "vega"), path)


def _streams(operation: dict[str, Any]) -> bool:
    """Whether the route answers an endless event stream (GET /v1/stream)."""
    return "text/event-stream" in operation["responses"].get("200", {}).get("content", {})


def _call(site: RunningGateway, method: str, url: str, streams: bool, **request: Any) -> tuple[int, str]:
    """(status, body); of an event stream, what comes up to its `ready` event (the
    catch-up and the snapshot of the rooms)."""
    if not streams:
        response = site.http.request(method, url, **request)
        return response.status_code, response.text
    with site.http.stream(method, url, **request) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, response.text
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            if line == "event: ready":
                break
        return response.status_code, "\n".join(lines)


@pytest.mark.parametrize("who", ["hq-viewer", "hq-operator", "hq-admin"])
def test_no_route_returns_anything_of_another_building(site: RunningGateway, who: str) -> None:
    schema = site.http.get("/openapi.json", headers=auth(who)).json()
    calls = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            templated = "{" in path
            variants = [(HQ_IDS, ANNEX_QUERY), (HQ_IDS, {"metric": "co2"})]
            for ids, query in [(ANNEX_IDS, ANNEX_QUERY), *variants] if templated else variants:
                url = _with_ids(path, ids)
                status, text = _call(
                    site,
                    method.upper(),
                    url,
                    _streams(operations[method]),
                    params=query,
                    json=_body(method, path),
                    headers=auth(who),
                )
                calls += 1
                assert status < 500, (method, url, text)
                leaked = ANNEX.search(text)
                assert leaked is None, (who, method, url, status, text[:500])
                if templated and ids is ANNEX_IDS:
                    # Another building's room or device is not there for this key.
                    assert status in (403, 404), (method, url, status)
    assert calls >= 2 * len(schema["paths"])


def test_scoped_keys_still_see_their_own_building(site: RunningGateway) -> None:
    rooms_of_hq = {e["room_id"] for e in events(site, "hq-viewer")}
    assert rooms_of_hq == {"orion"}
    assert {e["room_id"] for e in events(site, "site-admin")} >= {"orion", "vega", None}
    alerts = site.http.get("/v1/alerts", headers=auth("hq-viewer")).json()["events"]
    assert alerts and {a["room_id"] for a in alerts} == {"orion"}
    assert site.http.get("/v1/alerts", params={"room": "vega"}, headers=auth("hq-viewer")).json() == {
        "events": [],
        "next_after": 0,
    }
    hq_topics = {letter["topic"] for letter in dead_letters(site, "hq-viewer")}
    z2m = next(d.topic for d in site.settings.site.devices if d.id == "lamp-1")
    assert hq_topics == {f"{site.prefix}/hq/2/orion/orion-pir", z2m}
    all_topics = {letter["topic"] for letter in dead_letters(site, "site-viewer")}
    p = site.prefix
    annex_lamp = z2m.replace("lamp-1", "lamp-2")
    assert {p, f"{p}/hq/1/vega/stray", f"{p}/annex/1/vega/vega-pir", annex_lamp} <= all_topics
    # Rules are the site's: listed for every key, but when they last fired (in any
    # building) only for keys that see every building.
    scoped = site.http.get("/v1/rules", headers=auth("hq-viewer")).json()["rules"]
    assert scoped and all(rule["last_fired"] is None for rule in scoped)
    unscoped = site.http.get("/v1/rules", headers=auth("site-viewer")).json()["rules"]
    assert any(rule["last_fired"] is not None for rule in unscoped)


def test_cursor_pages_through_a_filtered_log_without_short_pages(site: RunningGateway) -> None:
    everything = events(site, "site-admin")
    visible = [e["seq"] for e in events(site, "hq-viewer")]
    assert len(visible) >= 2 and len(everything) > len(visible)
    # Pages of one: every hq event comes, in order, none is skipped and no page of
    # annex events ends the walk early. (Retried commands may add events meanwhile.)
    seen: list[int] = []
    after = 0
    while True:
        params = {"after": after, "limit": 1}
        page = site.http.get("/v1/events", params=params, headers=auth("hq-viewer")).json()
        if not page["events"]:
            assert page["next_after"] == after
            break
        assert len(page["events"]) == 1
        seen += [e["seq"] for e in page["events"]]
        after = page["next_after"]
    assert seen[: len(visible)] == visible
    assert seen == [e["seq"] for e in events(site, "hq-viewer")][: len(seen)]


def test_metrics_need_a_key_without_a_building_scope(site: RunningGateway) -> None:
    assert site.get("/metrics").status_code == 401
    scoped = site.http.get("/metrics", headers=auth("hq-viewer"))
    assert scoped.status_code == 403
    assert "building scope" in scoped.json()["detail"]
    scraped = site.http.get("/metrics", headers=auth("site-viewer"))
    assert scraped.status_code == 200
    assert "officegw_rooms 3.0" in scraped.text
    # The probes stay open.
    assert site.get("/healthz").status_code == 200
    assert site.get("/readyz").status_code == 200


def test_rules_reload_needs_a_key_without_a_building_scope(site: RunningGateway) -> None:
    refused = site.http.post("/v1/rules/reload", headers=auth("hq-admin"))
    assert refused.status_code == 403


def test_forbidden_and_failed_calls_are_audited_without_flooding(site: RunningGateway) -> None:
    for _ in range(4):
        response = site.http.post("/v1/rooms/lyra/lights", json={"on": True}, headers=auth("hq-viewer"))
        assert response.status_code == 403
    for _ in range(3):
        wrong = site.http.get("/v1/rooms/lyra", headers={"Authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401
    audit = events(site, "site-admin", kind="audit")
    forbidden = [
        e["data"] for e in audit if e["data"]["action"] == "forbidden" and "lyra" in e["data"]["path"]
    ]
    assert len(forbidden) == 1, forbidden
    assert forbidden[0] | {"reason": ""} == {
        "actor": "hq-viewer",
        "action": "forbidden",
        "client": "127.0.0.1",
        "method": "POST",
        "path": "/v1/rooms/lyra/lights",
        "status": 403,
        "reason": "",
    }
    assert "operator" in forbidden[0]["reason"]
    failed = [
        e for e in audit if e["data"]["action"] == "auth_failed" and e["data"]["path"] == "/v1/rooms/lyra"
    ]
    assert len(failed) == 1 and failed[0]["room_id"] is None
    assert failed[0]["data"]["actor"] == "anonymous" and failed[0]["data"]["status"] == 401
    # Audit of refused calls belongs to no room: keys scoped to buildings never see it.
    scoped = events(site, "hq-admin", kind="audit")
    assert all(e["room_id"] == "orion" for e in scoped), scoped


def test_repeated_bad_keys_lock_the_client_out_before_its_key_is_looked_at(
    mqtt_broker: BrokerProcess,
) -> None:
    gw = start(mqtt_broker)
    try:
        statuses = [
            gw.http.get("/v1/rooms", headers={"Authorization": f"Bearer guess-{n}"}).status_code
            for n in range(25)
        ]
        assert statuses[:20] == [401] * 20
        assert statuses[20:] == [429] * 5
        locked = gw.http.get("/v1/rooms", headers=auth("site-admin"))
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        # Requests with a body are turned away before it is read, too.
        assert gw.http.post("/v1/rooms/orion/lights", json={"on": True}).status_code == 429
        assert gw.get("/healthz").status_code == 200
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def guarded(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    gw = start(mqtt_broker)
    try:
        yield gw
    finally:
        gw.stop()


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


MEGABYTE_BODY = b'{"on": true, "brightness_pct": 50, "note": "' + b"x" * 1_048_576 + b'"}'


def test_oversized_bodies_are_refused_before_they_are_read(guarded: RunningGateway) -> None:
    """The server runs in this process (start_gateway's ServerThread): its memory is ours."""
    url = "/v1/rooms/orion/lights"
    headers = {"Content-Type": "application/json"}
    for who in ({}, auth("hq-operator")):
        response = guarded.http.post(url, content=MEGABYTE_BODY, headers={**headers, **who})
        assert response.status_code == 413, response.text[:200]
        assert response.json() == {"detail": "request body larger than 65536 bytes"}
    before = rss_kib()
    for _ in range(5):
        for who in ({}, auth("hq-operator")):
            response = guarded.http.post(url, content=MEGABYTE_BODY, headers={**headers, **who})
            assert response.status_code == 413
    grown = rss_kib() - before
    assert grown < 4096, f"RSS grew by {grown} KiB over ten 1 MB posts"

    # Without Content-Length (chunked): counted as it streams, refused at the limit.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(MEGABYTE_BODY), 16_384):
            yield MEGABYTE_BODY[start : start + 16_384]

    chunked = guarded.http.post(url, content=chunks(), headers={**headers, **auth("hq-operator")})
    assert chunked.status_code == 413, chunked.text[:200]
    # Without a key even the first chunk is not read: authentication comes first.
    assert guarded.http.post(url, content=chunks(), headers=headers).status_code == 401
    # The connection is still good for the next request.
    assert guarded.http.get("/v1/rooms/orion", headers=auth("hq-viewer")).status_code == 200


Body = bytes | dict[str, Any]


def post(gw: RunningGateway, path: str, body: Body, who: str = "hq-operator") -> httpx.Response:
    if isinstance(body, bytes):
        return gw.http.post(path, content=body, headers={"Content-Type": "application/json", **auth(who)})
    return gw.http.post(path, json=body, headers=auth(who))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/rooms/orion/lights", b'{"on": true, "brightness_pct": NaN}'),
        ("/v1/rooms/orion/lights", b'{"on": true, "brightness_pct": Infinity}'),
        ("/v1/rooms/orion/lights", {"on": "yes"}),
        ("/v1/rooms/orion/lights", {"on": 1}),
        ("/v1/rooms/orion/lights", {"on": True, "brightness_pct": "50"}),
        ("/v1/devices/orion-hvac/commands", b'{"setpoint": -Infinity}'),
        ("/v1/devices/orion-light/commands", {"brightness": "100"}),
        ("/v1/devices/orion-light/commands", {"brightness": 100.0}),
    ],
)
def test_bodies_are_strict_and_finite(guarded: RunningGateway, path: str, body: Body) -> None:
    response = post(guarded, path, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    "params",
    [{"step": "inf"}, {"step": "nan"}, {"step": "-inf"}, {"start": "nan"}, {"end": "inf"}],
)
def test_non_finite_query_numbers_are_422(guarded: RunningGateway, params: dict[str, str]) -> None:
    response = guarded.http.get(
        "/v1/rooms/orion/history", params={"metric": "co2", **params}, headers=auth("hq-viewer")
    )
    assert response.status_code == 422, response.text


def test_out_of_range_times_are_422_not_500(guarded: RunningGateway) -> None:
    viewer = auth("hq-viewer")
    for params in (
        {"start": "9999-12-31T23:59:00Z"},
        {"start": "0001-01-01T00:00:00+05:00"},
    ):
        response = guarded.http.get("/v1/availability", params=params, headers=viewer)
        assert response.status_code == 422, (params, response.text)
    early = guarded.http.get(
        "/v1/rooms/orion/history", params={"metric": "co2", "end": "0001-01-01T00:00:00Z"}, headers=viewer
    )
    assert early.status_code == 422, early.text


def test_error_bodies_do_not_echo_the_input(guarded: RunningGateway) -> None:
    big = post(guarded, "/v1/rooms/orion/lights", {"on": "x" * 60_000})
    assert big.status_code == 422
    assert len(big.content) < 2048, len(big.content)
    (problem,) = big.json()["detail"]
    assert problem["loc"] == ["body", "on"]
    assert problem["type"] == "bool_type"
    assert problem["input"] == "x" * 100 + "..."
    # Long names and values, many problems: a few are listed, each cut short.
    extras = {f"extra-{n}-" + "k" * 500: "y" * 500 for n in range(50)}
    many = post(guarded, "/v1/rooms/orion/lights", {"on": True, **extras})
    assert many.status_code == 422
    assert len(many.content) < 2048, len(many.content)
    assert len(many.json()["detail"]) == 5
    # Ids in paths are not repeated either.
    missing = guarded.http.get("/v1/rooms/" + "z" * 5000, headers=auth("hq-viewer"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "room not found"}


@pytest.mark.parametrize(
    ("device", "command", "reason"),
    [
        ("orion-light", {"state": "UNLOCK"}, "a light takes state ON/OFF and brightness, not state UNLOCK"),
        ("orion-light", {"setpoint": 21}, "a light takes state ON/OFF and brightness, not setpoint"),
        ("orion-lock", {"brightness": 100}, "a lock takes state LOCK/UNLOCK, not brightness"),
        ("orion-badge", {"state": "UNLOCK"}, "a badge reader takes no commands"),
        ("orion-hvac", {"state": "ON"}, "an HVAC unit takes setpoint and mode, not state"),
    ],
)
def test_commands_must_suit_the_device(
    guarded: RunningGateway, device: str, command: dict[str, Any], reason: str
) -> None:
    response = post(guarded, f"/v1/devices/{device}/commands", command)
    assert response.status_code == 409, response.text
    assert response.json() == {"detail": f"device {device!r}: {reason}"}


def test_commands_that_suit_the_device_go_out(guarded: RunningGateway) -> None:
    for device, command in (
        ("orion-lock", {"state": "LOCK"}),
        ("orion-hvac", {"setpoint": 21, "mode": "heat"}),
        ("orion-light", {"state": "ON", "brightness": 100}),
    ):
        response = post(guarded, f"/v1/devices/{device}/commands", command)
        assert response.status_code == 200, response.text
        assert response.json()["payload"] == command


def test_error_statuses_are_documented(guarded: RunningGateway) -> None:
    paths = guarded.http.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            if path not in ("/healthz", "/readyz"):
                assert {"401", "403", "429"} <= documented, (method, path)
            if "{" in path:
                assert "404" in documented, (method, path)
            if method == "post":
                assert {"413", "422"} <= documented, (method, path)
    for path in ("/v1/devices/{device_id}/commands", "/v1/rooms/{room_id}/lights"):
        assert "409" in paths[path]["post"]["responses"]
