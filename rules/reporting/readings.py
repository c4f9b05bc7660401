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

A `Step` is (from, to, value): a value (a rate per second, a reading) over [from, to).
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
    following = [ts for ts, _ in readings[1:]]
    following.append(float("inf"))
    for (ts, value), after in zip(readings, following, strict=False):
        until = ts + hold
        if after < until:
            until = after
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
