"""A calendar import applied to the bookings: what `reconcile` decides for each
occurrence of an `ImportPlan`, against an index of the bookings that hold rooms.

Order: first the bookings the calendar no longer has (an imported occurrence of a
complete series, in the window, not started yet, whose key is not in the file) and
the occurrences it cancels; then changes and new bookings, by start. So a meeting
moved within its series frees its old slot before it takes the new one. Each
booking is checked as a POST would be (window, clash with what is booked, the
planned bookings of this import included); one that cannot be booked is skipped
with its reason, and the rest of the import goes on.

Nothing is written here: `Bookings.sync` writes `new` and `changed` in one
transaction and only then publishes the index `reconcile` worked on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.bookings.calendar_import import CalendarOccurrence, ImportPlan, Skipped
from gateway.bookings.index import BookingIndex
from rules.bookings import Booking, BookingStatus, Transition, apply, rebooked, window_problem


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.cancelled)


@dataclass
class SyncWrites:
    new: list[Booking] = field(default_factory=list)
    changed: dict[str, Booking] = field(default_factory=dict)


def reconcile(
    plan: ImportPlan,
    index: BookingIndex,
    stored: Callable[[Sequence[str]], dict[str, Booking]],
    now: float,
    *,
    actor: str,
    visible: Callable[[str], bool],
    max_duration: float,
    new_id: Callable[[], str],
) -> tuple[SyncReport, SyncWrites]:
    """The report and the writes the plan calls for; `index` is changed to match (a
    copy the caller publishes once the writes are stored). `stored` looks bookings
    up by external id (those no longer holding a room are not in the index)."""
    report = SyncReport(skipped=list(plan.skipped))
    writes = SyncWrites()
    present = {occurrence.external_id: occurrence for occurrence in plan.occurrences}
    existing = {b.external_id: b for b in index.all() if b.external_id in present and b.external_id}
    existing.update(stored([key for key in present if key not in existing]))

    def cancel(booking: Booking) -> None:
        cancelled = apply(booking, Transition(BookingStatus.CANCELLED, now, "cancelled in the calendar"))
        index.put(cancelled)
        writes.changed[cancelled.id] = cancelled
        report.cancelled += 1

    for booking in list(index.all()):
        series = booking.series_id
        if (
            series in plan.complete
            and booking.external_id is not None
            and booking.external_id.startswith(f"{series}/")
            and booking.external_id not in present
            and now < booking.start < plan.end
            and visible(booking.room_id)
        ):
            cancel(booking)
    upserts: list[CalendarOccurrence] = []
    for occurrence in plan.occurrences:
        if not occurrence.cancelled:
            upserts.append(occurrence)
            continue
        found = existing.get(occurrence.external_id)
        if found is not None and found.active and found.start > now and visible(found.room_id):
            cancel(index.get(found.id) or found)
    for occurrence in sorted(upserts, key=lambda o: (o.start, o.external_id)):
        reason = _upsert(occurrence, existing.get(occurrence.external_id), index, writes, report, now, actor,
                         visible, max_duration, new_id)  # fmt: skip
        if reason is not None:
            report.skipped.append(Skipped(occurrence.uid, reason, occurrence.recurrence_id))
    return report, writes


def _upsert(
    o: CalendarOccurrence,
    found: Booking | None,
    index: BookingIndex,
    writes: SyncWrites,
    report: SyncReport,
    now: float,
    actor: str,
    visible: Callable[[str], bool],
    max_duration: float,
    new_id: Callable[[], str],
) -> str | None:
    """Books or updates one occurrence; why not, when it cannot."""
    assert o.room_id is not None
    if found is not None:
        if not visible(found.room_id):
            return "its external id is taken by a booking this key cannot see"
        found = index.get(found.id) or found
        if (found.room_id, found.start, found.end, found.title, found.organizer, found.series_id) == (
            o.room_id, o.start, o.end, o.title, o.organizer, o.uid,
        ):  # fmt: skip
            report.unchanged += 1
            return None
        if not found.active:
            return f"booking {found.id!r} is {found.status.value} and can no longer change"
    problem = window_problem(o.start, o.end, max_duration)
    if problem is not None:
        return problem
    if o.end <= now:
        return "over already"
    clash = index.clash(o.room_id, o.start, o.end, found.id if found is not None else None)
    if clash is not None:
        return f"overlaps booking {clash.id!r} of room {o.room_id!r}"
    if found is not None:
        changed = rebooked(
            found,
            room_id=o.room_id,
            start=o.start,
            end=o.end,
            title=o.title,
            organizer=o.organizer,
            series_id=o.uid,
            now=now,
        )
        index.put(changed)
        writes.changed[changed.id] = changed
        report.updated += 1
        return None
    booking = Booking(
        id=new_id(),
        room_id=o.room_id,
        start=o.start,
        end=o.end,
        title=o.title,
        organizer=o.organizer,
        external_id=o.external_id,
        series_id=o.uid,
        created_at=now,
        updated_at=now,
        created_by=actor,
    )
    index.put(booking)
    writes.new.append(booking)
    report.created += 1
    return None
