"""Device identity, a bounded registry and bad topics, through a real broker (issue 11,
points 1, 4 and 5).

A native device is its name within its room; a configured device counts only on its
own room's topic; auto-registration has limits and forgets what stays silent; ids and
times outside their range are rejected, counted and dead-lettered, never raised.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import dumps
from gateway.storage.sqlite_store import Store
from rules.room_model import Light, RoomState
from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

ROOMS = [
    {"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "capacity": 8},
    {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting", "capacity": 4},
]
DEVICES = [{"id": "orion-env", "room": "orion"}, {"id": "lyra-env", "room": "lyra"}]


@pytest.fixture
def gw(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    running = start_gateway(mqtt_broker, {"site": {"rooms": ROOMS, "devices": DEVICES}})
    try:
        yield running
    finally:
        running.stop()


def topic(gw: RunningGateway, building: str, floor: str, room: str, device: str) -> str:
    return f"{gw.prefix}/{building}/{floor}/{room}/{device}"


def rejected(gw: RunningGateway, reason: str) -> float:
    return gw.metric("officegw_messages_rejected_total", f'reason="{reason}"')


def dead_letters(gw: RunningGateway, reason: str) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = gw.get("/v1/dead-letters", reason=reason).json()["dead_letters"]
    return letters


def devices(gw: RunningGateway, room: str | None = None) -> dict[str, dict[str, Any]]:
    params = {"room": room} if room else {}
    return {d["id"]: d for d in gw.get("/v1/devices", **params).json()["devices"]}


def sync(gw: RunningGateway, publisher: Publisher, co2: int) -> None:
    """A good message after the ones under test: once it is applied, they were handled
    (one publisher, QoS 1: the broker keeps their order)."""
    publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), {"co2": co2})
    wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == co2, 5.0, f"co2 {co2} applied")


# 1. Device identity


def test_the_same_device_name_in_two_rooms_is_two_devices(gw: RunningGateway, publisher: Publisher) -> None:
    publisher.publish(topic(gw, "hq", "2", "orion", "pir-1"), {"occupancy": True, "temperature": 21.0})
    publisher.publish(topic(gw, "hq", "3", "kitchen-3", "pir-1"), {"occupancy": True, "temperature": 23.4})
    wait_until(lambda: gw.get("/v1/rooms/kitchen-3").status_code == 200, 5.0, "kitchen-3 registered")
    wait_until(lambda: gw.room("kitchen-3")["environment"]["temperature_c"] == 23.4, 5.0, "kitchen-3 state")

    orion, kitchen = gw.room("orion"), gw.room("kitchen-3")
    assert orion["environment"]["temperature_c"] == 21.0
    assert (kitchen["building"], kitchen["floor"], kitchen["configured"]) == ("hq", "3", False)
    assert orion["occupancy"]["state"] == kitchen["occupancy"]["state"] == "occupied"

    found = devices(gw)
    assert found["orion.pir-1"]["room_id"] == "orion"
    assert found["kitchen-3.pir-1"]["room_id"] == "kitchen-3"
    assert found["orion.pir-1"]["name"] == found["kitchen-3.pir-1"]["name"] == "pir-1"
    assert found["orion.pir-1"]["last_state"]["temperature"] == 21.0
    assert found["kitchen-3.pir-1"]["last_state"]["temperature"] == 23.4
    assert found["kitchen-3.pir-1"]["topic"] == topic(gw, "hq", "3", "kitchen-3", "pir-1")
    assert set(devices(gw, "orion")) >= {"orion.pir-1"} and "kitchen-3.pir-1" not in devices(gw, "orion")

    # Each keeps its own state from now on.
    publisher.publish(topic(gw, "hq", "2", "orion", "pir-1"), {"occupancy": False, "temperature": 20.5})
    wait_until(lambda: gw.room("orion")["environment"]["temperature_c"] == 20.5, 5.0, "orion updated")
    assert gw.room("kitchen-3")["environment"]["temperature_c"] == 23.4
    assert gw.get("/v1/devices/kitchen-3.pir-1").json()["last_state"]["occupancy"] is True


def test_a_configured_device_on_another_rooms_topic_is_rejected(
    gw: RunningGateway, publisher: Publisher
) -> None:
    publisher.publish(topic(gw, "hq", "2", "lyra", "orion-env"), {"co2": 1500, "temperature": 30.0})
    publisher.publish(topic(gw, "hq", "3", "orion", "pir-7"), {"temperature": 31.0})  # orion is on floor 2
    sync(gw, publisher, 610)

    assert rejected(gw, "wrong_room") == 2
    letters = dead_letters(gw, "wrong_room")
    assert [letter["topic"] for letter in letters] == [
        topic(gw, "hq", "2", "lyra", "orion-env"),
        topic(gw, "hq", "3", "orion", "pir-7"),
    ]
    assert "configured in room orion" in letters[0]["detail"]
    # Nothing applied anywhere: not to orion (the device's room), not to lyra.
    assert gw.room("orion")["environment"]["temperature_c"] is None
    assert gw.room("lyra")["environment"] == {
        "co2_ppm": None,
        "temperature_c": None,
        "humidity_pct": None,
        "illuminance_lux": None,
    }
    assert "orion-env" not in devices(gw, "lyra") and "orion.pir-7" not in devices(gw)


def test_a_topic_of_another_building_is_rejected(gw: RunningGateway, publisher: Publisher) -> None:
    publisher.publish(topic(gw, "annex", "2", "orion", "pir-9"), {"occupancy": True, "temperature": 35.0})
    publisher.publish(topic(gw, "annex", "1", "pantry", "orion-env"), {"co2": 2000})
    sync(gw, publisher, 620)

    assert rejected(gw, "wrong_building") == 2
    assert [letter["topic"] for letter in dead_letters(gw, "wrong_building")] == [
        topic(gw, "annex", "2", "orion", "pir-9"),
        topic(gw, "annex", "1", "pantry", "orion-env"),
    ]
    orion = gw.room("orion")
    assert orion["environment"]["temperature_c"] is None
    assert orion["occupancy"]["state"] != "occupied"
    assert gw.get("/v1/rooms/pantry").status_code == 404
    assert "orion.pir-9" not in devices(gw)


# 5. Bad ids and times never raise


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def ingest_log() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("officegw.ingest")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_invalid_ids_and_times_are_dead_lettered_not_raised(
    gw: RunningGateway, publisher: Publisher, ingest_log: _Records
) -> None:
    year_one = {"occupancy": True, "temperature": 40.0, "ts": "0001-01-01T00:00:00"}
    ahead = {"temperature": 41.0, "ts": (datetime.now(UTC) + timedelta(days=2)).isoformat()}
    for i in range(25):
        # Made-up topics, each different: still not a log line each.
        publisher.publish(topic(gw, "hq", "2", f"bad!room-{i}", "pir"), {"occupancy": True})
        publisher.publish(topic(gw, "hq", "2", "..", "pir"), {"occupancy": True})
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), year_one)
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), ahead)
    sync(gw, publisher, 630)

    assert rejected(gw, "invalid_topic") == 50
    assert rejected(gw, "out_of_range") == 50
    assert rejected(gw, "internal_error") == 0
    assert gw.metric("officegw_handler_errors_total") == 0
    letters = dead_letters(gw, "invalid_topic")
    assert {letter["topic"] for letter in letters} == {
        *(topic(gw, "hq", "2", f"bad!room-{i}", "pir") for i in range(25)),
        topic(gw, "hq", "2", "..", "pir"),
    }
    assert "room 'bad!room-0' is not a valid id" in letters[0]["detail"]
    assert all("ts:" in letter["detail"] for letter in dead_letters(gw, "out_of_range"))
    assert gw.get("/v1/rooms/bad!room-0").status_code == 404
    assert gw.room("orion")["environment"]["temperature_c"] is None
    assert gw.room("orion")["occupancy"]["state"] != "occupied"

    # 100 bad messages on 27 topics: one line per reason, no tracebacks.
    problems = [r for r in ingest_log.records if r.levelno >= logging.WARNING]
    assert len(problems) <= 3, [r.getMessage() for r in problems]
    assert not any(r.exc_info for r in problems)


# 4. A bounded registry

LIMITS = {"max_auto_rooms": 2, "max_auto_devices": 3, "max_fields": 8, "max_field_bytes": 256}


def test_registry_limits_reject_what_does_not_fit(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    gw = start_gateway(mqtt_broker, {"site": {"rooms": ROOMS, "devices": DEVICES}, "registry": LIMITS})
    try:
        # Rooms: two auto rooms fit, the third does not.
        publisher.publish(topic(gw, "hq", "4", "attic-1", "env"), {"temperature": 20.0})
        publisher.publish(topic(gw, "hq", "4", "attic-2", "env"), {"temperature": 20.0})
        publisher.publish(topic(gw, "hq", "4", "attic-3", "env"), {"temperature": 20.0})
        # Devices: a third auto device fits (in a configured room), a fourth does not.
        publisher.publish(topic(gw, "hq", "2", "orion", "pir-1"), {"occupancy": True})
        publisher.publish(topic(gw, "hq", "2", "orion", "pir-2"), {"occupancy": True})
        # Fields: a value over 256 bytes, and more than 8 fields for one device.
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), {"co2": 700, "blob": "x" * 60_000})
        many = {f"extra_{i}": i for i in range(12)}
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), {"co2": 710, **many})
        sync(gw, publisher, 640)

        assert rejected(gw, "registry_full") == 3
        assert rejected(gw, "field_too_large") == 1
        assert [letter["topic"].rsplit("/", 2)[1] for letter in dead_letters(gw, "registry_full")] == [
            "attic-3",
            "orion",
            "orion",
        ]
        assert "max_auto_rooms" in dead_letters(gw, "registry_full")[0]["detail"]
        assert "blob" in dead_letters(gw, "field_too_large")[0]["detail"]
        assert gw.get("/v1/rooms/attic-2").status_code == 200
        assert gw.get("/v1/rooms/attic-3").status_code == 404
        auto = {device_id for device_id, d in devices(gw).items() if not d["configured"]}
        assert auto == {"attic-1.env", "attic-2.env", "orion.pir-1"}
        state = gw.get("/v1/devices/orion-env").json()["last_state"]
        assert "blob" not in state and "extra_0" not in state
        assert state["co2"] == 640
        # What fits still goes in: a known device with a new small field.
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-env"), {"co2": 650, "note": "ok"})
        wait_until(lambda: gw.get("/v1/devices/orion-env").json()["last_state"].get("note") == "ok", 5.0)
    finally:
        gw.stop()


def test_auto_registration_can_be_switched_off(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    gw = start_gateway(
        mqtt_broker,
        {"site": {"rooms": ROOMS, "devices": DEVICES}, "registry": {"auto_register": False}},
    )
    try:
        publisher.publish(topic(gw, "hq", "2", "orion", "pir-1"), {"occupancy": True})
        publisher.publish(topic(gw, "hq", "5", "roof", "env"), {"temperature": 10.0})
        publisher.publish(topic(gw, "hq", "2", "orion", "pir-1") + "/availability", "online")
        sync(gw, publisher, 660)
        assert rejected(gw, "unknown_device") == 3
        assert gw.get("/v1/rooms/roof").status_code == 404
        assert set(devices(gw)) == {"orion-env", "lyra-env"}
        assert gw.room("orion")["occupancy"]["state"] != "occupied"
    finally:
        gw.stop()


def test_silent_auto_devices_and_rooms_are_forgotten(
    mqtt_broker: BrokerProcess, publisher: Publisher
) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="officegw-forget-"))
    storage = scratch / "officegw.db"
    config: dict[str, Any] = {"site": {"rooms": ROOMS, "devices": DEVICES}}
    gw = start_gateway(mqtt_broker, {**config, "registry": {"forget_after": 3.0}}, storage=storage)
    prefix = gw.prefix
    try:
        publisher.publish(topic(gw, "hq", "4", "attic", "env"), {"temperature": 18.0})
        publisher.publish(topic(gw, "hq", "2", "orion", "lamp"), {"state": "ON", "power": 40})
        wait_until(lambda: gw.get("/v1/rooms/attic").status_code == 200, 5.0, "attic registered")
        wait_until(lambda: gw.room("orion")["lighting"]["power_w"] == 40, 5.0, "lamp on")
        assert {"attic.env", "orion.lamp"} <= set(devices(gw))

        wait_until(lambda: gw.get("/v1/rooms/attic").status_code == 404, 10.0, "attic forgotten")
        wait_until(lambda: not {"attic.env", "orion.lamp"} & set(devices(gw)), 10.0, "devices forgotten")
        # What the forgotten lamp said no longer counts in its (configured) room.
        wait_until(lambda: gw.room("orion")["lighting"]["power_w"] is None, 5.0, "lamp dropped")
        assert set(devices(gw)) == {"orion-env", "lyra-env"}
        assert gw.get("/v1/rooms/orion").status_code == 200  # configured rooms stay

        # A forgotten device that talks again is registered again.
        publisher.publish(topic(gw, "hq", "4", "attic", "env"), {"temperature": 19.0})
        wait_until(lambda: gw.room("attic").get("environment", {}).get("temperature_c") == 19.0, 5.0)
        wait_until(lambda: gw.get("/v1/rooms/attic").status_code == 404, 10.0, "attic forgotten again")
    finally:
        gw.stop()
    # Not in the snapshot either: a restart (with the default forget time) does not bring it back.
    again = start_gateway(mqtt_broker, {**config, "mqtt": {"topic_prefix": prefix}}, storage=storage)
    try:
        assert again.get("/v1/rooms/attic").status_code == 404
        assert {room["id"] for room in again.get("/v1/rooms").json()["rooms"]} == {"orion", "lyra"}
    finally:
        again.stop()
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()


# Migration: a store written when auto-registered devices had plain ids


def test_a_store_with_plain_device_ids_still_loads(mqtt_broker: BrokerProcess, publisher: Publisher) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="officegw-migrate-"))
    storage = scratch / "officegw.db"
    now = datetime.now(UTC).timestamp()
    store = Store(storage)
    # As the previous version left it: the lamp (auto-registered, plain id) lit in
    # orion, an auto-registered room in the snapshot without a time, no id scheme.
    orion = RoomState(
        "orion",
        lights={"orion-lamp": Light(on=True, brightness_pct=100.0, power_w=10.0)},
        # (Saved before site days: no energy_day_end.)
        energy_at=now,
        updated_at=now,
    )
    store.commit((), (), [("orion", dumps(orion))], now)
    store.save_snapshot(
        {
            "auto_rooms": [{"id": "pantry", "building": "annex", "floor": "1"}],
            "actuator": {
                "claims": {
                    "orion-lamp": {
                        "priority": 30,
                        "room_id": "orion",
                        "since": now,
                        "until": None,
                        "reason": "changed at the device",
                    }
                },
                "last_switch": {"orion-lamp": now},
            },
        },
        now,
    )
    store.close()

    gw = start_gateway(mqtt_broker, {"site": {"rooms": ROOMS, "devices": DEVICES}}, storage=storage)
    try:
        assert gw.get("/v1/rooms/pantry").json()["building"] == "annex"
        assert gw.room("orion")["lighting"]["power_w"] == 10.0
        # The lamp reports under its new id; had its saved entry kept the old id, the
        # room would add up both lamps (10 + 4 W).
        publisher.publish(topic(gw, "hq", "2", "orion", "orion-lamp"), {"state": "ON", "power": 4})
        wait_until(lambda: gw.room("orion")["lighting"]["power_w"] == 4.0, 5.0, "lamp under its new id")
        assert "orion.orion-lamp" in devices(gw)
    finally:
        gw.stop()
    reopened = Store(storage)
    try:
        snapshot = reopened.load_snapshot()
        assert snapshot["device_id_scheme"] == 2
        assert set(snapshot["actuator"]["claims"]) <= {"orion.orion-lamp"}
        assert set(reopened.room_states()["orion"]["lights"]) == {"orion.orion-lamp"}
    finally:
        reopened.close()
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
