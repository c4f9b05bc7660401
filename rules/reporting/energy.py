"""One room's energy per bucket, its cost, and what the rules' commands avoided.

Measured energy, per device of the room:
- a device with at least two energy meter readings (`energy`, kWh, cumulative)
  in reach is measured by its meter (see `readings.meter_steps`);
- any other device by its power readings (`power`, W), each held until the
  device's next reading for at most `hold` seconds, integrated over time. Only
  readings above 0 W add anything: they come as `PowerStart`s, each with the time
  of the device's next reading (the store finds it by its key, so the many 0 W
  readings of lights that are off are never read).
The room's kWh is the sum over its devices; the vacant part is what was used
while the room's state was vacant (unknown is not vacant); the cost is the kWh of
each moment times the tariff's price at that moment.

The baseline is a room whose lights burn at `baseline_w` watts throughout
business hours and never outside them: baseline kWh = W x business hours of the
bucket, its cost priced the same way. Saved = baseline - measured (negative when
the room used more than the baseline, e.g. lights left on at night).

Savings by rule: each OFF command a rule sent (`{"state": "OFF"}`, first attempt)
avoided the device's draw at that moment - the power reading in force (held as
above); 0 W when a later reading had ended it within `hold`; else its rated
watts if its last on/off reading within `hold` said on, 0 W if it said off; a
device with none of these is counted as unmeasured - for as long as the
baseline would have kept it on and nobody turned it on again: from the command
until the earliest of the end of the business hours it was sent in, the
device's next report of being on (power above 0 or on/off on) and the window's
end. A command outside business hours avoided nothing against the baseline
(the baseline is off then).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rules.reporting.readings import JOULES_PER_KWH, Point, Step, meter_steps
from rules.reporting.spans import Span

Prices = Sequence[tuple[float, float, float]]
# A power reading above 0 W: (ts, watts, ts of the device's next reading if it came
# within `hold`, else None).
PowerStart = tuple[float, float, float | None]


def power_starts(readings: Sequence[Point], hold: float) -> list[PowerStart]:
    """A device's power readings (sorted) as `PowerStart`s: what the store hands over."""
    found: list[PowerStart] = []
    for i, (ts, watts) in enumerate(readings):
        if watts > 0:
            after = readings[i + 1][0] if i + 1 < len(readings) else None
            found.append((ts, watts, after if after is not None and after < ts + hold else None))
    return found


def power_steps(starts: Sequence[PowerStart], hold: float, start: float, end: float) -> list[Step]:
    """kWh per second while each reading was in force, within [start, end)."""
    steps: list[Step] = []
    for ts, watts, after in starts:
        until = ts + hold if after is None else after
        s = ts if ts > start else start
        e = until if until < end else end
        if s < e:
            steps.append((s, e, watts / JOULES_PER_KWH))
    return steps


@dataclass(frozen=True, slots=True)
class DeviceReadings:
    """One device's readings in reach of the window: meter (kWh, sorted, reaching
    `hold` past the window on either side) and power (from `hold` before it)."""

    device: str
    meter: Sequence[Point] = ()
    power: Sequence[PowerStart] = ()


@dataclass(frozen=True, slots=True)
class SiteSlices:
    """The window cut wherever a bucket or the price changes: the same for every room."""

    starts: list[float]
    ends: list[float]
    buckets: list[int]
    prices: list[float]

    @classmethod
    def of(cls, edges: Sequence[float], prices: Prices) -> SiteSlices:
        starts: list[float] = []
        ends: list[float] = []
        buckets: list[int] = []
        money: list[float] = []
        b = p = 0
        at = edges[0]
        while at < edges[-1]:
            while edges[b + 1] <= at:
                b += 1
            while prices[p][1] <= at:
                p += 1
            stop = min(edges[b + 1], prices[p][1])
            starts.append(at)
            ends.append(stop)
            buckets.append(b)
            money.append(prices[p][2])
            at = stop
        return cls(starts, ends, buckets, money)


@dataclass(slots=True)
class EnergySums:
    """kWh and money of one room in one bucket."""

    kwh: float = 0.0
    kwh_vacant: float = 0.0
    cost: float = 0.0


def room_energy(
    devices: Sequence[DeviceReadings],
    vacant: Sequence[Span],
    site: SiteSlices,
    edges: Sequence[float],
    hold: float,
) -> tuple[list[EnergySums], float]:
    """The room's sums per bucket (`edges`, the site's buckets), and the kWh its meters
    counted in the window across gaps longer than `hold` (unattributed)."""
    start, end = edges[0], edges[-1]
    n = len(edges) - 1
    kwh, cost, waste = [0.0] * n, [0.0] * n, [0.0] * n
    unattributed = 0.0
    for device in devices:
        steps: list[Step]
        if len(device.meter) >= 2:
            steps, gaps = meter_steps(device.meter, hold)
            unattributed += sum(used for at, used in gaps if start < at <= end)
        else:
            steps = power_steps(device.power, hold, start, end)
        if steps:
            _integrate(steps, site, kwh, cost)
            if vacant:
                _integrate_within(steps, vacant, edges, waste)
    return [EnergySums(*values) for values in zip(kwh, waste, cost, strict=True)], unattributed


def _integrate(steps: Sequence[Step], site: SiteSlices, kwh: list[float], cost: list[float]) -> None:
    """Adds the steps (sorted) to each bucket's kWh and cost, slice by slice of the site."""
    ends, buckets, prices = site.ends, site.buckets, site.prices
    start, end = site.starts[0], ends[-1]
    i = 0
    for s, e, rate in steps:
        if s < start:
            s = start
        if e > end:
            e = end
        if s >= e:
            continue
        while ends[i] <= s:
            i += 1
        j = i
        while True:
            stop = ends[j]
            if stop >= e:
                amount = (e - s) * rate
                kwh[buckets[j]] += amount
                cost[buckets[j]] += amount * prices[j]
                break
            amount = (stop - s) * rate
            kwh[buckets[j]] += amount
            cost[buckets[j]] += amount * prices[j]
            s = stop
            j += 1


def _integrate_within(
    steps: Sequence[Step], spans: Sequence[Span], edges: Sequence[float], sums: list[float]
) -> None:
    """Adds the parts of the steps (sorted, disjoint) within the spans (sorted, disjoint)
    to each bucket's sum."""
    i = j = k = 0
    n_steps, n_spans = len(steps), len(spans)
    while i < n_steps and j < n_spans:
        s0, e0, rate = steps[i]
        s1, e1 = spans[j]
        s = s0 if s0 > s1 else s1
        e = e0 if e0 < e1 else e1
        if s < e:
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
        if e0 <= e1:
            i += 1
        else:
            j += 1


def business_seconds(
    business: Sequence[Span], site: SiteSlices, buckets: int
) -> tuple[list[float], list[float]]:
    """Per bucket: business seconds, and business seconds times the price (for the
    baseline's kWh and cost: multiply by W / 3,600,000)."""
    seconds = [0.0] * buckets
    money = [0.0] * buckets
    i = 0
    for s, e in business:
        while site.ends[i] <= s:
            i += 1
        j = i
        while j < len(site.starts) and site.starts[j] < e:
            overlap = min(e, site.ends[j]) - max(s, site.starts[j])
            if overlap > 0:
                seconds[site.buckets[j]] += overlap
                money[site.buckets[j]] += overlap * site.prices[j]
            j += 1
    return seconds, money


# (NamedTuples: a campus month has hundreds of thousands of commands.)
class OffCommand(NamedTuple):
    at: float
    device: str
    rule: str


class Avoided(NamedTuple):
    command: OffCommand
    watts: float
    seconds: float
    kwh: float
    cost: float


@dataclass(frozen=True, slots=True)
class SwitchReadings:
    """A commanded device's power (as `PowerStart`s) and on/off (1/0) readings, sorted,
    from `hold` before the window to its end; and its rated watts from the site config."""

    power: Sequence[PowerStart] = ()
    on: Sequence[Point] = ()
    rated_watts: float | None = None


def avoided_by(
    commands: Sequence[OffCommand],
    devices: Mapping[str, SwitchReadings],
    business: Sequence[Span],
    site: SiteSlices,
    end: float,
    hold: float,
) -> tuple[list[Avoided], int]:
    """What each OFF command avoided against the baseline, and how many commands went
    to devices whose draw is not known (counted as avoiding nothing)."""
    avoided: list[Avoided] = []
    unmeasured = 0
    opens = [s for s, _ in business]
    timed: dict[str, _Timed] = {}
    for command in commands:
        t = command.at
        device = timed.get(command.device)
        if device is None:
            device = timed[command.device] = _Timed(devices.get(command.device, SwitchReadings()))
        watts = device.draw_before(t, hold)
        if watts is None:
            unmeasured += 1
            continue
        k = bisect_right(opens, t) - 1
        if k < 0 or business[k][1] <= t or watts <= 0:
            avoided.append(Avoided(command, watts, 0.0, 0.0, 0.0))
            continue
        until = min(business[k][1], end, device.next_on(t))
        seconds = until - t if until > t else 0.0
        kwh = watts * seconds / JOULES_PER_KWH
        cost = watts * _price_seconds(site, t, t + seconds) / JOULES_PER_KWH
        avoided.append(Avoided(command, watts, seconds, kwh, cost))
    return avoided, unmeasured


class _Timed:
    """A device's readings with their times apart, for bisecting."""

    def __init__(self, readings: SwitchReadings) -> None:
        self.readings = readings
        self.power_times = [ts for ts, _, _ in readings.power]
        self.on_times = [ts for ts, _ in readings.on]

    def draw_before(self, t: float, hold: float) -> float | None:
        """The draw just before `t` (readings at `t` itself answer the command)."""
        power = self.readings.power
        k = bisect_left(self.power_times, t) - 1
        if k >= 0:
            ts, watts, after = power[k]
            until = ts + hold if after is None else after
            if until >= t:
                return watts
            if after is not None and t - after <= hold:
                return 0.0  # a 0 W reading ended it, and is still in force
        on = self.readings.on
        k = bisect_left(self.on_times, t) - 1
        if k >= 0 and t - on[k][0] <= hold:
            return self.readings.rated_watts if on[k][1] else 0.0
        return None

    def next_on(self, t: float) -> float:
        found = float("inf")
        k = bisect_right(self.power_times, t)
        if k < len(self.power_times):
            found = self.power_times[k]
        on = self.readings.on
        k = bisect_right(self.on_times, t)
        while k < len(on) and on[k][0] < found:
            if on[k][1] > 0:
                return on[k][0]
            k += 1
        return found


def _price_seconds(site: SiteSlices, s: float, e: float) -> float:
    """The price integrated over [s, e) (price x seconds)."""
    acc = 0.0
    j = max(0, bisect_right(site.starts, s) - 1)
    while j < len(site.starts) and site.starts[j] < e:
        overlap = min(e, site.ends[j]) - max(s, site.starts[j])
        if overlap > 0:
            acc += overlap * site.prices[j]
        j += 1
    return acc
