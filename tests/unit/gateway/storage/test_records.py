"""What one message's fields become in the history."""

from __future__ import annotations

from gateway.storage.records import readings_from

T0 = 1_700_000_000.0


def test_readings_from_a_message() -> None:
    fields = {"co2": 612, "occupancy": True, "state": "ON", "action": "single", "mode": "heat"}
    got = readings_from(
        fields, device_id="d", room_id="r", building="hq", floor="2", ts=T0, received_at=T0 + 1
    )
    assert {(r.metric, r.value, r.kind) for r in got} == {
        ("co2", 612.0, "environment"),
        ("occupancy", 1.0, "occupancy"),
        ("on", 1.0, "lighting"),
    }
