"""GET /v1/rooms/{id}/history on a real gateway: readings recorded as they arrive,
downsampled on the fly; bad windows get a 4xx with a reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from simulators.broker import BrokerProcess
from tests.support import Publisher, start_gateway, wait_until


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_history_of_a_room(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    site = {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]}
    gw = start_gateway(mqtt_broker, {"site": site})
    try:
        start = float(int(time.time()) - 600)
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

        # Defaults: the last 24 h in <= 500 points.
        default = gw.get("/v1/rooms/orion/history", metric="co2").json()
        assert sum(p["count"] for p in default["points"]) == 20
        assert gw.get("/v1/rooms/orion/history", metric="humidity").json()["points"] == []

        assert gw.get("/v1/rooms/nowhere/history", metric="co2").status_code == 404
        backwards = gw.get("/v1/rooms/orion/history", metric="co2", start=iso(start), end=iso(start - 1))
        assert backwards.status_code == 422
        assert backwards.json()["detail"] == "start must be before end"
        too_fine = gw.get("/v1/rooms/orion/history", metric="co2", start=iso(0), end=iso(start), step=1)
        assert too_fine.status_code == 422
        assert "at most 10000" in too_fine.json()["detail"]
        assert gw.get("/v1/rooms/orion/history").status_code == 422  # metric is required
    finally:
        gw.stop()
