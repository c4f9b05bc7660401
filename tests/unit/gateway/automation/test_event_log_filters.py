"""Paging the event log with a filter: the filter comes before the limit."""

from __future__ import annotations

from gateway.automation.event_log import EventLog, LoggedEvent


def test_filtered_pages_are_full_until_the_end_of_the_log() -> None:
    log = EventLog()
    for n in range(30):
        log.append(float(n), "occupancy", "hq-room" if n % 3 == 0 else "annex-room")
    mine = [e.seq for e in log.page(limit=1000) if e.room_id == "hq-room"]

    def in_hq(event: LoggedEvent) -> bool:
        return event.room_id == "hq-room"

    seen: list[int] = []
    after = 0
    while page := log.page(after=after, limit=4, where=in_hq):
        assert len(page) == 4 or page[-1].seq == mine[-1]
        seen += [e.seq for e in page]
        after = page[-1].seq
    assert seen == mine
