from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import orjson
import pytest

from simulators.floor import Message, VirtualFloor

T0 = 1_700_000_000.0
TWO_HOURS_AT_60 = 120.0  # real seconds


def run(floor: VirtualFloor, seconds: float, dt: float) -> Iterator[tuple[float, list[Message]]]:
    """Step every `dt` real seconds; lazily, so the floor can be inspected between steps."""
    i = 0
    while i * dt <= seconds:
        now = T0 + i * dt
        yield now, floor.step(now)
        i += 1


def flat(steps: Iterable[tuple[float, list[Message]]]) -> list[Message]:
    return [m for _, msgs in steps for m in msgs]


def split(topic: str) -> tuple[str, str]:
    """(room, device) of a device state topic."""
    parts = topic.split("/")
    return parts[3], parts[4]


def test_same_seed_same_messages_whatever_the_step_size() -> None:
    a = flat(run(VirtualFloor(seed=7, time_scale=60), 600, 1.0))
    b = flat(run(VirtualFloor(seed=7, time_scale=60), 600, 7.5))
    c = flat(run(VirtualFloor(seed=8, time_scale=60), 600, 1.0))
    assert a == b
    assert a != c


def test_site_entries_follow_design() -> None:
    floor = VirtualFloor(building="hq", floor="2", rooms=12)
    rooms = floor.site_rooms()
    assert len(rooms) == 12 and len({r["id"] for r in rooms}) == 12
    assert rooms[0]["id"] == "orion"  # floor 2 is named as in DESIGN.md §3
    assert {r["type"] for r in rooms} == {"meeting", "office", "open", "restroom"}
    for r in rooms:
        assert set(r) == {
            "id",
            "name",
            "building",
            "floor",
            "type",
            "capacity",
            "features",
            "bookable",
        }
        assert r["building"] == "hq" and r["floor"] == "2"
        assert isinstance(r["capacity"], int) and r["capacity"] >= 1
        assert set(r["features"]) <= {"display", "vc", "whiteboard"}
        assert r["bookable"] is (r["type"] == "meeting")
    devices = floor.site_devices()
    assert len({d["id"] for d in devices}) == len(devices)
    kinds = {
        r["id"]: {d["id"].removeprefix(r["id"] + "-") for d in devices if d["room"] == r["id"]} for r in rooms
    }
    for r in rooms:
        assert {"pir", "env", "light"} <= kinds[r["id"]]
        assert ({"counter", "door"} <= kinds[r["id"]]) is (r["type"] == "meeting")
    assert 1 <= sum("lock" in k and "badge" in k for k in kinds.values()) <= 2


def test_room_ids_unique_across_a_building() -> None:
    ids = [r["id"] for f in range(0, 12) for r in VirtualFloor(floor=str(f), rooms=20).site_rooms()]
    assert len(ids) == len(set(ids))


def test_topics_follow_the_native_scheme() -> None:
    floor = VirtualFloor(building="hq", floor="3", prefix="bldg", time_scale=60)
    devices = {d["id"]: d["room"] for d in floor.site_devices()}
    steps = list(run(floor, TWO_HOURS_AT_60, 1.0))
    availability = [m for m in flat(steps) if m[0].endswith("/availability")]
    assert sorted(t for t, _ in availability) == sorted(
        f"bldg/hq/3/{room}/{dev}/availability" for dev, room in devices.items()
    )
    assert {p for _, p in availability} == {b"online"}
    assert all(m in steps[0][1] for m in availability)  # announced once, on the first step
    for topic, _ in flat(steps):
        prefix, building, fl, room, device, *rest = topic.split("/")
        assert (prefix, building, fl) == ("bldg", "hq", "3")
        assert devices[device] == room and rest in ([], ["availability"])
    assert {t for t, _ in floor.availability_messages("offline")} == {t for t, _ in availability}


def test_every_payload_is_valid(check_payload: Callable[[str, bytes], list[str]]) -> None:
    steps = run(VirtualFloor(rooms=16, seed=3, time_scale=60), 4 * TWO_HOURS_AT_60, 0.5)
    kinds: Counter[str] = Counter()
    for now, msgs in steps:
        for topic, payload in msgs:
            if topic.endswith("/availability"):
                continue
            device = split(topic)[1]
            kinds[device.rsplit("-", 1)[1]] += 1
            assert check_payload(device, payload) == [], (topic, payload)
            assert T0 <= orjson.loads(payload)["ts"] <= now
    assert set(kinds) == {"pir", "env", "light", "counter", "door", "badge", "lock"}


def test_people_come_and_go() -> None:
    floor = VirtualFloor(time_scale=60)
    arrivals, departures, before = set(), set(), set[str]()
    for _ in run(floor, TWO_HOURS_AT_60, 1.0):
        now_occupied = floor.occupied_rooms()
        arrivals |= now_occupied - before
        departures |= before - now_occupied
        before = now_occupied
    assert arrivals and departures
    assert 0 < len(before) < len(floor.rooms)  # busy, but not every room at once


def test_pir_and_counter_match_ground_truth() -> None:
    floor = VirtualFloor(rooms=12, seed=5, time_scale=60)
    meeting = {r.id for r in floor.rooms if r.type == "meeting"}
    pir: dict[str, bool] = {}
    counted: dict[str, int] = {}
    vacant_steps: Counter[str] = Counter()
    dt = 0.25  # 15 simulated seconds
    for _, msgs in run(floor, 3 * TWO_HOURS_AT_60, dt):
        for topic, payload in msgs:
            room = split(topic)[0]
            body = orjson.loads(payload) if not topic.endswith("/availability") else {}
            if "occupancy" in body:
                pir[room] = body["occupancy"]
            if "people" in body:
                counted[room] = body["people"]
        occupied = floor.occupied_rooms()
        for room in pir:
            vacant_steps[room] = 0 if room in occupied else vacant_steps[room] + 1
            if room in occupied:
                assert pir[room] is True, room
            elif vacant_steps[room] * dt * 60 > 120:  # past the PIR cooldown
                assert pir[room] is False, room
        for room in meeting:
            assert (counted[room] > 0) is (room in occupied), room


def test_nobody_arrives_at_night() -> None:
    floor = VirtualFloor(time_scale=60, start_hour=22.0)
    for _ in run(floor, TWO_HOURS_AT_60, 5.0):
        assert floor.occupied_rooms() == set()


def test_environment_follows_people() -> None:
    floor = VirtualFloor(rooms=12, seed=2, time_scale=60)
    co2: dict[bool, list[int]] = {True: [], False: []}
    for _, msgs in run(floor, 3 * TWO_HOURS_AT_60, 1.0):
        occupied = floor.occupied_rooms()
        for topic, payload in msgs:
            body = orjson.loads(payload) if topic.endswith("-env") else {}
            if "co2" in body:
                co2[split(topic)[0] in occupied].append(body["co2"])
    assert max(co2[True]) > 700
    assert sum(co2[True]) / len(co2[True]) > sum(co2[False]) / len(co2[False]) + 100


def test_batteries_report_in_the_first_simulated_hours() -> None:
    floor = VirtualFloor(time_scale=60)
    reported = {split(t)[1] for t, p in flat(run(floor, 120, 5.0)) if b'"battery"' in p}
    battery_kinds = {"pir", "env", "door", "lock"}
    expected = {d["id"] for d in floor.site_devices() if d["id"].rsplit("-", 1)[1] in battery_kinds}
    assert reported == expected


def test_light_commands_are_confirmed(check_payload: Callable[[str, bytes], list[str]]) -> None:
    floor = VirtualFloor(time_scale=60)
    assert floor.command("office/hq/2/orion/orion-light/set", b'{"state":"OFF"}', T0) == []
    floor.step(T0)
    light = floor.topic("orion", "orion-light")
    ((topic, payload),) = floor.command(light + "/set", b'{"brightness":120}', T0 + 1)
    assert topic == light and check_payload("orion-light", payload) == []
    assert orjson.loads(payload) | {"ts": 0} == {
        "state": "ON",
        "brightness": 120,
        "power": pytest.approx(29.3, abs=30),
        "energy": 0.0,
        "ts": 0,
    }
    ((_, payload),) = floor.command(light + "/set", b'{"state":"OFF"}', T0 + 2)
    assert orjson.loads(payload)["state"] == "OFF" and orjson.loads(payload)["energy"] > 0
    for bad in (b"not json", b'{"state":"LOCK"}', b'{"brightness":300}', b"[1]"):
        assert floor.command(light + "/set", bad, T0 + 3) == []
    assert floor.command(floor.topic("orion", "orion-pir") + "/set", b'{"state":"ON"}', T0) == []
    assert floor.command("office/hq/9/orion/orion-light/set", b'{"state":"ON"}', T0) == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        VirtualFloor(rooms=0)
    with pytest.raises(ValueError):
        VirtualFloor(time_scale=0)
