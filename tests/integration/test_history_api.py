"""GET /v1/rooms/{id}/history and /metrics on a real gateway: readings recorded as
they arrive, returned raw (paged by cursor) or in buckets aligned to multiples of
the step; metrics asked for by field or room-status name; bad windows, steps,
cursors and unknown metrics get a 422 with a reason."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.schemas import AccessOut, EnvironmentOut, LightingOut, OccupancyOut
from gateway.storage.records import FIELD_OF_STATUS_NAME, KIND_OF_METRIC, STATUS_NAME_OF_FIELD
from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def seconds(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def test_history_of_a_room(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    site = {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]}
    gw = start_gateway(mqtt_broker, {"site": site})
    try:
        # A multiple of the step: buckets start at multiples of it (DESIGN.md §4).
        start = float(int(time.time()) // 300 * 300 - 600)
        for i in range(10):  # one a minute for ten minutes, from two sensors
            publisher.publish(f"{gw.prefix}/hq/2/orion/env-a", {"co2": 500 + i, "ts": start + i * 60})
            publisher.publish(f"{gw.prefix}/hq/2/orion/env-b", {"co2": 700, "ts": start + i * 60 + 1})
        wait_until(
            lambda: gw.metric("officegw_history_readings_written_total") == 20, 5, "20 readings stored"
        )

        response = gw.get(
            "/v1/rooms/orion/history", metric="co2", start=iso(start), end=iso(start + 600), step=300
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["step"] == 300
        assert [p["count"] for p in body["points"]] == [10, 10]
        first = body["points"][0]
        assert datetime.fromisoformat(first["t"]).timestamp() == start
        assert (first["min"], first["max"]) == (500, 700)
        assert first["mean"] == (sum(500 + i for i in range(5)) + 5 * 700) / 10

        # Defaults: the last 24 h, raw readings (no `step`; DESIGN.md §4).
        default = gw.get("/v1/rooms/orion/history", metric="co2").json()
        assert default["step"] is None
        assert len(default["points"]) == 20
        assert default["next_after"] is None
        assert gw.get("/v1/rooms/orion/history", metric="humidity").json()["points"] == []

        assert gw.get("/v1/rooms/nowhere/history", metric="co2").status_code == 404
        backwards = gw.get("/v1/rooms/orion/history", metric="co2", start=iso(start), end=iso(start - 1))
        assert backwards.status_code == 422
        assert backwards.json()["detail"] == "start must be before end"
        empty = gw.get("/v1/rooms/orion/history", metric="co2", start=iso(start), end=iso(start))
        assert empty.status_code == 422
        assert empty.json()["detail"] == "start must be before end"
        too_fine = gw.get("/v1/rooms/orion/history", metric="co2", start=iso(0), end=iso(start), step=1)
        assert too_fine.status_code == 422
        assert "at most 10000" in too_fine.json()["detail"]
        assert gw.get("/v1/rooms/orion/history").status_code == 422  # metric is required
    finally:
        gw.stop()


@dataclass
class Recorded:
    gw: RunningGateway
    start: float  # the first reading's device time: not a multiple of 60 or 300
    window: dict[str, str]  # the ten minutes of readings


@pytest.fixture(scope="module")
def recorded(mqtt_broker: BrokerProcess) -> Iterator[Recorded]:
    """Rooms orion (two sensors, one reading each a minute for ten minutes: co2 from
    both, temperature from env-a, linkquality from env-b) and lyra (none)."""
    rooms = [{"id": "orion", "building": "hq", "floor": 2}, {"id": "lyra", "building": "hq", "floor": 2}]
    gw = start_gateway(mqtt_broker, {"site": {"rooms": rooms}})
    publisher = Publisher(mqtt_broker)
    try:
        start = float(int(time.time()) // 300 * 300 - 3_600 + 17)
        for i in range(10):
            ts = start + i * 60
            publisher.publish(f"{gw.prefix}/hq/2/orion/env-a", {"co2": 500 + i, "temperature": 21, "ts": ts})
            publisher.publish(f"{gw.prefix}/hq/2/orion/env-b", {"co2": 700 + i, "linkquality": 80, "ts": ts})
        wait_until(
            lambda: gw.metric("officegw_history_readings_written_total") == 40, 5, "40 readings stored"
        )
        yield Recorded(gw, start, {"start": iso(start), "end": iso(start + 600)})
    finally:
        publisher.close()
        gw.stop()


def test_raw_readings_carry_device_and_value(recorded: Recorded) -> None:
    raw = recorded.gw.get("/v1/rooms/orion/history", metric="co2", **recorded.window)
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert (body["metric"], body["status_name"], body["step"], body["next_after"]) == (
        "co2",
        "co2_ppm",
        None,
        None,
    )
    # The device's time, device and value, in (ts, device) order.
    assert [(seconds(p["ts"]), p["device"], p["value"]) for p in body["points"]] == [
        (recorded.start + i * 60, device, base + i)
        for i in range(10)
        # Auto-registered: named within their room.
        for device, base in (("orion.env-a", 500), ("orion.env-b", 700))
    ]


def test_status_names_and_field_names_give_the_same_points(recorded: Recorded) -> None:
    gw = recorded.gw
    for status, field in (("co2_ppm", "co2"), ("temperature_c", "temperature")):
        for step in ({}, {"step": 300}):
            by_status = gw.get("/v1/rooms/orion/history", metric=status, **recorded.window, **step)
            by_field = gw.get("/v1/rooms/orion/history", metric=field, **recorded.window, **step)
            assert by_status.status_code == by_field.status_code == 200, by_status.text
            assert by_status.json()["points"]
            # The response names the field (and its status name) either way.
            assert by_status.json() == by_field.json()
            assert (by_status.json()["metric"], by_status.json()["status_name"]) == (field, status)
    # A field only this room's devices send is known here.
    custom = gw.get("/v1/rooms/orion/history", metric="linkquality", **recorded.window).json()
    assert (custom["status_name"], len(custom["points"])) == (None, 10)
    # A metric of the vocabulary the room has no readings of: no points, no error.
    assert gw.get("/v1/rooms/lyra/history", metric="co2_ppm").json()["points"] == []


def test_an_unknown_metric_is_422_naming_the_known_ones(recorded: Recorded) -> None:
    for room, name in (("orion", "co2_ppmm"), ("orion", "CO2"), ("lyra", "linkquality")):
        unknown = recorded.gw.get(f"/v1/rooms/{room}/history", metric=name, step=60)
        assert unknown.status_code == 422, (room, name, unknown.text)
        detail = unknown.json()["detail"]
        assert detail.startswith(f"unknown metric {name!r}; known metrics")
        known = detail.split("; known metrics")[1]
        assert "co2 (co2_ppm)" in known and "temperature (temperature_c)" in known
        # What the room recorded is known too.
        assert ("linkquality" in known) == (room == "orion")


def test_buckets_are_multiples_of_the_step_for_windows_ending_seconds_apart(recorded: Recorded) -> None:
    gw, start = recorded.gw, recorded.start
    end = time.time()
    calls = [gw.get("/v1/rooms/orion/history", metric="co2", step=300, end=iso(end + d)) for d in (0, 2.5, 7)]
    assert all(call.status_code == 200 for call in calls), calls[0].text
    bodies = [call.json() for call in calls]
    assert len({b["start"] for b in bodies}) == 3  # three windows...
    assert bodies[0]["points"] == bodies[1]["points"] == bodies[2]["points"]  # ... the same buckets
    starts = [seconds(p["t"]) for p in bodies[0]["points"]]
    assert all(t % 300 == 0 for t in starts)
    assert starts[0] == math.floor(start / 300) * 300 < start
    assert sum(p["count"] for p in bodies[0]["points"]) == 20
    # A window cutting a bucket counts only its own readings in it.
    cut = gw.get(
        "/v1/rooms/orion/history", metric="co2", step=300, start=iso(start + 60), end=iso(start + 600)
    ).json()
    assert seconds(cut["points"][0]["t"]) == starts[0]
    assert sum(p["count"] for p in cut["points"]) == 18


def test_bad_steps_limits_and_cursors_are_422(recorded: Recorded) -> None:
    gw = recorded.gw
    for step in ("0", "-60", "inf", "-inf", "nan", "0.0001", "soon"):
        response = gw.get("/v1/rooms/orion/history", metric="co2", step=step)
        assert response.status_code == 422, (step, response.text)
    finite = gw.get("/v1/rooms/orion/history", metric="co2", step="inf").json()["detail"]
    assert "finite" in str(finite)
    for limit in ("0", "10001"):
        assert gw.get("/v1/rooms/orion/history", metric="co2", limit=limit).status_code == 422
    # Not base64, not JSON, [1, 2], ["x", "env-a"], [NaN, "env-a"].
    for cursor in ("garbage!", "bm90IGpzb24", "WzEsMl0", "WyJ4IiwiZW52LWEiXQ", "W05hTiwiZW52LWEiXQ"):
        response = gw.get("/v1/rooms/orion/history", metric="co2", after=cursor)
        assert response.status_code == 422, (cursor, response.text)
        assert response.json()["detail"] == "after: not a cursor this endpoint returned"
    paged_buckets = gw.get("/v1/rooms/orion/history", metric="co2", step=60, after="WzEsImEiXQ")  # [1,"a"]
    assert paged_buckets.status_code == 422
    assert "cannot be combined with step" in paged_buckets.json()["detail"]
    # A first bucket starting before year 1 has no ISO 8601 time.
    ancient = gw.get(
        "/v1/rooms/orion/history",
        metric="co2",
        start="0001-01-03T00:00:00Z",
        end="0001-01-04T00:00:00Z",
        step=86_400 * 365,
    )
    assert ancient.status_code == 422
    assert "before year 1" in ancient.json()["detail"]


def test_raw_readings_are_paged_past_the_limit(recorded: Recorded) -> None:
    everything = recorded.gw.get("/v1/rooms/orion/history", metric="co2", **recorded.window).json()["points"]
    assert len(everything) == 20
    for limit in (1, 7, 10, 19, 20):
        assert_pages(recorded.gw, everything, metric="co2_ppm", limit=limit, **recorded.window)


def test_the_metrics_a_room_recorded(recorded: Recorded) -> None:
    gw, start = recorded.gw, recorded.start
    metrics = gw.get("/v1/rooms/orion/metrics")
    assert metrics.status_code == 200, metrics.text
    listed = {
        m["metric"]: (m["status_name"], m["kind"], seconds(m["first"]), seconds(m["last"]))
        for m in metrics.json()["metrics"]
    }
    assert listed == {
        "co2": ("co2_ppm", "environment", start, start + 540),
        "temperature": ("temperature_c", "environment", start, start + 540),
        "linkquality": (None, "device", start, start + 540),
    }
    assert metrics.json()["count"] == 3
    assert gw.get("/v1/rooms/lyra/metrics").json() == {"room_id": "lyra", "metrics": [], "count": 0}
    assert gw.get("/v1/rooms/nowhere/metrics").status_code == 404


def assert_pages(gw: RunningGateway, expected: list[dict[str, Any]], **params: Any) -> None:
    """Pages through `params`' window by `next_after`: full pages, then the rest, once each."""
    got: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(len(expected) + 2):
        page = gw.get("/v1/rooms/orion/history", **params, **({"after": after} if after else {}))
        assert page.status_code == 200, page.text
        got += page.json()["points"]
        after = page.json()["next_after"]
        if after is None:
            break
        assert len(page.json()["points"]) == params["limit"]
    assert after is None
    assert got == expected


def test_raw_readings_are_bounded_and_paged(mqtt_broker: BrokerProcess) -> None:
    site = {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]}
    # One sensor sends fast here: no flood throttling for this test.
    gw = start_gateway(mqtt_broker, {"site": site, "quality": {"max_rate": 100_000, "burst": 100_000}})
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if mqtt_broker.mqtt5 else mqtt.MQTTv311
    )
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.loop_start()
    try:
        total = 10_050
        start = float(int(time.time()) - 20_000)
        sent = [
            client.publish(f"{gw.prefix}/hq/2/orion/env-a", f'{{"co2": {i % 900}, "ts": {start + i}}}', qos=1)
            for i in range(total)
        ]
        for message in sent:
            message.wait_for_publish(timeout=60)
        wait_until(
            lambda: gw.metric("officegw_history_readings_written_total") == total,
            60,
            f"{total} readings stored",
        )
        window = {"start": iso(start), "end": iso(start + total)}
        first = gw.get("/v1/rooms/orion/history", metric="co2", **window).json()
        assert len(first["points"]) == 10_000  # the bound
        assert first["next_after"] is not None
        second = gw.get("/v1/rooms/orion/history", metric="co2", after=first["next_after"], **window).json()
        assert second["next_after"] is None
        values = [(seconds(p["ts"]), p["value"]) for p in first["points"] + second["points"]]
        assert values == [(start + i, i % 900) for i in range(total)]
    finally:
        client.loop_stop()
        client.disconnect()
        gw.stop()


def test_one_table_maps_status_names_to_fields() -> None:
    """The room status (api/schemas.py) and the recorded fields (records.py) cannot drift apart."""
    status_names = {
        name
        for section in (EnvironmentOut, LightingOut, AccessOut, OccupancyOut)
        for name in section.model_fields
    }
    assert set(FIELD_OF_STATUS_NAME) <= status_names
    assert set(FIELD_OF_STATUS_NAME.values()) <= set(KIND_OF_METRIC)
    # Every environment reading of the status answers to its status name.
    assert set(EnvironmentOut.model_fields) <= set(FIELD_OF_STATUS_NAME)
    assert {STATUS_NAME_OF_FIELD[field] for field in FIELD_OF_STATUS_NAME.values()} == set(
        FIELD_OF_STATUS_NAME
    )
