"""One room's comfort per bucket: of its occupied time, how much had a temperature and a
CO2 level known, and how much of that inside the bands.

The room's value at a moment is its last reading from any of its sensors (as the
live room status shows it), held as `readings` says. Only occupied time counts:
an empty room may be as warm or stuffy as it likes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.reporting.readings import Point, band_spans
from rules.reporting.spans import Span, intersect, per_bucket


@dataclass(frozen=True, slots=True)
class Band:
    """[low, high], inclusive; None: no bound on that side."""

    low: float | None
    high: float | None


@dataclass(slots=True)
class ComfortSums:
    """Seconds of one room in one bucket."""

    occupied: float = 0.0
    temperature_known: float = 0.0
    temperature_inside: float = 0.0
    co2_known: float = 0.0
    co2_inside: float = 0.0


def room_comfort(
    occupied: Sequence[Span],
    temperature: Sequence[Point],
    co2: Sequence[Point],
    edges: Sequence[float],
    hold: float,
    temperature_band: Band,
    co2_band: Band,
) -> list[ComfortSums]:
    start, end = edges[0], edges[-1]
    columns = [per_bucket(occupied, edges)]
    for readings, band in ((temperature, temperature_band), (co2, co2_band)):
        known, inside = band_spans(readings, hold, start, end, band.low, band.high)
        columns.append(per_bucket(intersect(known, occupied), edges))
        columns.append(per_bucket(intersect(inside, occupied), edges))
    return [ComfortSums(*values) for values in zip(*columns, strict=True)]
