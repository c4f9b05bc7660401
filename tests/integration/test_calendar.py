"""Calendars end to end (issue 12, point 2), through mosquitto and HTTP: an iCalendar
file with a weekly series imports to the right bookings and re-imports without
changes; availability and the room's calendar feed show them; building scopes,
limits and bad files."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import pytest

from simulators.broker import BrokerProcess
from tests.support import RunningGateway, start_gateway

KEYS = {
    "viewer": ("wall-display", "viewer", []),
    "booking": ("booking-system", "booking", []),
    "hq": ("hq-panel", "booking", ["hq"]),
}
MAX_OCCURRENCES = 50
MAX_BYTES = 128 * 1024


def config() -> dict[str, Any]:
    return {
        "site": {
            "rooms": [
                {"id": "orion", "name": "Orion", "building": "hq", "floor": 2, "type": "meeting",
                 "capacity": 8, "bookable": True, "calendar": "Orion@Example.com"},
                {"id": "lyra", "name": "Lyra", "building": "hq", "floor": 2, "type": "meeting",
                 "capacity": 4, "bookable": True, "calendar": ["lyra@example.com", "HQ Lyra"]},
                {"id": "vega", "name": "Vega", "building": "annex", "floor": 1, "type": "meeting",
                 "capacity": 12, "bookable": True},
                {"id": "kitchen", "building": "hq", "floor": 2, "type": "kitchen"},
            ],
            "devices": [{"id": "orion-pir", "room": "orion", "power_source": "battery"}],
        },
        "bookings": {"import_max_occurrences": MAX_OCCURRENCES, "import_max_bytes": MAX_BYTES},
        "api": {
            "keys": [
                {"name": name, "sha256": hashlib.sha256(secret.encode()).hexdigest(), "role": role,
                 "buildings": buildings}
                for secret, (name, role, buildings) in KEYS.items()
            ]
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def gw(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    running = start_gateway(mqtt_broker, config())
    try:
        yield running
    finally:
        running.stop()


def headers(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def upload(gw: RunningGateway, body: str | bytes, key: str = "booking") -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return gw.http.post(
        "/v1/bookings/import", content=data, headers=headers(key, **{"Content-Type": "text/calendar"})
    )


def imported(gw: RunningGateway, body: str | bytes, key: str = "booking") -> dict[str, Any]:
    response = upload(gw, body, key)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def calendar(*events: str, name: str | None = None) -> str:
    header = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//officegw//EN"]
    if name is not None:
        header.append(f"X-WR-CALNAME:{name}")
    return "\r\n".join([*header, *events, "END:VCALENDAR", ""])


def event(uid: str, start: datetime, minutes: int = 60, *lines: str) -> str:
    body = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp(start)}",
        f"DTSTART:{stamp(start)}",
        f"DTEND:{stamp(start + timedelta(minutes=minutes))}",
        *lines,
        "END:VEVENT",
    ]
    return "\r\n".join(body)


def tomorrow_at(hour: int, days: int = 1) -> datetime:
    now = datetime.now(UTC)
    return (now + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def series_bookings(gw: RunningGateway, uid: str, key: str = "booking") -> list[dict[str, Any]]:
    response = gw.http.get("/v1/bookings", params={"series_id": uid, "limit": 1000}, headers=headers(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["bookings"]
    return found


WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)


def weekly(uid: str, first: datetime, *, exdates: tuple[datetime, ...] = ()) -> str:
    """A weekly series of five at `first`, in Orion (by the room's calendar address), with
    the second occurrence taken out (EXDATE), the third cancelled and the fourth moved
    two hours later (RECURRENCE-ID overrides)."""
    master = event(
        uid, first, 60,
        "RRULE:FREQ=WEEKLY;COUNT=5",
        f"EXDATE:{','.join(stamp(t) for t in (first + WEEK, *exdates))}",
        "SUMMARY:Design review",
        "ORGANIZER;CN=Ana:mailto:ana@example.com",
        "ATTENDEE;CUTYPE=ROOM;CN=Orion:mailto:orion@example.com",
        "LOCATION:Orion",
    )  # fmt: skip
    cancelled = event(
        uid, first + 2 * WEEK, 60,
        f"RECURRENCE-ID:{stamp(first + 2 * WEEK)}",
        "STATUS:CANCELLED",
        "SUMMARY:Design review",
        "LOCATION:Orion",
    )  # fmt: skip
    moved = event(
        uid, first + 3 * WEEK + timedelta(hours=2), 60,
        f"RECURRENCE-ID:{stamp(first + 3 * WEEK)}",
        "SUMMARY:Design review (moved)",
        "ORGANIZER;CN=Ana:mailto:ana@example.com",
        "LOCATION:Orion",
    )  # fmt: skip
    return calendar(master, cancelled, moved)


def test_weekly_series_imports_reimports_and_shows_in_availability_and_the_feed(gw: RunningGateway) -> None:
    first = tomorrow_at(9, days=2)
    uid = "weekly-review@test"
    report = imported(gw, weekly(uid, first))
    assert report | {"skipped": [], "start": None, "end": None} == {
        "created": 3, "updated": 0, "unchanged": 0, "cancelled": 0, "skipped": [], "skipped_count": 0,
        "changed": True, "occurrences": 4, "limited": False, "start": None, "end": None,
    }  # fmt: skip
    bookings = series_bookings(gw, uid)
    expected = [
        (f"{uid}/{stamp(first)}", first, "Design review"),
        (f"{uid}/{stamp(first + 3 * WEEK)}", first + 3 * WEEK + timedelta(hours=2), "Design review (moved)"),
        (f"{uid}/{stamp(first + 4 * WEEK)}", first + 4 * WEEK, "Design review"),
    ]
    assert [(b["external_id"], b["start"], b["end"], b["title"]) for b in bookings] == [
        (external_id, iso(start), iso(start + timedelta(hours=1)), title)
        for external_id, start, title in expected
    ]
    assert {(b["room_id"], b["status"], b["organizer"], b["series_id"]) for b in bookings} == {
        ("orion", "booked", "ana@example.com", uid)
    }

    # The same file again: nothing changes, and the report says so.
    again = imported(gw, weekly(uid, first))
    assert (again["created"], again["updated"], again["unchanged"], again["cancelled"]) == (0, 0, 3, 0)
    assert again["changed"] is False
    assert series_bookings(gw, uid) == bookings

    # Availability sees the imported booking.
    rooms = gw.http.get(
        "/v1/availability",
        params={"start": iso(first), "end": iso(first + timedelta(minutes=30))},
        headers=headers("viewer"),
    ).json()["rooms"]
    orion = next(room for room in rooms if room["id"] == "orion")
    assert (orion["available"], orion["reasons"]) == (False, ["booked"])
    assert orion["next_booking"]["id"] == bookings[0]["id"]
    assert next(room for room in rooms if room["id"] == "lyra")["available"] is True

    # The room's feed: a calendar any client reads, with the bookings in it.
    feed = gw.http.get("/v1/rooms/orion/calendar.ics", headers=headers("booking"))
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    parsed = icalendar.Calendar.from_ical(feed.content)
    events = {str(e["UID"]): e for e in parsed.walk("VEVENT")}
    for booking in bookings:
        served = events[f"{booking['id']}@officegw"]
        assert iso(served.decoded("DTSTART")) == booking["start"]
        assert iso(served.decoded("DTEND")) == booking["end"]
        assert str(served["SUMMARY"]) == booking["title"]
        assert str(served["ORGANIZER"]) == "mailto:ana@example.com"
    # A viewer key sees when the room is booked, not what for or by whom.
    shown = icalendar.Calendar.from_ical(
        gw.http.get("/v1/rooms/orion/calendar.ics", headers=headers("viewer")).content
    )
    assert {str(e["SUMMARY"]) for e in shown.walk("VEVENT")} == {"Booked"}
    assert all("ORGANIZER" not in e for e in shown.walk("VEVENT"))
    viewer_feed = gw.http.get("/v1/rooms/orion/calendar.ics", headers=headers("viewer")).content
    assert b"Design review" not in viewer_feed and b"ana@" not in viewer_feed

    # One more occurrence taken out of the series: its booking is cancelled.
    fewer = imported(gw, weekly(uid, first, exdates=(first + 4 * WEEK,)))
    assert (fewer["created"], fewer["updated"], fewer["unchanged"], fewer["cancelled"]) == (0, 0, 2, 1)
    statuses = {b["external_id"]: b["status"] for b in series_bookings(gw, uid)}
    assert statuses[expected[2][0]] == "cancelled"
    assert [s for k, s in statuses.items() if k != expected[2][0]] == ["booked", "booked"]
    served_now = icalendar.Calendar.from_ical(
        gw.http.get("/v1/rooms/orion/calendar.ics", headers=headers("booking")).content
    )
    assert f"{bookings[2]['id']}@officegw" not in {str(e["UID"]) for e in served_now.walk("VEVENT")}


def test_rooms_are_found_by_location_and_calendar_name_and_clashes_are_skipped(gw: RunningGateway) -> None:
    start = tomorrow_at(13, days=3)
    report = imported(
        gw,
        calendar(
            event("by-location@test", start, 30, "LOCATION:lyra"),
            event("clash@test", start + timedelta(minutes=15), 30, "LOCATION:LYRA"),
            event("nowhere@test", start, 30, "LOCATION:Boardroom 7"),
            event("kitchen@test", start, 30, "LOCATION:kitchen"),
        ),
    )
    assert (report["created"], report["skipped_count"]) == (1, 3), report
    reasons = {s["uid"]: s["reason"] for s in report["skipped"]}
    by_location = series_bookings(gw, "by-location@test")[0]
    assert reasons["clash@test"] == f"overlaps booking {by_location['id']!r} of room 'lyra'"
    assert reasons["nowhere@test"] == "unknown room: LOCATION 'Boardroom 7' is no room of the site"
    assert reasons["kitchen@test"] == "room 'kitchen' is not bookable"
    # A room's own feed (its calendar name): every event books it, whatever the LOCATION says.
    feed = calendar(
        event("by-feed@test", start + timedelta(hours=2), 30),
        event("by-feed-2@test", start + timedelta(hours=3), 30, "LOCATION:Building 2, 3rd floor"),
        name="HQ Lyra",
    )
    assert imported(gw, feed)["created"] == 2
    assert [series_bookings(gw, f"by-feed{n}@test")[0]["room_id"] for n in ("", "-2")] == ["lyra", "lyra"]


def test_a_scoped_key_neither_imports_into_nor_reads_another_buildings_rooms(gw: RunningGateway) -> None:
    start = tomorrow_at(10, days=4)
    report = imported(
        gw,
        calendar(
            event("annex@test", start, 60, "LOCATION:Vega"), event("hq@test", start, 60, "LOCATION:Orion")
        ),
        key="hq",
    )
    assert report["created"] == 1
    assert report["skipped"] == [
        {"uid": "annex@test", "reason": "unknown room: LOCATION 'Vega' is no room of the site",
         "recurrence_id": stamp(start)}
    ]  # fmt: skip
    assert series_bookings(gw, "annex@test") == []
    refused = gw.http.get("/v1/rooms/vega/calendar.ics", headers=headers("hq"))
    assert refused.status_code == 404
    assert refused.json() == {"detail": "room not found"}
    assert gw.http.get("/v1/rooms/orion/calendar.ics", headers=headers("hq")).status_code == 200
    # The unscoped key books the annex from the same file.
    assert imported(gw, calendar(event("annex@test", start, 60, "LOCATION:Vega")))["created"] == 1


def test_a_rule_repeating_every_second_forever_is_skipped_at_once(gw: RunningGateway) -> None:
    began = time.monotonic()
    report = imported(
        gw,
        calendar(
            event("flood@test", tomorrow_at(8, days=5), 1, "RRULE:FREQ=SECONDLY", "LOCATION:Orion"),
            event("never@test", tomorrow_at(8, days=5), 30,
                  "RRULE:FREQ=DAILY;COUNT=10;BYMONTH=2;BYMONTHDAY=30", "LOCATION:Orion"),
        ),
    )  # fmt: skip
    assert time.monotonic() - began < 5.0
    assert report["created"] == 0
    reasons = {s["uid"]: s["reason"] for s in report["skipped"]}
    assert reasons["flood@test"].startswith("RRULE FREQ=SECONDLY repeats too often: about ")
    assert "never matches a date" in reasons["never@test"]


def test_at_most_the_occurrence_limit_is_imported_and_the_report_says_so(gw: RunningGateway) -> None:
    first = tomorrow_at(6, days=1)
    report = imported(
        gw,
        calendar(
            event("daily-a@test", first, 30, "RRULE:FREQ=DAILY;COUNT=30", "LOCATION:Orion"),
            event("daily-b@test", first + HOUR, 30, "RRULE:FREQ=DAILY;COUNT=30", "LOCATION:Orion"),
        ),
    )
    assert report["limited"] is True
    assert report["created"] == MAX_OCCURRENCES
    assert report["skipped"] == [
        {"uid": "daily-b@test", "recurrence_id": None,
         "reason": f"10 occurrences left out: the limit of {MAX_OCCURRENCES} occurrences an import was "
                   "reached: import the rest separately"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"hello, calendar", "text/calendar", 422, "not an iCalendar file"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "text/calendar", 422, "not an iCalendar file"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:2026120\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "text/calendar",
            422,
            "malformed calendar: VEVENT 'x' DTSTART",
        ),
        ("BEGIN:VCALENDAR\r\nX-WR-CALNAME:Café\r\nEND:VCALENDAR\r\n".encode("latin-1"), "text/calendar", 422,
         "not UTF-8"),
        (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "application/json", 415,
         "send the calendar as text/calendar"),
    ],
)  # fmt: skip
def test_bad_files_are_refused_whole(
    gw: RunningGateway, body: bytes, content_type: str, status: int, detail: str
) -> None:
    response = gw.http.post(
        "/v1/bookings/import", content=body, headers=headers("booking", **{"Content-Type": content_type})
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail), response.text


def test_import_bodies_have_a_limit_of_their_own(gw: RunningGateway) -> None:
    start = tomorrow_at(7, days=6)
    filler = "DESCRIPTION:" + "x" * 70
    # Above api.max_body_bytes (64 KiB), within bookings.import_max_bytes.
    big = calendar(*(event(f"big-{n}@test", start, 5, "LOCATION:Orion", filler) for n in range(400)))
    assert 65_536 < len(big) < MAX_BYTES
    assert upload(gw, big).status_code == 200
    too_big = calendar(*(event(f"big-{n}@test", start, 5, "LOCATION:Orion", filler) for n in range(800)))
    refused = upload(gw, too_big)
    assert refused.status_code == 413
    assert refused.json() == {"detail": f"request body larger than {MAX_BYTES} bytes"}
    # Other routes keep api.max_body_bytes.
    other = gw.http.post(
        "/v1/bookings", content=b"{" + b" " * 70_000 + b"}",
        headers=headers("booking", **{"Content-Type": "application/json"}),
    )  # fmt: skip
    assert other.status_code == 413


def test_viewers_may_not_import(gw: RunningGateway) -> None:
    body = calendar(event("viewer@test", tomorrow_at(9, days=8), 30, "LOCATION:Orion"))
    response = upload(gw, body, "viewer")
    assert response.status_code == 403
