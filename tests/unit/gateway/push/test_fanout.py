"""The stream's fan-out: filters as a table, bounded queues, coalesced wake-ups,
overflow that drops the client without ever blocking the producer."""

from __future__ import annotations

import pytest

from gateway.automation.event_log import LoggedEvent
from gateway.push.fanout import EventPush, Fanout, RoomPush, StreamFilter


def event(seq: int, kind: str = "occupancy", room: str | None = "orion") -> LoggedEvent:
    return LoggedEvent(seq, 1_700_000_000.0 + seq, kind, room, {})  # type: ignore[arg-type]


ORION = EventPush(event(1), "hq", "2")
VEGA = EventPush(event(2, room="vega"), "annex", "1")
RELOAD = EventPush(event(3, kind="rules", room=None), None, None)
ORION_ROOM = RoomPush("orion", "hq", "2", b"{}")

FILTER_TABLE = [
    ("everything", StreamFilter(), [ORION, VEGA, RELOAD, ORION_ROOM]),
    (
        "scoped to hq: no other building, no event of no room",
        StreamFilter(buildings=frozenset({"hq"})),
        [ORION, ORION_ROOM],
    ),
    ("a floor", StreamFilter(floor="1"), [VEGA]),
    ("a room", StreamFilter(room_id="orion"), [ORION, ORION_ROOM]),
    ("kinds", StreamFilter(kinds=frozenset({"rules"})), [RELOAD]),
    ("room events only", StreamFilter(kinds=frozenset({"room"})), [ORION_ROOM]),
    (
        "all filters at once",
        StreamFilter(buildings=frozenset({"hq", "annex"}), floor="2", kinds=frozenset({"occupancy"})),
        [ORION],
    ),
]


@pytest.mark.parametrize(
    ("selector", "expected"), [row[1:] for row in FILTER_TABLE], ids=[r[0] for r in FILTER_TABLE]
)
def test_filters(selector: StreamFilter, expected: list[object]) -> None:
    fanout = Fanout()
    subscription = fanout.open(selector, 10, lambda: None)
    for item in (ORION, VEGA, RELOAD, ORION_ROOM):
        fanout.offer(item)
    assert subscription.take() == expected


def test_the_client_is_woken_only_when_its_queue_stops_being_empty() -> None:
    wakeups: list[int] = []
    fanout = Fanout()
    subscription = fanout.open(StreamFilter(), 10, lambda: wakeups.append(1))
    for seq in range(1, 4):
        fanout.offer(EventPush(event(seq), "hq", "2"))
    assert len(wakeups) == 1
    assert [item.event.seq for item in subscription.take() if isinstance(item, EventPush)] == [1, 2, 3]
    assert subscription.take() == []
    fanout.offer(EventPush(event(4), "hq", "2"))
    assert len(wakeups) == 2


def test_a_client_over_its_limit_is_dropped_and_told_and_the_rest_go_on() -> None:
    fanout = Fanout()
    wakeups: list[str] = []
    slow = fanout.open(StreamFilter(), 3, lambda: wakeups.append("slow"))
    fast = fanout.open(StreamFilter(), 100, lambda: None)
    for seq in range(1, 11):
        fanout.offer(EventPush(event(seq), "hq", "2"))
    assert slow.overflowed and not slow.closed
    # What it had before the overflow stays, for the reader to send before saying so.
    assert [item.event.seq for item in slow.take() if isinstance(item, EventPush)] == [1, 2, 3]
    assert wakeups == ["slow", "slow"]  # not empty any more; overflowed
    assert fanout.clients == 1 and fanout.overflowed == 1
    assert len(fast.take()) == 10
    fanout.offer(EventPush(event(11), "hq", "2"))
    assert slow.take() == []


def test_closing_wakes_every_client_and_ends_the_fanout() -> None:
    fanout = Fanout()
    woken: list[int] = []
    subscriptions = [fanout.open(StreamFilter(), 5, lambda n=n: woken.append(n)) for n in range(3)]  # type: ignore[misc]
    fanout.close(subscriptions[0])
    assert subscriptions[0].closed and fanout.clients == 2
    fanout.close_all()
    assert all(s.closed for s in subscriptions) and fanout.clients == 0
    assert sorted(woken) == [0, 1, 2]
    assert not fanout.listening
