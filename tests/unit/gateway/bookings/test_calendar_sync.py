"""A calendar import against the bookings there are: created, updated, unchanged,
cancelled, skipped. Pure: an index in memory, stored bookings in a dict."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import icalendar

from gateway.bookings.calendar_export import room_calendar
from gateway.bookings.calendar_import import CalendarOccurrence, ImportPlan, Skipped
from gateway.bookings.calendar_sync import SyncReport, SyncWrites, reconcile
from gateway.bookings.index import BookingIndex
from gateway.config import RoomConfig
from rules.bookings import Booking, BookingStatus

NOW = 1_000_000.0
HOUR = 3_600.0
END = NOW + 90 * 24 * HOUR


def occurrence(n: int, *, room: str | None = "orion", uid: str = "s", cancelled: bool = False,
               start: float | None = None, title: str | None = "Review") -> CalendarOccurrence:  # fmt: skip
    begins = NOW + n * 24 * HOUR if start is None else start
    return CalendarOccurrence(uid, f"r{n}", room, begins, begins + HOUR, title, "ana@example.com", cancelled)


def booked(n: int, *, uid: str = "s", room: str = "orion", **fields: object) -> Booking:
    o = occurrence(n, uid=uid)
    booking = Booking(
        id=f"b{n}{uid}", room_id=room, start=o.start, end=o.end, title=o.title, organizer=o.organizer,
        external_id=o.external_id, series_id=uid, created_at=NOW - HOUR, updated_at=NOW - HOUR,
    )  # fmt: skip
    return replace(booking, **fields)  # type: ignore[arg-type]


def run(
    occurrences: Sequence[CalendarOccurrence],
    bookings: Sequence[Booking] = (),
    *,
    complete: frozenset[str] = frozenset({"s"}),
    visible: set[str] | None = None,
) -> tuple[SyncReport, SyncWrites, BookingIndex]:
    index = BookingIndex(b for b in bookings if b.active)
    stored = {b.external_id: b for b in bookings if b.external_id}
    ids = (f"new{n}" for n in itertools.count())
    plan = ImportPlan(NOW, END, tuple(occurrences), (Skipped("x", "unknown room"),), complete, False, 9)
    report, writes = reconcile(
        plan,
        index,
        lambda keys: {k: stored[k] for k in keys if k in stored},
        NOW,
        actor="importer",
        visible=(lambda room: True) if visible is None else (lambda room: room in visible),
        max_duration=24 * HOUR,
        new_id=lambda: next(ids),
    )
    return report, writes, index


def counts(report: SyncReport) -> tuple[int, int, int, int]:
    return report.created, report.updated, report.unchanged, report.cancelled


def test_new_occurrences_are_booked_and_the_same_again_changes_nothing() -> None:
    report, writes, index = run([occurrence(1), occurrence(2)])
    assert counts(report) == (2, 0, 0, 0) and report.changed
    assert [(b.id, b.external_id, b.series_id, b.created_by) for b in writes.new] == [
        ("new0", "s/r1", "s", "importer"),
        ("new1", "s/r2", "s", "importer"),
    ]
    assert [s.reason for s in report.skipped] == ["unknown room"]
    again, writes, _ = run([occurrence(1), occurrence(2)], list(index.all()))
    assert counts(again) == (0, 0, 2, 0) and not again.changed
    assert (writes.new, writes.changed) == ([], {})


def test_a_moved_or_renamed_occurrence_updates_its_booking() -> None:
    moved = occurrence(1, start=NOW + 30 * HOUR, room="lyra", title="Moved")
    report, writes, index = run([moved], [booked(1)])
    assert counts(report) == (0, 1, 0, 0)
    (changed,) = writes.changed.values()
    assert (changed.id, changed.room_id, changed.start, changed.title, changed.updated_at) == (
        "b1s", "lyra", NOW + 30 * HOUR, "Moved", NOW,
    )  # fmt: skip
    assert index.get("b1s") == changed


def test_occurrences_gone_from_a_complete_series_are_cancelled_if_they_have_not_started() -> None:
    started = booked(0, start=NOW - HOUR, end=NOW + HOUR, status=BookingStatus.CHECKED_IN)
    beyond = booked(100)  # after the window's end
    other_series = booked(5, uid="t")
    made_by_hand = booked(6, external_id="exch-1")
    report, writes, _ = run(
        [occurrence(1)], [started, booked(1), booked(2), beyond, other_series, made_by_hand]
    )
    assert counts(report) == (0, 0, 1, 1)
    assert [(b.id, b.status, b.cancelled_at) for b in writes.changed.values()] == [
        ("b2s", BookingStatus.CANCELLED, NOW)
    ]
    # A series not complete (skipped, or cut by the occurrence limit) is left as it is.
    report, writes, _ = run([occurrence(1)], [booked(1), booked(2)], complete=frozenset())
    assert counts(report) == (0, 0, 1, 0)


def test_cancelled_occurrences_cancel_their_booking() -> None:
    report, writes, index = run([occurrence(1, cancelled=True), occurrence(2, cancelled=True, room=None)],
                                [booked(1), booked(2)])  # fmt: skip
    assert counts(report) == (0, 0, 0, 2)
    assert index.get("b1s") is None and index.get("b2s") is None
    # Nothing to cancel: nothing happens.
    report, writes, _ = run([occurrence(3, cancelled=True)])
    assert counts(report) == (0, 0, 0, 0) and writes.new == []


def test_clashes_and_bad_windows_are_skipped_and_the_rest_goes_on() -> None:
    taken = Booking("other", "orion", NOW + 24 * HOUR, NOW + 25 * HOUR)
    too_long = replace(occurrence(3), end=occurrence(3).start + 25 * HOUR)
    twin = occurrence(5, uid="t", start=occurrence(2).start + HOUR / 2)
    report, _, _ = run([occurrence(1), occurrence(2), too_long, twin], [taken], complete=frozenset())
    assert counts(report) == (1, 0, 0, 0)
    assert [(s.uid, s.recurrence_id, s.reason) for s in report.skipped[1:]] == [
        ("s", "r1", "overlaps booking 'other' of room 'orion'"),
        # The import's own bookings count: the second of two overlapping events is refused.
        ("t", "r5", "overlaps booking 'new0' of room 'orion'"),
        ("s", "r3", "a booking may last at most 24 h"),
    ]


def test_bookings_that_no_longer_change_or_that_the_key_cannot_see() -> None:
    released = booked(1, status=BookingStatus.RELEASED)
    annex = booked(2, room="vega")
    report, _, _ = run(
        [occurrence(1, title="New title"), occurrence(2)], [released, annex], visible={"orion"}
    )
    assert [s.reason for s in report.skipped[1:]] == [
        "booking 'b1s' is released and can no longer change",
        "its external id is taken by a booking this key cannot see",
    ]
    # The same content as the released booking: nothing to change, no complaint.
    report, _, _ = run([occurrence(1)], [released])
    assert counts(report) == (0, 0, 1, 0)


def test_a_room_feed_round_trips_through_icalendar() -> None:
    room = RoomConfig(id="orion", name="Orion", building="hq", floor="2", bookable=True)
    bookings = [booked(1), booked(2, organizer="Facilities team", title=None)]
    feed = icalendar.Calendar.from_ical(room_calendar(room, bookings, details=True))
    assert str(feed["X-WR-CALNAME"]) == "Orion"
    events = feed.walk("VEVENT")
    assert [
        (str(e["UID"]), e.decoded("DTSTART").timestamp(), e.decoded("DTEND").timestamp()) for e in events
    ] == [(f"{b.id}@officegw", b.start, b.end) for b in bookings]
    assert [str(e["SUMMARY"]) for e in events] == ["Review", "Booked"]
    assert str(events[0]["ORGANIZER"]) == "mailto:ana@example.com"
    assert str(events[1]["DESCRIPTION"]) == "Organizer: Facilities team"
    hidden = room_calendar(room, bookings, details=False)
    assert b"Review" not in hidden and b"ana@" not in hidden and b"Facilities" not in hidden
    # The same bookings, the same bytes (calendar clients poll).
    assert room_calendar(room, bookings, details=True) == room_calendar(room, bookings, details=True)
