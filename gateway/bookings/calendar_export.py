"""Calendars out: a room's bookings as an iCalendar feed (`GET
/v1/rooms/{room_id}/calendar.ics`) that any calendar client can subscribe to.

One VEVENT per booking, in UTC: UID `<booking id>@officegw` (stable, so a client
updates the event when the booking moves), DTSTAMP and LAST-MODIFIED from the
booking's last change (the same bookings give the same bytes), SUMMARY the title
or "Booked" when the caller may not see titles, ORGANIZER only with `details`
(as a `mailto:` when it is an address, else in the DESCRIPTION), LOCATION the
room's name, STATUS CONFIRMED, and `X-OFFICEGW-STATUS` booked or checked_in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.config import RoomConfig
from rules.bookings import Booking

if TYPE_CHECKING:
    # Imported where used: a start serves no calendar (see calendar_import).
    import icalendar

PRODUCT_ID = "-//officegw//room calendar//EN"
UNTITLED = "Booked"
# A room's feed starts this long before now (and ends at the import horizon).
FEED_PAST = 7 * 86_400.0


def room_calendar(room: RoomConfig, bookings: Iterable[Booking], *, details: bool) -> bytes:
    """The VCALENDAR of `room` with `bookings`; titles and organizers only with `details`."""
    import icalendar

    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODUCT_ID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", room.name or room.id)
    calendar.add("X-WR-TIMEZONE", "UTC")
    for booking in bookings:
        calendar.add_component(_event(room, booking, details))
    return bytes(calendar.to_ical())


def _event(room: RoomConfig, booking: Booking, details: bool) -> icalendar.Event:
    import icalendar

    event = icalendar.Event()
    event.add("UID", f"{booking.id}@officegw")
    event.add("DTSTAMP", _utc(booking.updated_at))
    event.add("LAST-MODIFIED", _utc(booking.updated_at))
    event.add("CREATED", _utc(booking.created_at))
    event.add("DTSTART", _utc(booking.start))
    event.add("DTEND", _utc(booking.end))
    event.add("SUMMARY", (booking.title if details else None) or UNTITLED)
    event.add("LOCATION", room.name or room.id)
    event.add("STATUS", "CONFIRMED")
    event.add("TRANSP", "OPAQUE")
    event.add("X-OFFICEGW-STATUS", booking.status.value)
    if details and booking.organizer:
        organizer = booking.organizer
        if "@" in organizer and " " not in organizer.strip():
            event.add("ORGANIZER", icalendar.vCalAddress(f"mailto:{organizer.strip()}"))
        else:
            event.add("DESCRIPTION", f"Organizer: {organizer}")
    return event


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
