"""The gateway with `mqtt.fast_path: false`, on plain paho `Client`, against a real
mosquitto: QoS 1 readings are received, applied, stored and acknowledged (so a
restart under the same session gets none of them again), on MQTT 5 and 3.1.1.
This is also what runs when the installed paho-mqtt is not the fast path's 2.2.x."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, start_gateway, unique_prefix, wait_until

READINGS = 50


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_the_gateway_works_end_to_end_on_plain_paho(
    mqtt_broker: BrokerProcess, protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "gateway": {"id": f"plain-{uuid.uuid4().hex[:8]}"},
        # Receive Maximum 5 (MQTT 5; mosquitto's default of 20 in flight for 3.1.1):
        # all 50 readings only arrive if the gateway's acknowledgements reach the broker.
        "mqtt": {
            "fast_path": False,
            "protocol": protocol,
            "receive_maximum": 5,
            "topic_prefix": unique_prefix(),
        },
        "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]},
    }
    storage = tmp_path / "officegw.db"
    publisher = Publisher(mqtt_broker)
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        first = start_gateway(mqtt_broker, config, storage=storage)
    try:
        connecting = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mqtt connecting")]
        assert len(connecting) == 1
        assert "fast_path=False" in connecting[0]
        assert f"mqtt5={protocol == '5'}" in connecting[0]

        env = f"{first.prefix}/hq/2/orion/orion-env"
        start = time.time() - 600
        for i in range(READINGS):
            publisher.publish(env, {"co2": 600 + i, "ts": start + i})
        wait_until(lambda: first.room("orion")["environment"]["co2_ppm"] == 600 + READINGS - 1, 5, "applied")
        wait_until(
            lambda: first.metric("officegw_history_readings_written_total") == READINGS, 5, "all stored"
        )
        history = first.get("/v1/rooms/orion/history", metric="co2").json()
        # Without `step`: the raw readings, one a message.
        assert len(history["points"]) == READINGS
        assert first.metric("officegw_messages_received_total") == READINGS
    finally:
        first.stop()

    # Same gateway id, same persistent session: whatever was not acknowledged would be
    # delivered again, before the reading published now.
    second = start_gateway(mqtt_broker, config, storage=storage)
    try:
        publisher.publish(env, {"co2": 900, "ts": start + READINGS})
        wait_until(lambda: second.room("orion")["environment"]["co2_ppm"] == 900, 5, "the new reading")
        assert second.metric("officegw_messages_received_total") == 1
        wait_until(
            lambda: second.metric("officegw_history_readings_written_total") == 1, 5, "the new one stored"
        )
    finally:
        second.stop()
        publisher.close()
