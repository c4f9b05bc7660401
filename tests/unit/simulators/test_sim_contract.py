"""What the simulators send passes the gateway's own native decoder and site schema."""

from __future__ import annotations

from devices.dialects.native import TopicKind, decode_availability, decode_state, parse_topic
from gateway.config import SiteSection
from simulators.floor import VirtualFloor
from simulators.loadgen import devices_for, mixed_messages, rooms_for

T0 = 1_700_000_000.0


def test_floor_traffic_decodes() -> None:
    floor = VirtualFloor(rooms=14, seed=9, time_scale=120, prefix="office")
    messages = [m for i in range(0, 240) for m in floor.step(T0 + i * 0.5)]
    messages += floor.availability_messages("offline")
    for topic, payload in messages:
        parsed = parse_topic(topic, "office")
        assert parsed is not None and (parsed.building, parsed.floor) == ("hq", "2")
        if parsed.kind is TopicKind.AVAILABILITY:
            decode_availability(payload)
        else:
            assert parsed.kind is TopicKind.STATE
            assert decode_state(payload).model_extra == {}, payload


def test_loadgen_traffic_decodes() -> None:
    for topic, payload in mixed_messages(3000, rooms=200, seed=4):
        parsed = parse_topic(topic, "office")
        assert parsed is not None and parsed.kind is TopicKind.STATE
        assert decode_state(payload).model_extra == {}, payload


def test_site_entries_validate() -> None:
    floors = [VirtualFloor(floor=str(f), rooms=20) for f in (1, 2, 3, 10)]
    SiteSection.model_validate(
        {
            "rooms": [r for f in floors for r in f.site_rooms()],
            "devices": [d for f in floors for d in f.site_devices()],
        }
    )
    SiteSection.model_validate({"rooms": rooms_for(500), "devices": devices_for(500)})
