"""Reading a calendar into what it asks for: rooms found, series expanded and bounded,
cancellations, keys; files refused whole. Pure: no store, no clock but the one given."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.bookings.calendar_import import CalendarError, ImportPlan, plan_import, read_calendar
from gateway.config import RoomConfig

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAYS = 86_400.0
ROOMS = [
    RoomConfig(
        id="orion", name="Orion", building="hq", floor="2", bookable=True, calendar=["orion@example.com"]
    ),
    RoomConfig(id="lyra", name="Lyra", building="hq", floor="2", bookable=True, calendar="HQ Lyra"),
    RoomConfig(id="kitchen", name="Kitchen", building="hq", floor="2"),
    # The same name in another building: a LOCATION "Vega" names two rooms.
    RoomConfig(id="vega", name="Vega", building="hq", floor="1", bookable=True),
    RoomConfig(id="vega-annex", name="Vega", building="annex", floor="1", bookable=True),
]


def plan(
    *lines: str, max_occurrences: int = 5_000, tz: str = "UTC", rooms: list[RoomConfig] = ROOMS
) -> ImportPlan:
    text = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *lines, "END:VCALENDAR", ""])
    return plan_import(
        text.encode(),
        rooms,
        now=NOW.timestamp(),
        horizon=90 * DAYS,
        max_occurrences=max_occurrences,
        timezone=ZoneInfo(tz),
    )


def vevent(
    uid: str, *lines: str, start: str = "20261201T090000Z", end: str = "20261201T100000Z"
) -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTART:{start}", f"DTEND:{end}", *lines, "END:VEVENT"]


def at(text: str) -> float:
    return datetime.strptime(text, "%Y%m%dT%H%M%S%z").timestamp()


@pytest.mark.parametrize(
    ("lines", "room"),
    [
        (["ATTENDEE;CUTYPE=ROOM:MAILTO:Orion@Example.COM", "LOCATION:Lyra"], "orion"),
        (["ATTENDEE:mailto:someone@example.com", "LOCATION:  lyra "], "lyra"),
        (["LOCATION:ORION"], "orion"),
        (["LOCATION:Orion; 2nd floor"], "orion"),
        (["LOCATION:hq lyra"], "lyra"),
    ],
    ids=["attendee-before-location", "location-by-id", "location-case", "location-part", "location-calendar"],
)
def test_rooms_are_found_by_attendee_then_location(lines: list[str], room: str) -> None:
    found = plan(*vevent("a", *lines))
    assert [(o.room_id, o.external_id) for o in found.occurrences] == [(room, "a/20261201T090000Z")]
    assert found.skipped == ()


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (["LOCATION:Boardroom"], "unknown room: LOCATION 'Boardroom' is no room of the site"),
        ([], "unknown room: no ATTENDEE, LOCATION or calendar name of the event is a room of the site"),
        (["LOCATION:Kitchen"], "room 'kitchen' is not bookable"),
        (["LOCATION:Vega"], "names several rooms (vega, vega-annex): book one room per event"),
        (["LOCATION:Orion, Lyra"], "names several rooms (lyra, orion): book one room per event"),
    ],
    ids=["unknown", "nothing", "not-bookable", "ambiguous-name", "two-rooms"],
)
def test_events_without_one_bookable_room_are_skipped_with_the_reason(lines: list[str], reason: str) -> None:
    found = plan(*vevent("a", *lines))
    assert found.occurrences == ()
    assert [(s.uid, s.reason, s.recurrence_id) for s in found.skipped] == [("a", reason, "20261201T090000Z")]
    # The series is fully known: its bookings elsewhere would be cancelled on re-import.
    assert found.complete == {"a"}


def test_a_rooms_feed_books_its_room_whatever_the_location() -> None:
    found = plan("X-WR-CALNAME:hq LYRA", *vevent("a", "LOCATION:Somewhere"), *vevent("b"))
    assert [o.room_id for o in found.occurrences] == ["lyra", "lyra"]


def test_rooms_the_caller_may_not_see_are_unknown() -> None:
    found = plan(*vevent("a", "LOCATION:Vega"), rooms=[r for r in ROOMS if r.building == "annex"])
    assert [o.room_id for o in found.occurrences] == ["vega-annex"]
    found = plan(*vevent("a", "LOCATION:Orion"), rooms=[r for r in ROOMS if r.building == "annex"])
    assert found.skipped[0].reason.startswith("unknown room")


def test_a_weekly_series_with_exdate_cancelled_and_moved_overrides() -> None:
    found = plan(
        *vevent(
            "w",
            "RRULE:FREQ=WEEKLY;COUNT=5",
            "EXDATE:20261208T090000Z",
            "LOCATION:Orion",
            "SUMMARY:Review",
            "ORGANIZER;CN=Ana:mailto:Ana@Example.com",
        ),
        *vevent("w", "RECURRENCE-ID:20261215T090000Z", "STATUS:CANCELLED", "LOCATION:Orion",
                start="20261215T090000Z", end="20261215T100000Z"),
        *vevent("w", "RECURRENCE-ID:20261222T090000Z", "LOCATION:Lyra", "SUMMARY:Moved",
                start="20261222T140000Z", end="20261222T153000Z"),
    )  # fmt: skip
    assert [(o.external_id, o.room_id, o.start, o.end, o.title, o.cancelled) for o in found.occurrences] == [
        ("w/20261201T090000Z", "orion", at("20261201T090000Z"), at("20261201T100000Z"), "Review", False),
        ("w/20261215T090000Z", "orion", at("20261215T090000Z"), at("20261215T100000Z"), None, True),
        ("w/20261222T090000Z", "lyra", at("20261222T140000Z"), at("20261222T153000Z"), "Moved", False),
        ("w/20261229T090000Z", "orion", at("20261229T090000Z"), at("20261229T100000Z"), "Review", False),
    ]
    assert found.occurrences[0].organizer == "Ana@Example.com"
    assert (found.complete, found.limited, found.found) == ({"w"}, False, 4)


def test_the_window_is_now_to_the_horizon() -> None:
    found = plan(
        *vevent("d", "RRULE:FREQ=DAILY", "LOCATION:Orion", start="20261130T110000Z", end="20261130T130000Z")
    )
    starts = [o.start for o in found.occurrences]
    # In progress at NOW (11:00-13:00) counts; the 90th day after NOW is the last.
    assert starts[0] == at("20261130T110000Z")
    assert starts[-1] < NOW.timestamp() + 90 * DAYS <= starts[-1] + DAYS
    assert (found.start, found.end) == (NOW.timestamp(), NOW.timestamp() + 90 * DAYS)


def test_floating_times_and_all_day_events_are_in_the_site_time_zone() -> None:
    found = plan(
        *vevent("f", "LOCATION:Orion", start="20261201T090000", end="20261201T100000"),
        "BEGIN:VEVENT", "UID:d", "DTSTART;VALUE=DATE:20261202", "LOCATION:Lyra", "END:VEVENT",
        tz="Europe/Berlin",
    )  # fmt: skip
    floating, all_day = found.occurrences
    assert (floating.external_id, floating.start) == ("f/20261201T080000Z", at("20261201T080000Z"))
    assert (all_day.external_id, all_day.start, all_day.end) == (
        "d/20261202",
        at("20261201T230000Z"),
        at("20261202T230000Z"),
    )


def test_method_cancel_and_private_events() -> None:
    found = plan("METHOD:CANCEL", *vevent("c", "LOCATION:Orion", "SUMMARY:Secret", "CLASS:PRIVATE"))
    (occurrence,) = found.occurrences
    assert (occurrence.cancelled, occurrence.title) == (True, None)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=SECONDLY", "RRULE FREQ=SECONDLY repeats too often: about 7,700,401 occurrences in the 90 days "
                          "imported, more than the 5,000 one import takes"),
        ("FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;"
         "BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55", "RRULE FREQ=DAILY repeats too often: about 25,920"),
        ("FREQ=MINUTELY;COUNT=5;BYMONTH=2;BYMONTHDAY=30",
         "RRULE FREQ=MINUTELY from DTSTART to the end of the 90 days imported is about 128,341 repetitions"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
         "RRULE FREQ=DAILY;BYMONTHDAY=30;BYMONTH=2 never matches a date"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "RRULE FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6 never matches a date"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=WE", "RRULE FREQ=DAILY;INTERVAL=7;BYDAY=WE never matches a date"),
    ],
    ids=["every-second", "many-per-day", "long-walk", "february-30", "sixth-monday", "never-wednesday"],
)  # fmt: skip
def test_rules_too_costly_to_expand_are_skipped_before_expansion(rule: str, reason: str) -> None:
    found = plan(*vevent("r", f"RRULE:{rule}", "LOCATION:Orion"))
    assert found.occurrences == ()
    (skipped,) = found.skipped
    assert skipped.reason.startswith(reason), skipped.reason
    # Not complete: its bookings are left as they were.
    assert found.complete == frozenset()


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        ("FREQ=HOURLY;COUNT=3", 3),
        # DTSTART (Tuesday 1 December 2026) is an occurrence even where the rule does not match it.
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", 1 + 3),
        ("FREQ=MONTHLY;BYDAY=2TU", 1 + 3),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", 1),
        # Weeks of 30 Nov, 14 and 28 Dec.
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;UNTIL=20261231T235959Z", 1 + 5),
    ],
)
def test_ordinary_rules_expand(rule: str, count: int) -> None:
    found = plan(*vevent("r", f"RRULE:{rule}", "LOCATION:Orion"))
    assert len(found.occurrences) == count
    assert found.skipped == ()


def test_an_rrule_starting_long_ago_is_fine_within_the_step_bound() -> None:
    found = plan(*vevent("old", "RRULE:FREQ=WEEKLY", "LOCATION:Orion", start="19900102T090000Z",
                         end="19900102T100000Z"))  # fmt: skip
    assert len(found.occurrences) == 13
    assert found.occurrences[0].external_id == "old/20261201T090000Z"


def test_the_occurrence_limit_cuts_the_series_that_reaches_it_and_skips_the_rest() -> None:
    found = plan(
        *vevent("a", "RRULE:FREQ=DAILY;COUNT=4", "LOCATION:Orion"),
        *vevent("b", "RRULE:FREQ=DAILY;COUNT=4", "LOCATION:Lyra"),
        *vevent("c", "LOCATION:Orion", start="20261210T090000Z", end="20261210T100000Z"),
        max_occurrences=6,
    )
    assert [o.external_id for o in found.occurrences] == [
        "a/20261201T090000Z", "a/20261202T090000Z", "a/20261203T090000Z", "a/20261204T090000Z",
        "b/20261201T090000Z", "b/20261202T090000Z",
    ]  # fmt: skip
    assert [(s.uid, s.reason.split(":")[0]) for s in found.skipped] == [
        ("b", "2 occurrences left out"),
        ("c", "the limit of 6 occurrences an import was reached"),
    ]
    assert (found.complete, found.limited) == ({"a"}, True)


def test_events_without_uid_or_start_are_skipped() -> None:
    found = plan(
        "BEGIN:VEVENT", "DTSTART:20261201T090000Z", "LOCATION:Orion", "END:VEVENT",
        "BEGIN:VEVENT", "UID:x", "LOCATION:Orion", "END:VEVENT",
    )  # fmt: skip
    assert [(s.uid, s.reason) for s in found.skipped] == [
        (None, "VEVENT without UID: it could not be updated later"),
        ("x", "no DTSTART"),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty body"),
        (b"\xff\xfeB\x00E\x00", "not UTF-8 (byte 0 cannot be decoded)"),
        (b"hello", "not an iCalendar file: Content line could not be parsed"),
        (b"BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n", "not an iCalendar file: expected BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nRRULE:FREQ=FOO\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "malformed calendar: VEVENT 'a' RRULE: Expected frequency, got: FOO"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nno colon here\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "malformed calendar: VEVENT 'a' line: Content line could not be parsed"),
    ],
)  # fmt: skip
def test_files_that_cannot_be_read_whole_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(CalendarError) as caught:
        read_calendar(data)
    assert str(caught.value).startswith(reason), str(caught.value)


def test_a_slow_import_stops_at_its_time_budget() -> None:
    # The clock as read: at the start (the budget runs to 5 s), before checking each of
    # the two series, before expanding each: the second expansion comes at 6 s.
    readings = iter([0.0, 1.0, 2.0, 3.0, 6.0])
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            *vevent("a", "LOCATION:Orion"),
            *vevent("b", "LOCATION:Orion"),
            "END:VCALENDAR",
            "",
        ]
    )
    found = plan_import(
        text.encode(),
        ROOMS,
        now=NOW.timestamp(),
        horizon=90 * DAYS,
        max_occurrences=10,
        timezone=UTC,
        clock=lambda: next(readings),
    )
    assert [o.uid for o in found.occurrences] == ["a"]
    assert [(s.uid, s.reason) for s in found.skipped] == [
        ("b", "the import took longer than 5 s to expand: import the rest separately")
    ]
    assert (found.complete, found.limited) == ({"a"}, True)


def test_a_calendar_of_another_scale_is_refused_whole() -> None:
    with pytest.raises(CalendarError) as caught:
        plan("CALSCALE:JULIAN", *vevent("a", "LOCATION:Orion"))
    assert str(caught.value) == "cannot be expanded: Only Gregorian calendars are supported."
