"""Time as lists of [start, end) spans (epoch seconds): sorted, disjoint, non-empty.

The figures of every report are durations (occupied, in band, booked) or
integrals over time (kWh), cut at bucket edges: these are the few operations they
need, each one linear merge over sorted inputs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

Span = tuple[float, float]


def clip(spans: Iterable[Span], start: float, end: float) -> list[Span]:
    clipped = []
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s < e:
            clipped.append((s, e))
    return clipped


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted and disjoint, overlapping or touching spans joined (in any order)."""
    joined: list[Span] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if joined and s <= joined[-1][1]:
            if e > joined[-1][1]:
                joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    return joined


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The times in both (each sorted and disjoint)."""
    found: list[Span] = []
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        s0, e0 = a[i]
        s1, e1 = b[j]
        s = s0 if s0 > s1 else s1
        e = e0 if e0 < e1 else e1
        if s < e:
            found.append((s, e))
        if e0 <= e1:
            i += 1
        else:
            j += 1
    return found


def total(spans: Iterable[Span]) -> float:
    return sum(e - s for s, e in spans)


def per_bucket(spans: Sequence[Span], edges: Sequence[float]) -> list[float]:
    """Seconds of `spans` in each bucket [edges[k], edges[k + 1]) (nothing outside them)."""
    seconds = [0.0] * (len(edges) - 1)
    first, last = edges[0], edges[-1]
    k = 0
    for s, e in spans:
        if s < first:
            s = first
        if e > last:
            e = last
        if s >= e:
            continue
        # Buckets only move forward: the spans are sorted.
        while edges[k + 1] <= s:
            k += 1
        b = k
        while True:
            stop = min(e, edges[b + 1])
            seconds[b] += stop - s
            if stop >= e:
                break
            s = stop
            b += 1
    return seconds


def bucket_of(ts: float, edges: Sequence[float]) -> int | None:
    """The bucket [edges[k], edges[k + 1]) holding `ts`, None outside the window."""
    if ts < edges[0] or ts >= edges[-1]:
        return None
    return bisect_right(edges, ts) - 1
