from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import orjson

from simulators.loadgen import devices_for, mixed_messages, rooms_for


def test_count_rooms_and_determinism() -> None:
    msgs = mixed_messages(5000, rooms=500, seed=1)
    assert len(msgs) == 5000
    assert len({t.split("/")[3] for t, _ in msgs}) == 500
    assert msgs == mixed_messages(5000, rooms=500, seed=1)
    assert msgs != mixed_messages(5000, rooms=500, seed=2)
    assert len({t.split("/")[3] for t, _ in mixed_messages(50, rooms=40)}) == 40


def test_payloads_are_valid_and_sized(check_payload: Callable[[str, bytes], list[str]]) -> None:
    rooms = {r["id"]: r for r in rooms_for(120, seed=3, building="b1")}
    devices = {d["id"]: d["room"] for d in devices_for(120, seed=3)}
    for topic, payload in mixed_messages(6000, rooms=120, seed=3, prefix="p", building="b1"):
        prefix, building, floor, room, device = topic.split("/")
        assert (prefix, building) == ("p", "b1")
        assert rooms[room]["floor"] == floor and devices[device] == room
        assert check_payload(device, payload) == [], (topic, payload)
        assert 40 <= len(payload) <= 200


def test_device_mix_is_realistic() -> None:
    kinds = Counter(t.rsplit("-", 1)[1] for t, _ in mixed_messages(20_000, rooms=500))
    assert set(kinds) == {"env", "pir", "light", "counter", "door", "badge", "lock"}
    assert kinds["env"] > kinds["light"] > kinds["counter"] > kinds["badge"]
    assert kinds["pir"] > kinds["light"]


def test_site_rooms_span_floors() -> None:
    rooms = rooms_for(500)
    assert len({r["id"] for r in rooms}) == 500
    assert len({r["floor"] for r in rooms}) >= 5
    assert {r["type"] for r in rooms} == {"meeting", "office", "open", "restroom"}
    assert len(devices_for(500)) > 3 * 500


def test_timestamps_advance_or_are_left_out() -> None:
    stamped = [orjson.loads(p)["ts"] for _, p in mixed_messages(100, rate=100.0, start_ts=1e9)]
    assert stamped == sorted(stamped) and stamped[-1] - stamped[0] > 0.9
    assert all("ts" not in orjson.loads(p) for _, p in mixed_messages(100, start_ts=None))
