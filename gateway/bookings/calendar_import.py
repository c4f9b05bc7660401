"""Calendars in: an iCalendar file read into the bookings it asks for (`POST
/v1/bookings/import`), without touching any booking yet (`Bookings.sync` applies
the plan).

`plan_import(data, rooms, ...)` parses with `icalendar`, expands recurring series
with `recurring-ical-events` over [now, now + horizon], and maps each occurrence to
a room: an ATTENDEE address that is a room's `calendar`, else the LOCATION (the
whole of it, then each part between `;` or `,`) naming a room's id, name or
`calendar`, else the file's X-WR-CALNAME doing so (a room's own feed). Matching is
case-insensitive; `rooms` are the rooms the caller may see, so another building's
room is as unknown as one that does not exist.

Each occurrence is keyed `<UID>/<RECURRENCE-ID>`: the recurrence id is the
occurrence's original start (an override keeps it when it moves the occurrence; a
one-off event's is its start), in UTC (`20261201T080000Z`), or the date of an
all-day event (`20261201`). Floating times and all-day events are in the site's
time zone.

What an attacker could send, and what bounds it:

- a rule that repeats every second forever: the occurrences a rule would have in the
  window and the steps from its DTSTART to the window's end are estimated from FREQ,
  INTERVAL, COUNT, UNTIL and the BY parts before anything is expanded (dateutil
  builds the whole list between two instants, from DTSTART on); a series over
  `max_occurrences` or MAX_RULE_STEPS is skipped, with the estimate as its reason;
- a rule that never matches (`FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`): dateutil walks
  such a rule up to the year 9999 looking for its next instance (9 s for a daily
  one). Every rule with BY parts is first tried from the same date 400·k years
  later (the Gregorian calendar repeats every 400 years), at most ~800 years before
  dateutil's end of time; one that finds nothing there never matches and is skipped;
- many series: at most `max_occurrences` occurrences an import, and a time budget
  (TIME_BUDGET) after which the remaining series are skipped, each with its reason;
- a file that is not UTF-8, not iCalendar, or has any malformed line or property:
  `CalendarError` (a 422) for the whole file, since a partly read calendar would
  cancel the occurrences it failed to read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from gateway.config import RoomConfig

if TYPE_CHECKING:
    # Imported where used (icalendar, recurring-ical-events and dateutil's rules are
    # a twentieth of the gateway's import time, and a start imports no calendar).
    import icalendar

# Steps (candidate instants) a rule may take from its DTSTART to the window's end.
MAX_RULE_STEPS = 100_000
# Seconds of expansion an import may take; the series after that are skipped.
TIME_BUDGET = 5.0
# Longest title and organizer kept (as in the booking API).
MAX_TEXT = 200
# How much of a value from the file a reason repeats.
PREVIEW = 60
# The Gregorian calendar (leap years, weekdays) repeats every 400 years.
GREGORIAN_CYCLE_YEARS = 400

_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3_600,
    "DAILY": 86_400,
    "WEEKLY": 7 * 86_400,
    # The shortest month and year: more periods, an estimate on the safe side.
    "MONTHLY": 28 * 86_400,
    "YEARLY": 365 * 86_400,
}
_DAYS_PER_PERIOD = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_DAY_FILTERS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class CalendarError(ValueError):
    """The file as a whole cannot be read; `str()` says why."""


@dataclass(frozen=True, slots=True)
class CalendarOccurrence:
    uid: str
    recurrence_id: str
    # None: no room the caller may book matched (see `Skipped`).
    room_id: str | None
    start: float
    end: float
    title: str | None
    organizer: str | None
    # STATUS:CANCELLED (the event's, the override's or the file's METHOD:CANCEL).
    cancelled: bool

    @property
    def external_id(self) -> str:
        return f"{self.uid}/{self.recurrence_id}"


@dataclass(frozen=True, slots=True)
class Skipped:
    # None for an event without a UID.
    uid: str | None
    reason: str
    recurrence_id: str | None = None


@dataclass(frozen=True, slots=True)
class ImportPlan:
    # The window expanded: [now, now + horizon].
    start: float
    end: float
    # Occurrences with a room to book (or cancelled ones, to cancel).
    occurrences: tuple[CalendarOccurrence, ...]
    skipped: tuple[Skipped, ...]
    # Series (UIDs) whose occurrences in the window are all known: their imported
    # bookings in the window that are not among `occurrences` were removed from the
    # calendar. A series skipped or cut short is not complete.
    complete: frozenset[str]
    # The occurrence limit or the time budget left something out.
    limited: bool
    # Occurrences found in the window (with a room or not).
    found: int


class RoomDirectory:
    """Which room a calendar name, address or location stands for (case-insensitive)."""

    def __init__(self, rooms: Iterable[RoomConfig]) -> None:
        self.rooms = {room.id: room for room in rooms}
        self._addresses: dict[str, set[str]] = {}
        self._names: dict[str, set[str]] = {}
        for room in self.rooms.values():
            for address in room.calendar:
                self._addresses.setdefault(_address_key(address), set()).add(room.id)
            for name in (room.id, room.name, *room.calendar):
                if name:
                    self._names.setdefault(_address_key(name), set()).add(room.id)

    def by_address(self, value: str) -> set[str]:
        return self._addresses.get(_address_key(value), set())

    def by_name(self, value: str) -> set[str]:
        found = self._names.get(_address_key(value))
        if found:
            return found
        parts = [part for part in re.split(r"[;,]", value) if part.strip()]
        if len(parts) < 2:
            return set()
        return set().union(*(self._names.get(_address_key(part), set()) for part in parts))


def _address_key(value: str) -> str:
    key = value.strip().casefold()
    return key[len("mailto:") :] if key.startswith("mailto:") else key


def plan_import(
    data: bytes,
    rooms: Iterable[RoomConfig],
    *,
    now: float,
    horizon: float,
    max_occurrences: int,
    timezone: tzinfo,
    clock: Callable[[], float] = time.perf_counter,
) -> ImportPlan:
    """What the calendar in `data` asks of `rooms` in [now, now + horizon] (seconds).
    Raises CalendarError for a file that cannot be read as a whole."""
    calendar = read_calendar(data)
    directory = RoomDirectory(rooms)
    window_start = datetime.fromtimestamp(now, UTC)
    window_end = datetime.fromtimestamp(now + horizon, UTC)
    expander = _Expander(
        directory, calendar, timezone, window_start, window_end, max_occurrences, clock() + TIME_BUDGET, clock
    )
    return expander.run()


def read_calendar(data: bytes) -> icalendar.Calendar:
    """The one VCALENDAR in `data`; CalendarError when it is not UTF-8, not iCalendar,
    or any line or property of it is malformed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarError(
            f"not UTF-8 (byte {exc.start} cannot be decoded): send the calendar as UTF-8"
        ) from None
    if not text.strip():
        raise CalendarError("empty body: expected an iCalendar file (BEGIN:VCALENDAR ... END:VCALENDAR)")
    import icalendar

    try:
        parsed = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise CalendarError(f"not an iCalendar file: {_preview(str(exc).splitlines()[0], 120)}") from None
    if not isinstance(parsed, icalendar.Calendar) or parsed.name != "VCALENDAR":
        raise CalendarError("not an iCalendar file: expected BEGIN:VCALENDAR at the top")
    problems = [
        f"{component.name} {_preview(str(component.get('UID', '')), 40)!r} {name or 'line'}: "
        f"{_preview(str(message), 80)}".replace(" '' ", " ")
        for component in parsed.walk()
        for name, message in component.errors
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CalendarError(f"malformed calendar: {'; '.join(problems[:3])}{more}")
    return parsed


class _Expander:
    def __init__(
        self,
        directory: RoomDirectory,
        calendar: icalendar.Calendar,
        timezone: tzinfo,
        window_start: datetime,
        window_end: datetime,
        max_occurrences: int,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.calendar = calendar
        self.tz = timezone
        self.start = window_start
        self.end = window_end
        self.max = max_occurrences
        self.deadline = deadline
        self.clock = clock
        self.cancel_all = str(calendar.get("METHOD", "")).upper() == "CANCEL"
        self.calendar_name = str(calendar.get("X-WR-CALNAME", "")).strip()
        self.occurrences: list[CalendarOccurrence] = []
        self.skipped: list[Skipped] = []
        self.complete: set[str] = set()
        self.limited = False
        self.found = 0

    def run(self) -> ImportPlan:
        import recurring_ical_events  # type: ignore[import-untyped]

        accepted = self._accepted_components()
        if accepted is not None:
            try:
                query = recurring_ical_events.of(accepted)
            except (ValueError, TypeError) as exc:  # the library's InvalidCalendar is a ValueError
                raise CalendarError(f"cannot be expanded: {_preview(str(exc), 120)}") from None
            for series in query.series:
                self._expand(str(series.uid), series)
        return ImportPlan(
            self.start.timestamp(),
            self.end.timestamp(),
            tuple(self.occurrences),
            tuple(self.skipped),
            frozenset(self.complete),
            self.limited,
            self.found,
        )

    # Before expansion: which series may be expanded at all

    def _accepted_components(self) -> icalendar.Calendar | None:
        """The calendar without the events that cannot or must not be expanded (each
        skipped with its reason); None when nothing is left."""
        import icalendar

        by_uid: dict[str, list[icalendar.Component]] = {}
        for event in self.calendar.walk("VEVENT"):
            uid = str(event.get("UID", "")).strip()
            if not uid:
                self.skipped.append(Skipped(None, "VEVENT without UID: it could not be updated later"))
                continue
            by_uid.setdefault(uid, []).append(event)
        kept = icalendar.Calendar()
        for name, value in self.calendar.property_items(recursive=False):
            if name not in ("BEGIN", "END"):
                kept.add(name, value)
        for component in self.calendar.subcomponents:
            if component.name == "VTIMEZONE":
                kept.add_component(component)
        any_kept = False
        for uid, events in by_uid.items():
            if self.clock() > self.deadline:
                self.limited = True
                self.skipped.append(Skipped(uid, self._over_time()))
                continue
            problem = self._series_problem(events)
            if problem is not None:
                self.skipped.append(Skipped(uid, problem))
                continue
            for event in events:
                kept.add_component(event)
            any_kept = True
        return kept if any_kept else None

    def _series_problem(self, events: Sequence[icalendar.Component]) -> str | None:
        for event in events:
            if event.get("DTSTART") is None:
                return "no DTSTART"
            if event.get("EXRULE") is not None:
                return "EXRULE is not supported (deprecated by RFC 5545): use EXDATE"
        for event in events:
            if event.get("RECURRENCE-ID") is not None:
                continue
            rules = event.get("RRULE")
            for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
                problem = self._rule_problem(rule, event.decoded("DTSTART"))
                if problem is not None:
                    return problem
        return None

    def _rule_problem(self, rule: icalendar.vRecur, dtstart: date | datetime) -> str | None:
        freq = _one(rule, "FREQ")
        if freq not in _FREQ_SECONDS:
            return f"RRULE FREQ {_preview(str(freq))!r} is not one of {', '.join(_FREQ_SECONDS)}"
        interval = max(1, int(_one(rule, "INTERVAL") or 1))
        count = _one(rule, "COUNT")
        until = _one(rule, "UNTIL")
        first = self._timestamp(dtstart)
        stop = self.end.timestamp()
        if until is not None:
            stop = min(stop, self._timestamp(until))
        step = _FREQ_SECONDS[freq] * interval
        per_period = _per_period(rule, freq)
        filtered = any(key.startswith("BY") for key in rule)
        walked = max(0, int((stop - first) // step) + 1) if stop >= first else 0
        in_window = max(0, int((stop - max(first, self.start.timestamp())) // step) + 1)
        if stop < self.start.timestamp():
            in_window = 0
        if count is not None and not filtered:
            walked = min(walked, int(count))
        in_window_occurrences = in_window * per_period
        if count is not None:
            in_window_occurrences = min(in_window_occurrences, int(count))
        days = round((self.end - self.start).total_seconds() / 86_400)
        if in_window_occurrences > self.max:
            return (
                f"RRULE FREQ={freq} repeats too often: about {in_window_occurrences:,} occurrences "
                f"in the {days} days imported, more than the {self.max:,} one import takes"
            )
        if walked * per_period > MAX_RULE_STEPS:
            return (
                f"RRULE FREQ={freq} from DTSTART to the end of the {days} days imported is about "
                f"{walked * per_period:,} repetitions to walk through (at most {MAX_RULE_STEPS:,})"
            )
        if filtered:
            return _never_matches(rule, dtstart)
        return None

    # Expansion

    def _expand(self, uid: str, series: Any) -> None:
        import recurring_ical_events

        if self.clock() > self.deadline:
            self.limited = True
            self.skipped.append(Skipped(uid, self._over_time()))
            return
        if len(self.occurrences) >= self.max:
            self.limited = True
            self.skipped.append(Skipped(uid, self._over_limit()))
            return
        try:
            found = list(series.between(self.start, self.end))
            components = [occurrence.as_component(False) for occurrence in found]
            occurrences = sorted(
                (self._occurrence(uid, component) for component in components), key=lambda o: o[0].start
            )
        except (ValueError, TypeError, OverflowError, recurring_ical_events.InvalidCalendar) as exc:
            # One series the library cannot expand (dates mixed with times, a rule
            # dateutil refuses): that series is skipped, the others go on.
            self.skipped.append(Skipped(uid, f"cannot be expanded: {_preview(str(exc), 120)}"))
            return
        self.found += len(occurrences)
        room_left = self.max - len(self.occurrences)
        complete = len(occurrences) <= room_left
        if not complete:
            self.limited = True
            left_out = len(occurrences) - room_left
            occurrences = occurrences[:room_left]
            self.skipped.append(Skipped(uid, f"{left_out:,} occurrences left out: {self._over_limit()}"))
        last_reason: str | None = None
        for occurrence, skip in occurrences:
            if skip is None:
                self.occurrences.append(occurrence)
            elif skip.reason != last_reason:
                # A series in an unknown room is one reason, not one per occurrence.
                self.skipped.append(skip)
                last_reason = skip.reason
        if complete:
            self.complete.add(uid)

    def _occurrence(
        self, uid: str, component: icalendar.Component
    ) -> tuple[CalendarOccurrence, Skipped | None]:
        start = self._timestamp(component.decoded("DTSTART"))
        end_value = component.decoded("DTEND") if component.get("DTEND") is not None else None
        end = self._timestamp(end_value) if end_value is not None else start
        recurrence = (
            component.decoded("RECURRENCE-ID") if component.get("RECURRENCE-ID") is not None else None
        )
        recurrence_id = self._recurrence_id(
            recurrence if recurrence is not None else component.decoded("DTSTART")
        )
        status = str(component.get("STATUS", "")).upper()
        cancelled = self.cancel_all or status == "CANCELLED"
        private = str(component.get("CLASS", "PUBLIC")).upper() not in ("PUBLIC", "")
        room_id, problem = self._room_of(component)
        occurrence = CalendarOccurrence(
            uid=uid,
            recurrence_id=recurrence_id,
            room_id=room_id,
            start=start,
            end=end,
            title=None if private else _text(component.get("SUMMARY")),
            organizer=_organizer(component.get("ORGANIZER")),
            cancelled=cancelled,
        )
        if problem is not None and not cancelled:
            return occurrence, Skipped(uid, problem, recurrence_id)
        return occurrence, None

    def _room_of(self, event: icalendar.Component) -> tuple[str | None, str | None]:
        """(room id, None), or (None, why no room)."""
        attendees = event.get("ATTENDEE")
        addresses = attendees if isinstance(attendees, list) else [attendees] if attendees else []
        invited = set().union(*(self.directory.by_address(str(a)) for a in addresses)) if addresses else set()
        location = _text(event.get("LOCATION")) or ""
        for found in (invited, self.directory.by_name(location) if location else set()):
            if len(found) > 1:
                return None, f"names several rooms ({', '.join(sorted(found))}): book one room per event"
            if found:
                return self._bookable(next(iter(found)))
        if self.calendar_name:
            found = self.directory.by_name(self.calendar_name)
            if len(found) == 1:
                return self._bookable(next(iter(found)))
        if location:
            return None, f"unknown room: LOCATION {_preview(location)!r} is no room of the site"
        return None, "unknown room: no ATTENDEE, LOCATION or calendar name of the event is a room of the site"

    def _bookable(self, room_id: str) -> tuple[str | None, str | None]:
        if not self.directory.rooms[room_id].bookable:
            return None, f"room {room_id!r} is not bookable"
        return room_id, None

    # Time

    def _timestamp(self, value: date | datetime) -> float:
        if not isinstance(value, datetime):
            value = datetime.combine(value, datetime.min.time())
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=self.tz)
        return value.timestamp()

    def _recurrence_id(self, value: date | datetime) -> str:
        if not isinstance(value, datetime):
            return value.strftime("%Y%m%d")
        return datetime.fromtimestamp(self._timestamp(value), UTC).strftime("%Y%m%dT%H%M%SZ")

    def _over_limit(self) -> str:
        return f"the limit of {self.max:,} occurrences an import was reached: import the rest separately"

    def _over_time(self) -> str:
        return f"the import took longer than {TIME_BUDGET:g} s to expand: import the rest separately"


def _one(rule: icalendar.vRecur, key: str) -> Any:
    values = rule.get(key)
    if isinstance(values, list):
        return values[0] if values else None
    return values


def _per_period(rule: icalendar.vRecur, freq: str) -> int:
    """At most how many instants one period of the rule holds (an upper bound)."""
    if any(rule.get(key) for key in _DAY_FILTERS):
        days = _DAYS_PER_PERIOD.get(freq, 1)
    elif freq == "YEARLY":
        days = len(rule.get("BYMONTH") or [1])
    else:
        days = 1
    times = 1
    finer = {"SECONDLY": (), "MINUTELY": ("BYSECOND",), "HOURLY": ("BYMINUTE", "BYSECOND")}
    for key in finer.get(freq, ("BYHOUR", "BYMINUTE", "BYSECOND")):
        times *= max(1, len(rule.get(key) or []))
    return days * times


def _never_matches(rule: icalendar.vRecur, dtstart: date | datetime) -> str | None:
    """Why the rule would have dateutil walk to the year 9999 (it never matches), or None.

    The rule is tried from DTSTART moved on by whole 400-year cycles (weekdays and
    leap years repeat) to within 400-800 years of the year 9999: a rule that finds
    nothing there finds nothing ever (or once in centuries)."""
    start = dtstart if isinstance(dtstart, datetime) else datetime.combine(dtstart, datetime.min.time())
    start = start.replace(tzinfo=None)
    cycles = max(0, (MAXYEAR - 2 * GREGORIAN_CYCLE_YEARS - start.year) // GREGORIAN_CYCLE_YEARS + 1)
    probe_start = start.replace(year=start.year + GREGORIAN_CYCLE_YEARS * cycles)
    import icalendar
    from dateutil.rrule import rrulestr

    parts = icalendar.vRecur({k: v for k, v in rule.items() if k not in ("COUNT", "UNTIL")})
    text = bytes(parts.to_ical()).decode()  # type: ignore[no-untyped-call]
    try:
        probe = rrulestr(text, dtstart=probe_start)
        first = next(iter(probe), None)
    except (ValueError, TypeError, OverflowError) as exc:
        return f"RRULE cannot be read: {_preview(str(exc), 120)}"
    if first is None:
        return f"RRULE {_preview(text, 120)} never matches a date"
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub(" ", str(value)).strip()
    return text[:MAX_TEXT] or None


def _organizer(value: Any) -> str | None:
    if value is None:
        return None
    address = str(value).strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    if address:
        return _text(address)
    params = getattr(value, "params", {})
    return _text(params.get("CN"))


def _preview(text: str, limit: int = PREVIEW) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
