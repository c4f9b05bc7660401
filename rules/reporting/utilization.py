"""One room's use per bucket: occupied, business and booked time, bookings, peak people.

- occupied: the room's state was occupied (occupancy changes, see `occupancy`);
- business: the site's business hours, the same for every room;
- booked: the scheduled time of the room's bookings that were not cancelled,
  whatever became of them (a no-show's time is booked and, unless someone came
  anyway, unused); booked-and-used is the occupied part of it;
- bookings and no-shows count in the bucket a booking starts in (no-shows are
  bookings released for want of anyone checking in);
- peak: the highest people count held in the bucket (a count held from before
  the bucket counts: the people were still there), None without any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.reporting.readings import Point, held
from rules.reporting.spans import Span, bucket_of, clip, intersect, per_bucket, union


@dataclass(frozen=True, slots=True)
class Booked:
    start: float
    end: float
    no_show: bool


@dataclass(slots=True)
class UseSums:
    """Seconds (and counts) of one room in one bucket."""

    occupied: float = 0.0
    business: float = 0.0
    occupied_business: float = 0.0
    booked: float = 0.0
    booked_used: float = 0.0
    bookings: int = 0
    no_shows: int = 0
    peak_people: float | None = None


def room_use(
    occupied: Sequence[Span],
    business: Sequence[Span],
    bookings: Sequence[Booked],
    people: Sequence[Point],
    edges: Sequence[float],
    hold: float,
) -> list[UseSums]:
    start, end = edges[0], edges[-1]
    booked = clip(union((b.start, b.end) for b in bookings), start, end)
    columns = (
        per_bucket(occupied, edges),
        per_bucket(business, edges),
        per_bucket(intersect(occupied, business), edges),
        per_bucket(booked, edges),
        per_bucket(intersect(occupied, booked), edges),
    )
    sums = [UseSums(*values) for values in zip(*columns, strict=True)]
    for booking in bookings:
        k = bucket_of(booking.start, edges)
        if k is not None:
            sums[k].bookings += 1
            sums[k].no_shows += booking.no_show
    for k, peak in enumerate(peaks(people, edges, hold)):
        sums[k].peak_people = peak
    return sums


def peaks(readings: Sequence[Point], edges: Sequence[float], hold: float) -> list[float | None]:
    """The highest value held in each bucket."""
    found: list[float | None] = [None] * (len(edges) - 1)
    k = 0
    for s, e, value in held(readings, hold, edges[0], edges[-1]):
        while edges[k + 1] <= s:
            k += 1
        b = k
        while b < len(found) and edges[b] < e:
            current = found[b]
            if current is None or value > current:
                found[b] = value
            b += 1
    return found
