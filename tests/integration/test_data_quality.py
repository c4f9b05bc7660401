"""Data quality on the real broker: offline devices stop counting as evidence,
floods are throttled without losing the last word, and every flag shows in
`GET /v1/devices/{id}` and `/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

SITE = {
    "rooms": [
        {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
        {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting"},
    ],
    "devices": [
        {"id": "orion-radar", "room": "orion", "power_source": "mains"},
        {"id": "orion-env", "room": "orion"},
        {"id": "lyra-env", "room": "lyra"},
    ],
}


@pytest.fixture
def gw(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    running = start_gateway(
        mqtt_broker,
        {
            "site": SITE,
            "quality": {
                "max_rate": 5,
                "burst": 5,
                "reconnect_grace": 0,
                "schema_learn_messages": 2,
                "schema_learn_seconds": 0,
            },
        },
    )
    try:
        yield running
    finally:
        running.stop()


def topic(gw: RunningGateway, room: str, device: str) -> str:
    return f"{gw.prefix}/hq/2/{room}/{device}"


def device(gw: RunningGateway, device_id: str) -> dict[str, Any]:
    response = gw.get(f"/v1/devices/{device_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_offline_radar_stops_holding_its_room(gw: RunningGateway, publisher: Publisher) -> None:
    radar = topic(gw, "orion", "orion-radar")
    publisher.publish(radar, {"presence": True})
    wait_until(lambda: gw.room("orion")["occupancy"]["state"] == "occupied", 5, "occupied by radar")
    publisher.publish(radar + "/availability", "offline")
    wait_until(lambda: gw.room("orion")["occupancy"]["state"] == "vacant", 5, "vacant once the radar is gone")
    assert "offline" in gw.room("orion")["occupancy"]["reason"]
    assert device(gw, "orion-radar")["online"] is False
    assert gw.metric("officegw_devices_flagged", 'flag="offline"') == 1


def test_a_flooding_device_is_throttled_and_flagged_and_ends_on_its_last_word(
    gw: RunningGateway, publisher: Publisher
) -> None:
    env = topic(gw, "orion", "orion-env")
    for i in range(60):
        publisher.publish(env, {"co2": 500 + i})
    publisher.publish(topic(gw, "lyra", "lyra-env"), {"co2": 777})
    # The newest throttled reading is applied by the next tick.
    wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == 559, 5, "the flood's last reading")
    wait_until(lambda: gw.room("lyra")["environment"]["co2_ppm"] == 777, 5, "the other room's reading")
    quality = device(gw, "orion-env")["quality"]
    assert quality["flooding"] is True
    assert quality["throttled"] > 0
    assert quality["message_rate"] > 0
    assert gw.metric("officegw_messages_throttled_total") == quality["throttled"]
    assert gw.metric("officegw_devices_flagged", 'flag="flooding"') == 1
    assert device(gw, "lyra-env")["quality"]["flooding"] is False


def test_schema_drift_and_low_battery_are_flagged(gw: RunningGateway, publisher: Publisher) -> None:
    env = topic(gw, "lyra", "lyra-env")
    publisher.publish(env, {"temperature": 21.5, "humidity": 40})
    publisher.publish(env, {"temperature": 21.6, "humidity": 41})
    wait_until(lambda: device(gw, "lyra-env")["last_state"].get("temperature") == 21.6, 5, "learnt")
    assert device(gw, "lyra-env")["quality"]["schema_drift"] is None
    publisher.publish(env, {"temperature": 21.7, "battery": 9})
    wait_until(lambda: device(gw, "lyra-env")["quality"]["schema_drift"] == ["battery"], 5, "drift")
    quality = device(gw, "lyra-env")["quality"]
    assert quality["battery_low"] is True
    assert quality["schema_drift_at"] is not None
    assert gw.metric("officegw_devices_flagged", 'flag="schema_drift"') == 1
    assert gw.metric("officegw_devices_flagged", 'flag="battery_low"') == 1


def test_a_retained_reading_of_an_offline_device_is_not_evidence(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    """On subscribe the broker replays retained messages: a radar that is offline
    (retained LWT) and last said "present" must not occupy its room."""
    first = start_gateway(mqtt_broker, {"site": SITE})
    prefix = first.prefix
    first.stop()
    radar = f"{prefix}/hq/2/orion/orion-radar"
    publisher.publish(radar + "/availability", "offline", retain=True)
    publisher.publish(radar, {"presence": True}, retain=True)
    publisher.publish(f"{prefix}/hq/2/lyra/lyra-env", {"co2": 600}, retain=True)
    gw = start_gateway(mqtt_broker, {"site": SITE, "mqtt": {"topic_prefix": prefix}})
    try:
        wait_until(lambda: device(gw, "orion-radar")["last_state"].get("presence") is True, 5, "last state")
        wait_until(lambda: gw.room("lyra")["environment"]["co2_ppm"] == 600, 5, "retained reading applied")
        assert device(gw, "orion-radar")["online"] is False
        assert gw.room("orion")["occupancy"]["state"] != "occupied"
    finally:
        gw.stop()
        for topic in (radar + "/availability", radar, f"{prefix}/hq/2/lyra/lyra-env"):
            publisher.publish(topic, b"", retain=True)
