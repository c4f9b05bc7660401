"""BrokerCounters: the broker's drop count followed across restarts, warnings rate-limited."""

from __future__ import annotations

import logging

import pytest

from gateway.mqtt.broker_stats import (
    DROPPED_TOPIC,
    STORED_TOPIC,
    UPTIME_TOPIC,
    BrokerCounters,
    BrokerStats,
    parse_count,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Said = tuple[str, int | bytes, bool]  # topic, value, retained (sent on subscribing)


def feed(counters: BrokerCounters, *said: Said) -> BrokerStats:
    for topic, value, retained in said:
        payload = value if isinstance(value, bytes) else str(value).encode()
        counters.observe(topic, payload, retained=retained)
    return counters.stats()


def uptime(seconds: int, retained: bool = False) -> Said:
    return UPTIME_TOPIC, f"{seconds} seconds".encode(), retained


def dropped(count: int) -> Said:
    """A change of the count, published while we watch."""
    return DROPPED_TOPIC, count, False


def kept(count: int) -> Said:
    """The count as the broker kept it (retained, less than a minute old), on subscribing."""
    return DROPPED_TOPIC, count, True


def stored(count: int) -> Said:
    return STORED_TOPIC, count, False


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        (b"0", 0),
        (b"1234", 1234),
        (b"86 seconds", 86),
        (b"", None),
        (b"-3", None),
        (b"1.5", None),
        (b"seconds", None),
    ],
)
def test_parse_count(payload: bytes, count: int | None) -> None:
    assert parse_count(payload) == count


# (what the broker says, in order) -> (broker's value, drops seen, restarts seen)
COUNT_TABLE = [
    pytest.param([uptime(5, True), kept(0)], (0, 0, 0), id="a kept value is the baseline"),
    pytest.param([uptime(5, True), kept(40)], (40, 0, 0), id="drops before we watched are not seen"),
    pytest.param([kept(0), dropped(7), dropped(30)], (30, 30, 0), id="increases add up"),
    pytest.param([kept(10), kept(10), dropped(12)], (12, 2, 0), id="the kept value again adds nothing"),
    pytest.param(
        [uptime(500, True), uptime(510), dropped(25)],
        (25, 25, 0),
        id="a first value that comes live counts from the broker's start",
    ),
    pytest.param(
        [kept(10), uptime(20), kept(14)],
        (14, 4, 0),
        id="a kept value on resubscribing counts what came while we were away",
    ),
    pytest.param(
        [uptime(500), kept(100), dropped(150), uptime(2), kept(0), dropped(20)],
        (20, 70, 1),
        id="restart seen from the uptime",
    ),
    pytest.param(
        [uptime(500), kept(100), uptime(3), kept(300)],
        (300, 300, 1),
        id="after a restart all the new broker dropped is new, even above the old count",
    ),
    pytest.param(
        [uptime(500), kept(100), uptime(90), dropped(7)],
        (7, 7, 1),
        id="after a restart a live first value of the new broker counts in full",
    ),
    pytest.param(
        [uptime(80), uptime(3), kept(9)],
        (9, 9, 1),
        id="a restart before any count was seen: the new broker's kept count is new",
    ),
    pytest.param(
        [kept(100), dropped(5)],
        (5, 5, 1),
        id="restart seen from the count alone (no uptime)",
    ),
    pytest.param(
        [uptime(500), kept(100), uptime(4), kept(3)],
        (3, 3, 1),
        id="a restart seen both ways counts once",
    ),
    pytest.param(
        [uptime(10), kept(0), uptime(20), uptime(30), dropped(4)],
        (4, 4, 0),
        id="uptime going on is no restart",
    ),
]


@pytest.mark.parametrize(("said", "expected"), COUNT_TABLE)
def test_counting(said: list[Said], expected: tuple[int, int, int]) -> None:
    s = feed(BrokerCounters(clock=FakeClock()), *said)
    assert (s.dropped, s.drops_seen, s.restarts_seen) == expected


def test_nothing_seen_yet() -> None:
    assert BrokerCounters().stats() == BrokerStats(None, None, None, 0, 0)


def test_stored_and_uptime_are_the_brokers_last_values() -> None:
    s = feed(BrokerCounters(), stored(35), uptime(12), stored(53))
    assert (s.stored, s.uptime) == (53, 12)


def test_an_unparsable_value_is_ignored_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    counters = BrokerCounters()
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        s = feed(
            counters, kept(3), (DROPPED_TOPIC, b"lots", False), (DROPPED_TOPIC, b"many", False), dropped(5)
        )
    assert (s.dropped, s.drops_seen) == (5, 2)
    assert len([r for r in caplog.records if "not a count" in r.getMessage()]) == 1


def test_warnings_at_most_once_an_interval_with_the_count_since(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    counters = BrokerCounters(clock=clock, warning_interval=60.0)
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        feed(counters, uptime(1, True), kept(0))
        assert warnings(caplog) == []

        feed(counters, uptime(11), dropped(25))  # first rise: at once
        clock.now += 10
        feed(counters, uptime(21), dropped(40))  # held
        clock.now += 10
        feed(counters, uptime(31), dropped(47))  # held
        assert len(warnings(caplog)) == 1
        clock.now += 45
        feed(counters, uptime(41))  # no new drop, but the minute is over: the held ones
        clock.now += 120
        feed(counters, uptime(51))  # nothing held: nothing to say

    lines = warnings(caplog)
    assert len(lines) == 2
    assert lines[0].startswith("broker dropped messages dropped=25 ")
    assert "since_last_warning_s" not in lines[0]
    assert lines[1].startswith(
        "broker dropped messages dropped=22 since_last_warning_s=65 broker_dropped=47 "
    )
    for line in lines:
        assert "max_queued_messages" in line and "max_queued_bytes" in line and "README" in line
    assert counters.stats().drops_seen == 47


def test_drops_from_before_we_watched_are_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    counters = BrokerCounters(clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        feed(counters, uptime(900, True), kept(12_000), uptime(910), uptime(920))
    (line,) = warnings(caplog)
    assert line.startswith("broker had dropped messages before this gateway watched broker_dropped=12000 ")
    assert "broker_uptime=900" in line and "max_queued_messages" in line


def test_a_broker_without_drops_is_followed_quietly(caplog: pytest.LogCaptureFixture) -> None:
    counters = BrokerCounters(clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        feed(counters, uptime(3, True), kept(0), stored(40), uptime(13), uptime(23))
    assert warnings(caplog) == []
    said = [r.getMessage() for r in caplog.records]
    assert said == ["broker stats followed topic=$SYS/broker/uptime value=3"]


def test_the_first_rise_after_a_quiet_spell_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # A broker quiet for over a minute keeps no drop count to send on subscribing:
    # the first count comes with the first drops.
    counters = BrokerCounters(clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="officegw.mqtt"):
        s = feed(counters, uptime(86_400, True), uptime(86_410), dropped(290))
    assert s.drops_seen == 290
    (line,) = warnings(caplog)
    assert line.startswith("broker dropped messages dropped=290 broker_dropped=290 ")
