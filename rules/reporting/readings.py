"""How long a reading counts, and readings as rates over time.

A reading (temperature, CO2, power, a people count) tells the value from its
time until the next reading of the same series, for at most `hold` seconds: a
sensor that has said nothing for longer is not known to measure anything. The
readings of a series come sorted by time; at one time, the last one given wins.

An energy meter's readings are a counter: what it counted between two readings
is spread evenly over the time between them. Between readings more than `hold`
apart it is not known when the energy was used: that part is returned apart
(`unattributed`), never silently dropped nor put at a guessed time. A counter
that goes down was reset (a replaced or restarted meter): what it counts from
then is its new reading.

A `Step` is (from, to, rate): a constant rate per second over [from, to).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from rules.reporting.spans import Span

Step = tuple[float, float, float]
Point = tuple[float, float]  # (ts, value)

JOULES_PER_KWH = 3_600_000.0


def held(readings: Sequence[Point], hold: float, start: float, end: float) -> list[Step]:
    """(from, to, value) of each reading's time within [start, end)."""
    steps: list[Step] = []
    n = len(readings)
    for i in range(n):
        ts, value = readings[i]
        until = ts + hold
        if i + 1 < n and readings[i + 1][0] < until:
            until = readings[i + 1][0]
        s = ts if ts > start else start
        e = until if until < end else end
        if s < e:
            steps.append((s, e, value))
    return steps


def band_spans(
    readings: Sequence[Point], hold: float, start: float, end: float, low: float | None, high: float | None
) -> tuple[list[Span], list[Span]]:
    """(known, inside): the spans within [start, end) when a reading is held, and those
    when it lies in [low, high] (None: no bound); neighbouring spans joined."""
    known: list[Span] = []
    inside: list[Span] = []
    for s, e, value in held(readings, hold, start, end):
        if known and known[-1][1] == s:
            known[-1] = (known[-1][0], e)
        else:
            known.append((s, e))
        if (low is None or value >= low) and (high is None or value <= high):
            if inside and inside[-1][1] == s:
                inside[-1] = (inside[-1][0], e)
            else:
                inside.append((s, e))
    return known, inside


def power_steps(readings: Sequence[Point], hold: float, start: float, end: float) -> list[Step]:
    """Power readings (W) as kWh per second."""
    return [(s, e, watts / JOULES_PER_KWH) for s, e, watts in held(readings, hold, start, end) if watts]


def meter_steps(readings: Sequence[Point], hold: float) -> tuple[list[Step], list[tuple[float, float]]]:
    """A cumulative meter's readings (kWh) as kWh per second between readings, and the
    (time, kWh) counted across gaps longer than `hold` (unattributed)."""
    steps: list[Step] = []
    unattributed: list[tuple[float, float]] = []
    for (t0, v0), (t1, v1) in pairwise(readings):
        if t1 <= t0:
            continue
        used = v1 - v0 if v1 >= v0 else v1
        if used <= 0:
            continue
        if t1 - t0 > hold:
            unattributed.append((t1, used))
        else:
            steps.append((t0, t1, used / (t1 - t0)))
    return steps, unattributed


def per_bucket(steps: Sequence[Step], edges: Sequence[float]) -> list[float]:
    """The integral of the steps (sorted by start; they may overlap) in each bucket
    [edges[k], edges[k + 1]); parts outside [edges[0], edges[-1]) are left out."""
    sums = [0.0] * (len(edges) - 1)
    first, last = edges[0], edges[-1]
    k = 0
    for s, e, rate in steps:
        if s < first:
            s = first
        if e > last:
            e = last
        if s >= e:
            continue
        while edges[k + 1] <= s:
            k += 1
        b = k
        while True:
            stop = edges[b + 1]
            if stop >= e:
                sums[b] += (e - s) * rate
                break
            sums[b] += (stop - s) * rate
            s = stop
            b += 1
    return sums


def restrict(steps: Sequence[Step], spans: Sequence[Span]) -> list[Step]:
    """The parts of the steps (sorted, disjoint) within the spans (sorted, disjoint)."""
    found: list[Step] = []
    i = j = 0
    while i < len(steps) and j < len(spans):
        s0, e0, rate = steps[i]
        s1, e1 = spans[j]
        s = s0 if s0 > s1 else s1
        e = e0 if e0 < e1 else e1
        if s < e:
            found.append((s, e, rate))
        if e0 <= e1:
            i += 1
        else:
            j += 1
    return found


def priced(steps: Sequence[Step], prices: Sequence[tuple[float, float, float]]) -> list[Step]:
    """The steps (sorted, disjoint) times the price in force (prices cover the window
    without gaps): kWh per second becomes money per second."""
    found: list[Step] = []
    i = j = 0
    while i < len(steps) and j < len(prices):
        s0, e0, rate = steps[i]
        s1, e1, price = prices[j]
        s = s0 if s0 > s1 else s1
        e = e0 if e0 < e1 else e1
        if s < e:
            found.append((s, e, rate * price))
        if e0 <= e1:
            i += 1
        else:
            j += 1
    return found
