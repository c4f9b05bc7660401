"""End to end: device messages into `officegw` on the real broker, out through its
history writer and the InfluxDB export into a real VictoriaMetrics."""

from __future__ import annotations

import time
import uuid

from simulators.broker import BrokerProcess
from tests.support import Publisher, start_gateway, wait_until
from tests.victoria import VictoriaMetrics


def test_readings_and_events_reach_the_database(
    mqtt_broker: BrokerProcess, victoria: VictoriaMetrics, publisher: Publisher
) -> None:
    building = f"b{uuid.uuid4().hex[:8]}"
    site = {"rooms": [{"id": "orion", "building": building, "floor": 2}]}
    gw = start_gateway(
        mqtt_broker,
        {
            "site": site,
            "influxdb": {"url": victoria.url, "token": "t", "org": "o", "bucket": "b", "flush_interval": 0.1},
        },
    )
    try:
        ts = time.time() - 60
        publisher.publish(
            f"{gw.prefix}/{building}/2/orion/orion-env", {"co2": 612, "temperature": 21.5, "ts": ts}
        )
        publisher.publish(f"{gw.prefix}/{building}/2/orion/orion-pir", {"occupancy": True, "ts": ts + 1})

        def samples() -> dict[str, list[tuple[dict[str, str], float, int]]]:
            found: dict[str, list[tuple[dict[str, str], float, int]]] = {}
            for s in victoria.export(f'{{building="{building}"}}'):
                found.setdefault(s.name, []).append((s.labels, s.value, s.ts_ms))
            return found

        def complete() -> dict[str, list[tuple[dict[str, str], float, int]]] | None:
            found = samples()
            return (
                found if {"environment_co2", "occupancy_occupancy", "events_count"} <= found.keys() else None
            )

        got = wait_until(
            complete, 15, "readings and the occupancy event in VictoriaMetrics", progress=samples
        )
        labels, value, ts_ms = got["environment_co2"][0]
        assert value == 612
        assert ts_ms == round(ts * 1000)
        assert labels == {"building": building, "floor": "2", "room": "orion", "device": "orion.orion-env"}
        assert got["environment_temperature"][0][1] == 21.5
        assert got["occupancy_occupancy"][0][1] == 1.0
        assert any(event_labels.get("kind") == "occupancy" for event_labels, _, _ in got["events_count"])
        wait_until(lambda: gw.metric("officegw_influx_points_exported_total") >= 4, 5, "export counted")
        assert gw.get("/readyz").json()["checks"]["influxdb"] is True
    finally:
        gw.stop()
