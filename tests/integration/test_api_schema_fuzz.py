"""The API fuzzed against its own OpenAPI schema (issue 11, point 13).

Schemathesis reads the live `/openapi.json` of a real gateway (a real mosquitto, a
site in two buildings with readings, alerts, commands and dead letters) and sends
every operation listed there, whatever routes exist when this runs, requests it
generates from the schema, over HTTP, with an admin key: the examples, coverage
(boundaries and invalid values) and fuzzing phases per operation, then the stateful
phase (calls chained by the links it infers, room and device ids from one answer
into the next).

Every built-in check is on, as `--checks all`: not_a_server_error (no 5xx),
status_code_conformance (no status the operation does not document),
content_type_conformance, response_schema_conformance, response_headers_conformance,
positive_data_acceptance (with 422 allowed, see `_config`), negative_data_rejection,
missing_required_header, unsupported_method, allow_header_conformance, ignored_auth
(each operation without a key and with a wrong one), and in the stateful test
use_after_free (but for bookings, see `BOOKINGS_CANCELLED_NOT_DELETED`) and
ensure_resource_availability. Two have nothing to act on here:
object_level_authorization needs several identities (building scopes are what
test_api_security.py checks), and max_response_time has no limit set (a loaded
machine answers slowly, not wrongly).

Bounded and reproducible: at most 25 generated requests per operation and phase, a
fixed seed, deterministic generation, no example database, no shrinking; about half
a minute on two loaded cores.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from _pytest.nodes import Node
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from api.auth import SECURITY_SCHEME
from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, SimLight, start_gateway, wait_until

# schemathesis 4.32's `from_fixture` names each operation's subtest by setting the
# item's `_nodeid`, which pytest 9.2 replaced with `_id` (a NodeId): the old name
# back, as a view of the new one, for as long as schemathesis needs it.
try:
    from _pytest.nodeid import NodeId, coerce_node_id
except ImportError:  # an older pytest: items have their `_nodeid`
    pass
else:
    if not hasattr(Node, "_nodeid"):

        def _get_nodeid(node: Node) -> NodeId:
            return node._id

        def _set_nodeid(node: Node, value: str | NodeId) -> None:
            node._id = coerce_node_id(value)

        Node._nodeid = property(_get_nodeid, _set_nodeid)  # type: ignore[attr-defined]

ADMIN_KEY = "fuzz-admin-secret"
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
    {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting", "capacity": 4, "bookable": True},
    {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 12, "bookable": True},
    {"id": "desks", "building": "hq", "floor": 3, "type": "open", "capacity": 40},
]
DEVICES = [
    {"id": "orion-lock", "room": "orion", "kind": "lock"},
    {"id": "orion-hvac", "room": "orion", "kind": "hvac"},
    {"id": "orion-badge", "room": "orion", "kind": "badge_reader"},
    {"id": "vega-light", "room": "vega", "kind": "light"},
]
# Path and query values that name what exists, offered half of the time (the other
# half is whatever the schema allows, mostly ids of nothing).
KNOWN = {
    "rooms": ["orion", "lyra", "vega", "desks"],
    "devices": ["orion-lamp", "orion-lock", "orion-hvac", "orion-pir", "vega-light", "vega-co2"],
    "metrics": ["co2", "co2_ppm", "temperature", "occupancy", "power", "illuminance"],
    "buildings": ["hq", "annex"],
}


def _times(now: float) -> dict[str, list[Any]]:
    """Windows around the seeded readings (the last hour) and the next hour."""
    iso = [datetime.fromtimestamp(now + hours * 3600, UTC).isoformat() for hours in (-2, -1, -0.5, 0.5, 1)]
    return {"times": iso, "steps": [60, 600, 3600.0]}


def _streams(openapi: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations that answer an event stream, which may stay open and silent: a
    first event or two seconds of each, and fewer requests."""
    return [
        {
            "include-name": f"{method.upper()} {path}",
            "request-timeout": 2,
            "max-stream-events": 1,
            "generation": {"max-examples": 5},
        }
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if any("text/event-stream" in r.get("content", {}) for r in operation["responses"].values())
    ]


# `DELETE /v1/bookings/{booking_id}` cancels a booking and keeps it, readable with
# status `cancelled` (booking systems see their cancellations; the README and the
# operation's description say so), so a GET after it answers 200, by design, where
# use_after_free expects a 404. That check is off for this path alone.
BOOKINGS_CANCELLED_NOT_DELETED = {
    "include-path": "/v1/bookings/{booking_id}",
    "checks": {"use_after_free": {"enabled": False}},
}


def _config(base_url: str, now: float, openapi: dict[str, Any]) -> dict[str, Any]:
    known = {**KNOWN, **_times(now)}
    return {
        "base-url": base_url,
        "seed": 20_260_611,
        # Slow data generation on a loaded machine is no finding.
        "suppress-health-check": ["too_slow"],
        "generation": {
            # Per operation and phase.
            "max-examples": 25,
            "deterministic": True,
            "database": "none",
            "no-shrink": True,
            # Every request carries the admin key (below); the ignored_auth check
            # sends each operation's request again without it and with a wrong one.
            "with-security-parameters": False,
        },
        # Every built-in check is on (the default); one expects one more status:
        "checks": {
            # A request the schema allows may still be refused with 422 for what
            # JSON Schema cannot say: an availability window ending before it starts
            # or in the past, a device command naming no field, 124.0 for an integer
            # (JSON Schema counts it as one; the strict bodies do not).
            "positive_data_acceptance": {
                # schemathesis' default list, and 422.
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
            },
        },
        "request-timeout": 10,
        "dictionaries": {name: {"values": values} for name, values in known.items()},
        "parameters": {
            "path.room_id": {"dictionary": "rooms", "probability": 0.8},
            "path.device_id": {"dictionary": "devices", "probability": 0.8},
            "query.room": {"dictionary": "rooms", "probability": 0.5},
            "query.metric": {"dictionary": "metrics", "probability": 0.8},
            "query.building": {"dictionary": "buildings", "probability": 0.5},
            "query.start": {"dictionary": "times", "probability": 0.5},
            "query.end": {"dictionary": "times", "probability": 0.5},
            "query.step": {"dictionary": "steps", "probability": 0.5},
        },
        # The admin key, for the bearer scheme the schema declares; checks that
        # leave it out or spoil it (ignored_auth) expect a 401.
        "auth": {"openapi": {SECURITY_SCHEME: {"bearer": ADMIN_KEY}}},
        "operations": [*_streams(openapi), BOOKINGS_CANCELLED_NOT_DELETED],
    }


@pytest.fixture(scope="module")
def live(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    """A gateway with rooms in two buildings, readings of several metrics, alerts,
    commands and dead letters, so that the routes have something to return."""
    admin = {"name": "fuzz-admin", "sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest(), "role": "admin"}
    lamp_topic = f"z2m-fuzz-{time.monotonic_ns()}/orion-lamp"
    devices = [*DEVICES, {"id": "orion-lamp", "room": "orion", "dialect": "zigbee2mqtt", "topic": lamp_topic}]
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {"rooms": ROOMS, "devices": devices},
            # The fuzzer sends only the admin key, but a check may leave it out: no
            # lockout, so such a request cannot turn the rest of the run into 429s.
            "api": {"keys": [admin], "auth_failure_limit": 0},
            # Webhooks the fuzzer subscribes are sent nowhere but this machine (refused
            # ports): no lookups or connections to whatever hosts it makes up.
            "push": {"webhooks": {"allowed_hosts": ["127.0.0.1"]}},
        },
    )
    gw.http.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
    publisher = Publisher(mqtt_broker)
    lamp = SimLight(mqtt_broker, lamp_topic)
    p = gw.prefix
    try:
        lamp.report()
        now = time.time()
        for i in range(5):
            ts = now - 3600 + i * 600
            publisher.publish(f"{p}/hq/2/orion/orion-pir", {"occupancy": i % 2 == 0, "ts": ts})
            publisher.publish(
                f"{p}/hq/2/orion/orion-env", {"co2": 600 + 300 * i, "temperature": 21.5, "ts": ts}
            )
            publisher.publish(f"{p}/annex/1/vega/vega-co2", {"co2": 1500 + i, "ts": ts})
        publisher.publish(f"{p}/hq/2/orion/orion-pir", b"not json")
        publisher.publish(p, b"junk")
        response = gw.http.post("/v1/rooms/orion/lights", json={"on": True, "brightness_pct": 60})
        assert response.status_code == 200, response.text
        wait_until(lambda: gw.get("/v1/alerts").json()["events"], 5.0, "a CO2 alert")
        wait_until(lambda: len(gw.get("/v1/dead-letters").json()["dead_letters"]) >= 2, 5.0, "dead letters")
        wait_until(lambda: gw.get("/v1/rooms/orion/metrics").json()["count"] >= 2, 5.0, "recorded metrics")
        yield gw
    finally:
        lamp.close()
        publisher.close()
        gw.stop()


@pytest.fixture(scope="module")
def api_schema(live: RunningGateway) -> BaseSchema:
    openapi = live.get("/openapi.json").json()
    config = SchemathesisConfig.from_dict(_config(live.server.url, time.time(), openapi))
    return schemathesis.openapi.from_url(f"{live.server.url}/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_operations_chained_by_their_links_conform(api_schema: BaseSchema) -> None:
    """Schemathesis' stateful phase: sequences of calls that feed what one answers
    (room and device ids) into the next, under the same checks, which here include
    those that need a sequence (use_after_free, ensure_resource_availability)."""
    machine = api_schema.as_state_machine()
    machine.run(
        settings=hypothesis.settings(
            api_schema.config.get_hypothesis_settings(phase="stateful"),
            max_examples=25,
            stateful_step_count=6,
        )
    )


def test_a_body_that_is_not_utf8_is_a_documented_400(live: RunningGateway) -> None:
    """Found by the fuzzer: FastAPI answers 400 for body bytes it cannot decode,
    which the routes with a body did not document (the bookings' too, later)."""
    paths = live.get("/openapi.json").json()["paths"]
    for method, path, templated, body in (
        ("POST", "/v1/rooms/orion/lights", "/v1/rooms/{room_id}/lights", b"\xff\xfe{"),
        ("POST", "/v1/devices/orion-lamp/commands", "/v1/devices/{device_id}/commands", b"\x80"),
        ("POST", "/v1/bookings", "/v1/bookings", b"\xff"),
        ("PATCH", "/v1/bookings/nothing", "/v1/bookings/{booking_id}", b"{\x80}"),
        ("POST", "/v1/rooms/orion/book-now", "/v1/rooms/{room_id}/book-now", b"\xfe"),
    ):
        response = live.http.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (method, path, response.text)
        assert response.json() == {"detail": "There was an error parsing the body"}
        documented = paths[templated][method.lower()]["responses"]
        assert {"400", "413", "422"} <= set(documented), (method, templated)


def test_methods_and_paths_no_route_takes_are_405_and_404_without_a_key(live: RunningGateway) -> None:
    """Found by the fuzzer (unsupported_method): the early authentication of
    requests with a body answered 401 to TRACE /healthz, an open route."""
    anonymous = {"Authorization": ""}
    for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE"):
        response = live.http.request(method, "/healthz", headers=anonymous)
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "GET"
    assert live.http.post("/v1/rooms", json={}, headers=anonymous).status_code == 405
    assert live.http.post("/v1/nowhere", json={}, headers=anonymous).status_code == 404
    # What a route takes still needs the key before its body is read.
    refused = live.http.post("/v1/rooms/orion/lights", json={"on": True}, headers=anonymous)
    assert refused.status_code == 401


def test_a_405_allows_every_method_the_path_takes(live: RunningGateway) -> None:
    """Found by the fuzzer (allow_header_conformance): where several routes share a
    path (`GET` and `POST /v1/bookings`), a 405 answered the `Allow` of the first
    route alone (`Allow: POST`)."""
    anonymous = {"Authorization": ""}
    for method, path, allowed in (
        ("DELETE", "/v1/bookings", {"GET", "POST"}),
        ("OPTIONS", "/v1/bookings", {"GET", "POST"}),
        ("PUT", "/v1/bookings/nothing", {"GET", "PATCH", "DELETE"}),
        ("OPTIONS", "/v1/bookings/nothing", {"GET", "PATCH", "DELETE"}),
        ("GET", "/v1/rooms/orion/book-now", {"POST"}),
        # The resource at a path that two templates match is the literal one's: the
        # schema's path item (the fuzzer refuses the union, `GET, PATCH, DELETE`).
        ("OPTIONS", "/v1/bookings/no-shows", {"GET"}),
        # Pages the schema leaves out: what their routes take.
        ("POST", "/docs", {"GET", "HEAD"}),
    ):
        for headers in ({}, anonymous):
            response = httpx.request(method, live.server.url + path, headers=headers, timeout=10)
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["allow"].split(", ")) == allowed, (method, path)
            assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/bookings", {}),
        ("/v1/bookings/no-shows", {}),
        ("/v1/availability", {}),
        ("/v1/rooms/orion/history", {"metric": "co2"}),
    ],
)
def test_query_times_are_iso_8601_not_epoch_numbers(
    live: RunningGateway, path: str, params: dict[str, str]
) -> None:
    """Found by the fuzzer (negative_data_rejection): `start=0.5`, documented as a
    date-time string, was read as epoch seconds."""
    for name in ("start", "end"):
        for number in ("0.5", "1700000000", "-1", "20261201"):
            response = live.http.get(path, params={**params, name: number})
            assert response.status_code == 422, (name, number, response.text)
            (problem,) = response.json()["detail"]
            assert problem["loc"] == ["query", name]
            assert problem["type"] == "iso8601_time"
            assert "ISO 8601" in problem["msg"]
    # ISO 8601 still, with a zone or without one (UTC).
    soon = datetime.fromtimestamp(time.time() + 3600, UTC).replace(microsecond=0)
    later = soon + timedelta(minutes=30)
    if path != "/v1/availability":  # which takes no window in the past
        soon, later = soon - timedelta(hours=3), later - timedelta(hours=3)
    for start, end in (
        (soon.isoformat(), later.isoformat()),
        (soon.replace(tzinfo=None).isoformat(), later.astimezone(timezone(timedelta(hours=2))).isoformat()),
    ):
        response = live.http.get(path, params={**params, "start": start, "end": end})
        assert response.status_code == 200, (start, end, response.text)
        if "start" in (answer := response.json()):
            assert datetime.fromisoformat(answer["start"]) == soon
            assert datetime.fromisoformat(answer["end"]) == later
    operation = live.get("/openapi.json").json()["paths"][path.replace("orion", "{room_id}")]["get"]
    for parameter in operation["parameters"]:
        if parameter["name"] in ("start", "end"):
            assert {"type": "string", "format": "date-time"} in parameter["schema"]["anyOf"]


def test_cancelling_a_booking_keeps_it_as_documented(live: RunningGateway) -> None:
    """use_after_free is off for bookings (`BOOKINGS_CANCELLED_NOT_DELETED`): DELETE
    cancels and the booking stays readable, which the schema says."""
    operation = live.get("/openapi.json").json()["paths"]["/v1/bookings/{booking_id}"]["delete"]
    assert "kept" in operation["summary"]
    assert "not removed" in operation["description"]
    start = datetime.fromtimestamp(time.time() + 86_400, UTC).replace(microsecond=0)
    window = {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}
    booked = live.http.post("/v1/bookings", json={"room_id": "lyra", **window})
    assert booked.status_code == 201, booked.text
    url = f"/v1/bookings/{booked.json()['id']}"
    assert live.http.delete(url).json()["status"] == "cancelled"
    read = live.http.get(url)
    assert (read.status_code, read.json()["status"]) == (200, "cancelled")


def test_the_schema_declares_the_bearer_key_where_401_is_documented(live: RunningGateway) -> None:
    schema = live.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key of `api.keys` (its role and buildings decide what it may do)",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            needs_key = "401" in operation["responses"]
            assert ("security" in operation) is needs_key, (method, path)
            assert needs_key is (path not in ("/healthz", "/readyz")), (method, path)


def test_a_one_value_query_parameter_given_twice_is_422(live: RunningGateway) -> None:
    """Found by the fuzzer (negative_data_rejection): `start` three times, the last a
    number (read as epoch seconds), was answered as if given once."""
    soon = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    response = live.http.get("/v1/availability", params=[("start", "x"), ("start", soon)])
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {
            "loc": ["query", "start"],
            "msg": "takes one value, given more than once",
            "type": "multiple_values",
            "input": "<list>",
        }
    ]
    twice = live.http.get("/v1/rooms/orion/history", params=[("metric", "co2"), ("metric", "co2")])
    assert twice.status_code == 422, twice.text
    # What the schema documents as a list still takes many values; one value once is fine.
    features = [("features", "display"), ("features", "vc"), ("start", soon)]
    assert live.http.get("/v1/availability", params=features).json()["count"] == 1
    assert live.http.get("/v1/rooms/orion/history", params={"metric": "co2"}).status_code == 200
