"""The room-state publisher, one scan at a time, over a gateway on a FakeTransport:
what goes out, when (rate limit per room, always ending with the latest), to whom
(MQTT retained for the shard's rooms, the stream for all), and again after a reconnect."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.live_state import LiveRoom
from gateway.push.fanout import Fanout, RoomPush, StreamFilter
from gateway.runtime.room_state_publisher import (
    MIN_RENDERS_PER_SCAN,
    SCAN_INTERVAL,
    RoomStatePublisher,
    state_topic,
)
from rules.bookings import Booking
from tests.fakes import GatewayOnFakes, running_gateway

SITE = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2},
            {"id": "vega", "building": "annex", "floor": 1},
            {"id": "odd", "building": "hq", "floor": "a+b"},
        ]
    },
}


def render(room: LiveRoom, now: float, bookings: tuple[Booking | None, Booking | None]) -> bytes:
    current, upcoming = bookings
    return orjson.dumps(
        {
            "id": room.config.id,
            "co2": room.state.environment.co2_ppm,
            "booked": current.id if current else None,
            "next": upcoming.id if upcoming else None,
        }
    )


class Rig:
    def __init__(
        self, g: GatewayOnFakes, *, publish: bool = True, buildings: frozenset[str] | None = None
    ) -> None:
        self.g = g
        self.booked: dict[str, tuple[Booking, ...]] = {}
        self.tick = 0.0
        self.up = True
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fanout = Fanout()
        self.stream = self.fanout.open(StreamFilter(), 100, lambda: None)
        self.publisher = RoomStatePublisher(
            g.live,
            render,
            g.clock,
            self.fanout,
            publish=(lambda topic, payload: self.sent.append((topic, orjson.loads(payload))))
            if publish
            else None,
            connected=lambda: self.up,
            min_interval=1.0,
            buildings=buildings,
            bookings=lambda: self.booked,
            monotonic=lambda: self.tick,
        )

    def co2(self, room: str, floor: str, building: str, value: int) -> None:
        self.g.transport.deliver(f"office/{building}/{floor}/{room}/{room}-env", {"co2": value})

    def scan_at(self, tick: float) -> list[tuple[str, dict[str, Any]]]:
        self.tick = tick
        before = len(self.sent)
        self.publisher.scan()
        return self.sent[before:]

    def streamed(self) -> list[dict[str, Any]]:
        return [orjson.loads(item.status) for item in self.stream.take() if isinstance(item, RoomPush)]


@pytest.fixture
def g(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as gateway:
        yield gateway


def test_every_room_then_changes_at_most_once_a_second_ending_with_the_latest(g: GatewayOnFakes) -> None:
    r = Rig(g)
    first = r.scan_at(0.0)
    # A floor that cannot be a topic level is left out (and logged), the rest go out.
    assert sorted(topic for topic, _ in first) == ["officegw/state/annex/1/vega", "officegw/state/hq/2/orion"]
    assert sorted(body["id"] for body in r.streamed()) == ["odd", "orion", "vega"]
    assert r.scan_at(0.5) == [], "nothing changed"

    r.co2("orion", "2", "hq", 500)
    assert r.scan_at(0.6) == [], "within a second of the last one"
    r.co2("orion", "2", "hq", 510)
    r.co2("vega", "1", "annex", 700)
    assert r.scan_at(1.0) == [
        ("officegw/state/hq/2/orion", {"id": "orion", "co2": 510.0, "booked": None, "next": None}),
        ("officegw/state/annex/1/vega", {"id": "vega", "co2": 700.0, "booked": None, "next": None}),
    ]
    r.co2("orion", "2", "hq", 520)
    r.co2("orion", "2", "hq", 530)
    assert r.scan_at(1.5) == []
    assert r.scan_at(2.0) == [
        ("officegw/state/hq/2/orion", {"id": "orion", "co2": 530.0, "booked": None, "next": None})
    ]
    assert [body["co2"] for body in r.streamed() if body["id"] == "orion"] == [510.0, 530.0]
    assert r.publisher.published == 5


def test_a_booking_starting_or_written_changes_the_status_without_a_reading(g: GatewayOnFakes) -> None:
    r = Rig(g)
    r.scan_at(0.0)
    now = g.clock.now()
    meeting = Booking("bk1", "orion", now + 60, now + 3600)
    r.booked = {"orion": (meeting,)}  # written through the API: a new snapshot
    assert r.scan_at(1.0) == [
        ("officegw/state/hq/2/orion", {"id": "orion", "co2": None, "booked": None, "next": "bk1"})
    ]
    g.clock.advance(61)  # it starts: no reading, no write, the status changes all the same
    assert r.scan_at(1.5) == [], "worked out again at most once a second"
    assert r.scan_at(2.0) == [
        ("officegw/state/hq/2/orion", {"id": "orion", "co2": None, "booked": "bk1", "next": None})
    ]
    assert r.scan_at(3.0) == []


def test_a_change_that_renders_the_same_is_not_sent_again(g: GatewayOnFakes) -> None:
    r = Rig(g)
    r.scan_at(0.0)
    g.transport.deliver("office/hq/2/orion/orion-env", {"temperature": 21.5})  # not in the rendering
    assert r.scan_at(5.0) == []


def test_retained_states_go_again_after_a_reconnect_and_not_while_down(g: GatewayOnFakes) -> None:
    r = Rig(g)
    r.scan_at(0.0)
    r.up = False
    r.co2("orion", "2", "hq", 600)
    assert r.scan_at(2.0) == []
    assert [body["co2"] for body in r.streamed() if body["id"] == "orion"][-1] == 600.0, (
        "the stream still gets it"
    )
    r.publisher.resend()
    r.up = True
    again = r.scan_at(2.1)
    assert sorted(again, key=lambda sent: sent[0]) == [
        ("officegw/state/annex/1/vega", {"id": "vega", "co2": None, "booked": None, "next": None}),
        ("officegw/state/hq/2/orion", {"id": "orion", "co2": 600.0, "booked": None, "next": None}),
    ]
    assert r.scan_at(2.2) == []


def test_a_shard_publishes_only_its_buildings_but_streams_every_room(g: GatewayOnFakes) -> None:
    r = Rig(g, buildings=frozenset({"hq"}))
    assert [topic for topic, _ in r.scan_at(0.0)] == ["officegw/state/hq/2/orion"]
    assert sorted(body["id"] for body in r.streamed()) == ["odd", "orion", "vega"]


def test_with_nobody_to_tell_nothing_is_rendered(g: GatewayOnFakes) -> None:
    r = Rig(g, publish=False)
    r.fanout.close(r.stream)
    calls: list[str] = []
    publisher = RoomStatePublisher(
        g.live,
        lambda room, now, bookings: calls.append(room.config.id) or b"{}",  # type: ignore[func-returns-value]
        g.clock,
        r.fanout,
        publish=None,
        connected=lambda: True,
        min_interval=1.0,
        buildings=None,
    )
    assert publisher.scan() == 0 and calls == []


@pytest.mark.parametrize(
    ("levels", "topic"),
    [
        (("hq", "2", "orion"), "officegw/state/hq/2/orion"),
        (("hq", "B1", "lab.1"), "officegw/state/hq/B1/lab.1"),
        (("hq", "2/3", "orion"), None),
        (("hq", "+", "orion"), None),
        (("hq", "#", "orion"), None),
        (("hq", "", "orion"), None),
    ],
)
def test_state_topics(levels: tuple[str, str, str], topic: str | None) -> None:
    assert state_topic(*levels) == topic


MANY = 200


@pytest.fixture
def campus(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    rooms = [{"id": f"r{i}", "building": "hq", "floor": 1} for i in range(MANY)]
    with running_gateway(tmp_path, {"mqtt": {"topic_prefix": "office"}, "site": {"rooms": rooms}}) as gateway:
        yield gateway


def test_rooms_falling_due_together_are_spread_over_scans_and_still_end_on_the_latest(
    campus: GatewayOnFakes,
) -> None:
    """Every room changing all the time: no scan renders more than its cap, no room goes
    out twice within `min_interval`, the sending times spread over the interval (rather
    than the whole site in one scan each second), and the last values all go out."""
    r = Rig(campus)
    sends: dict[str, list[float]] = {}
    per_scan: list[int] = []
    value = 400
    for step in range(40):
        tick = round(step * SCAN_INTERVAL, 3)
        value += 1
        for i in range(MANY):
            r.co2(f"r{i}", "1", "hq", value)
        out = r.scan_at(tick)
        per_scan.append(len(out))
        for topic, _ in out:
            sends.setdefault(topic, []).append(tick)
    assert max(per_scan) == MIN_RENDERS_PER_SCAN
    assert len(sends) == MANY
    gaps = [b - a for times in sends.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 - 1e-9
    # After the first second the load is even: about MANY / 10 a scan, never the site at once.
    assert max(per_scan[20:]) <= MIN_RENDERS_PER_SCAN
    assert sum(per_scan[20:]) >= 0.8 * MANY * 2  # two seconds' worth: every room about twice
    # Changes stop: within the interval plus the scans the cap needs, every room's last value is out.
    last = {topic: body["co2"] for topic, body in r.sent}
    for step in range(40, 60):
        r.scan_at(round(step * SCAN_INTERVAL, 3))
        last.update({topic: body["co2"] for topic, body in r.sent})
    assert set(last.values()) == {float(value)}


def test_a_reconnect_sends_every_room_again_even_when_a_scan_renders_its_cap(
    campus: GatewayOnFakes,
) -> None:
    r = Rig(campus)
    for step in range(5):
        r.scan_at(step * SCAN_INTERVAL)
    assert len({topic for topic, _ in r.sent}) == MANY
    for i in range(MANY):
        r.co2(f"r{i}", "1", "hq", 900)
    r.publisher.resend()
    out = r.scan_at(2.0)
    assert len({topic for topic, _ in out}) == MANY
    assert sum(body["co2"] == 900.0 for _, body in out) == MIN_RENDERS_PER_SCAN
