"""Small statistics the reports share."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between the closest ranks
    (numpy's default, spreadsheets' PERCENTILE.INC); None for no values.

    p50 of [1, 2, 3, 4] is 2.5; p95 of [100, 200, 300] is 290.
    """
    if not values:
        return None
    return _ranked(sorted(values), q)


def percentiles(values: Sequence[float], *qs: float) -> tuple[float | None, ...]:
    """Several percentiles of the same values, sorting them once."""
    if not values:
        return tuple(None for _ in qs)
    ordered = sorted(values)
    return tuple(_ranked(ordered, q) for q in qs)


def _ranked(ordered: Sequence[float], q: float) -> float:
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
