"""Bookings as the core sees them: a booking's life decided from presence evidence,
and what a room's bookings and occupancy say about its availability.

Pure and clock-injected like the occupancy fusion: `decide(booking, presence,
policy, now)` returns the transition the evidence calls for (or None), dated by
the stored timestamps it rests on, never by when the gateway happened to look. A
gateway that was down through a check-in deadline therefore releases the booking
at the deadline on its first tick back, as if it had been watching.

Life of a booking (statuses in `BookingStatus`):

    booked ──presence held for presence_min──▶ checked_in ──vacant for release_when_vacant──▶ ended
       │   (or an explicit check-in)                 └──────────────end reached─────────────▶ ended
       ├──no presence by start + checkin_window──▶ released    (a no-show: the room is free again)
       ├──end reached, room without working presence sensors──▶ ended (attendance unknown)
       └──cancelled by the booking system──▶ cancelled

A room only releases or ends bookings by itself while it can see: some presence
sensor of the room (one that reports occupancy, presence or a people count) is
reporting. A room with no sensors, or with all of them offline, keeps its bookings
until their end (sites without sensors check in explicitly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rules.occupancy import Occupancy, OccupancyState


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    RELEASED = "released"
    ENDED = "ended"
    CANCELLED = "cancelled"


# Bookings that hold their room: they clash with others and make it unavailable.
ACTIVE = frozenset({BookingStatus.BOOKED, BookingStatus.CHECKED_IN})

# Device fields whose reports make a device a presence sensor.
PRESENCE_FIELDS = frozenset({"occupancy", "presence", "people"})

# How long before its start a booking may be checked in explicitly.
EARLY_CHECKIN = 900.0


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking; times in epoch seconds. `external_id` is the booking system's id
    (unique); `series_id` groups the occurrences of a recurring series."""

    id: str
    room_id: str
    start: float
    end: float
    title: str | None = None
    organizer: str | None = None
    external_id: str | None = None
    series_id: str | None = None
    status: BookingStatus = BookingStatus.BOOKED
    created_at: float = 0.0
    updated_at: float = 0.0
    # The API key that made it.
    created_by: str | None = None
    checked_in_at: float | None = None
    released_at: float | None = None
    ended_at: float | None = None
    cancelled_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def overlaps(self, start: float, end: float) -> bool:
        return self.start < end and start < self.end


@dataclass(frozen=True, slots=True)
class BookingPolicy:
    """One room's booking timers, in seconds."""

    # Presence must be seen within this long after the start, or the booking is released.
    checkin_window: float = 600.0
    # A checked-in room vacant this long ends its booking early.
    release_when_vacant: float = 900.0
    # Occupied this long, with someone still seen at the end of it, is presence: one
    # motion blip (which keeps a room occupied for its whole vacancy timeout) is not.
    presence_min: float = 60.0


@dataclass(frozen=True, slots=True)
class Presence:
    """What the room's sensors say, as far as bookings care."""

    # Some presence sensor of the room reports (known and not offline).
    sensing: bool
    occupied: bool = False
    # Since when the room has been occupied (or vacant); None: no evidence yet.
    since: float | None = None
    # The latest moment someone was sensed: `now` while level evidence (a people
    # count, radar presence, motion in a closed room) holds, else the last motion,
    # badge or rising CO2 reading.
    last_seen: float | None = None
    # The room has presence sensors and every one of them is offline.
    sensors_offline: bool = False


NO_SENSORS = Presence(sensing=False)


def presence_of(
    occupancy: OccupancyState, sensing: bool, now: float, *, sensors_offline: bool = False
) -> Presence:
    """The booking view of a room's occupancy state."""
    occupied = occupancy.state == Occupancy.OCCUPIED
    if occupied and (occupancy.people or occupancy.present or occupancy.wasp):
        last_seen: float | None = now
    else:
        seen = [t for t in (occupancy.last_motion, occupancy.last_badge, occupancy.co2_rising_at) if t]
        last_seen = max(seen, default=None)
    return Presence(sensing, occupied, occupancy.since, last_seen, sensors_offline)


@dataclass(frozen=True, slots=True)
class Transition:
    status: BookingStatus
    at: float
    reason: str


def decide(booking: Booking, presence: Presence, policy: BookingPolicy, now: float) -> Transition | None:
    """What the evidence at `now` does to an active booking; None: nothing yet."""
    if booking.status == BookingStatus.BOOKED:
        return _booked(booking, presence, policy, now)
    if booking.status == BookingStatus.CHECKED_IN:
        return _checked_in(booking, presence, policy, now)
    return None


def _booked(booking: Booking, p: Presence, policy: BookingPolicy, now: float) -> Transition | None:
    if now < booking.start:
        return None
    if p.sensing and p.occupied and p.since is not None:
        confirmed = max(p.since, booking.start) + policy.presence_min
        if confirmed < booking.end and confirmed <= now and (p.last_seen or -math.inf) >= confirmed:
            return Transition(
                BookingStatus.CHECKED_IN, confirmed, f"presence for {_seconds(policy.presence_min)}"
            )
    if now >= booking.end:
        if p.sensing:
            return Transition(BookingStatus.RELEASED, booking.end, "no presence during the booking")
        return Transition(BookingStatus.ENDED, booking.end, "booking over (no presence sensor to check in)")
    deadline = booking.start + policy.checkin_window
    if now < deadline or not p.sensing or p.occupied:
        # Occupied but not confirmed yet: wait for the evidence or for the room to empty.
        return None
    vacant_since = p.since if p.since is not None else deadline
    return Transition(
        BookingStatus.RELEASED,
        min(max(deadline, vacant_since), now),
        f"no presence within {_seconds(policy.checkin_window)} of the start",
    )


def _checked_in(booking: Booking, p: Presence, policy: BookingPolicy, now: float) -> Transition | None:
    checked_in = booking.checked_in_at if booking.checked_in_at is not None else booking.start
    if p.sensing and not p.occupied:
        vacant_from = max(p.since if p.since is not None else checked_in, checked_in)
        ends = vacant_from + policy.release_when_vacant
        if ends < booking.end and ends <= now:
            return Transition(
                BookingStatus.ENDED, ends, f"room vacant for {_seconds(policy.release_when_vacant)}"
            )
    if now >= booking.end:
        return Transition(BookingStatus.ENDED, booking.end, "booking over")
    return None


def apply(booking: Booking, transition: Transition) -> Booking:
    """The booking after `transition` (its time recorded in the matching field)."""
    status, at = transition.status, transition.at
    if status == BookingStatus.CHECKED_IN:
        return replace(booking, status=status, checked_in_at=at, updated_at=at)
    if status == BookingStatus.RELEASED:
        return replace(booking, status=status, released_at=at, updated_at=at)
    if status == BookingStatus.ENDED:
        return replace(booking, status=status, ended_at=at, updated_at=at)
    return replace(booking, status=status, cancelled_at=at, updated_at=at)


# Availability


def rebooked(
    booking: Booking,
    *,
    room_id: str,
    start: float,
    end: float,
    title: str | None,
    organizer: str | None,
    series_id: str | None,
    now: float,
) -> Booking:
    """The booking with a new room, window and details. Moved to another room, a
    checked-in booking is booked again: the presence that checked it in was seen in
    the other room."""
    changed = replace(
        booking,
        room_id=room_id,
        start=start,
        end=end,
        title=title,
        organizer=organizer,
        series_id=series_id,
        updated_at=now,
    )
    if room_id != booking.room_id and booking.status == BookingStatus.CHECKED_IN:
        changed = replace(changed, status=BookingStatus.BOOKED, checked_in_at=None)
    return changed


@dataclass(frozen=True, slots=True)
class Windows:
    """A set of windows [start, end): those whose start is in [start_from, start_until)
    and whose end is in (end_after, end_until]."""

    start_from: float = -math.inf
    start_until: float = math.inf
    end_after: float = -math.inf
    end_until: float = math.inf

    def __contains__(self, window: tuple[float, float]) -> bool:
        start, end = window
        return self.start_from <= start < self.start_until and self.end_after < end <= self.end_until

    def __and__(self, other: Windows) -> Windows:
        """The windows in both."""
        return Windows(
            max(self.start_from, other.start_from),
            min(self.start_until, other.start_until),
            max(self.end_after, other.end_after),
            min(self.end_until, other.end_until),
        )


EVERY_WINDOW = Windows()


@dataclass(frozen=True, slots=True)
class RoomAvailability:
    available: bool
    # Why not ("booked", "occupied"), and caveats that do not block ("sensors_offline":
    # the room's presence sensors are all offline, so it is offered on bookings alone).
    reasons: tuple[str, ...]
    # When the room stops being free, counted from the window's start: the next
    # booking's start; None when not available or nothing is booked after.
    free_until: float | None
    # The earliest active booking ending after the window's start: the clashing one
    # when the room is booked, else the next one.
    next_booking: Booking | None
    # The windows this answer holds for, with the same bookings, occupancy and sensors,
    # and with now in the window or not as in this one: the window may move until it
    # crosses a booking's boundary. (A window starting at now, such as "free for the
    # next 30 min", changes its answer only when now or its end crosses one.)
    holds_for: Windows = EVERY_WINDOW


def availability(
    bookings: Sequence[Booking],
    start: float,
    end: float,
    now: float,
    *,
    occupied: bool = False,
    sensors_offline: bool = False,
) -> RoomAvailability:
    """A room's availability for [start, end). `bookings` are its active bookings,
    sorted by start; `occupied` and `sensors_offline` count only for a window that
    includes `now`."""
    includes_now = start <= now < end
    # Sorted by start, the first active booking ending after `start` starts earliest
    # of those: the room is booked in the window when it starts before the window ends.
    # The active bookings before it end at or before `start` (active ones never
    # overlap): the latest of those ends is where the window's start may move back to.
    first: Booking | None = None
    ended = -math.inf
    for booking in bookings:
        if not booking.active:
            continue
        if booking.end > start:
            first = booking
            break
        ended = max(ended, booking.end)
    booked = first is not None and first.start < end
    reasons: tuple[str, ...] = ("booked",) if booked else ()
    if includes_now and occupied:
        reasons += ("occupied",)
    if includes_now and sensors_offline:
        reasons += ("sensors_offline",)
    available = not booked and not (includes_now and occupied)
    free_until = first.start if available and first is not None else None
    if first is None:
        holds_for = Windows(start_from=ended)
    elif booked:
        holds_for = Windows(ended, first.end, end_after=first.start)
    else:
        holds_for = Windows(ended, first.end, end_until=first.start)
    return RoomAvailability(available, reasons, free_until, first, holds_for)


def current_and_next(bookings: Sequence[Booking], now: float) -> tuple[Booking | None, Booking | None]:
    """The active booking in progress at `now`, and the next one to start after `now`."""
    current = next((b for b in bookings if b.active and b.start <= now < b.end), None)
    upcoming = next((b for b in bookings if b.active and b.start > now), None)
    return current, upcoming


def current_and_next_holds(bookings: Sequence[Booking], now: float) -> tuple[float, float]:
    """[from, until) around `now` over which `current_and_next(bookings, t)` gives what it
    gives at `now`: it changes only where an active booking starts or ends."""
    since, until = -math.inf, math.inf
    for b in bookings:
        if b.active:
            for edge in (b.start, b.end):
                if edge <= now:
                    since = max(since, edge)
                else:
                    until = min(until, edge)
    return since, until


def window_problem(start: float, end: float, max_duration: float) -> str | None:
    """Why [start, end) cannot be booked, or None."""
    if not (math.isfinite(start) and math.isfinite(end)):
        return "start and end must be finite times"
    if end <= start:
        return "end must be after start"
    if end - start > max_duration:
        return f"a booking may last at most {_seconds(max_duration)}"
    return None


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"
