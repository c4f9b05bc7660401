"""One room's energy per bucket, its cost, and what the rules' commands avoided.

Measured energy, per device of the room:
- a device with at least two energy meter readings (`energy`, kWh, cumulative)
  in reach is measured by its meter (see `readings.meter_steps`);
- any other device by its power readings (`power`, W), each held until the next
  for at most `hold` seconds, integrated over time.
The room's kWh is the sum over its devices; the vacant part is what was used
while the room's state was vacant (unknown is not vacant); the cost is the kWh of
each moment times the tariff's price at that moment.

The baseline is a room whose lights burn at `baseline_w` watts throughout
business hours and never outside them: baseline kWh = W x business hours of the
bucket, its cost priced the same way. Saved = baseline - measured (negative when
the room used more than the baseline, e.g. lights left on at night).

Savings by rule: each OFF command a rule sent (`{"state": "OFF"}`, first attempt)
avoided the device's power at that moment - its last power reading within
`hold`, else its rated watts if its last on/off reading said on, else 0 when
that said off; a device with neither is counted as unmeasured - for as long
as the baseline would have kept it on and nobody turned it on again: from the
command until the earliest of the end of the business hours it was sent in,
the device's next report of being on (on/off or power > 0) and the window's
end. A command outside business hours avoided nothing against the baseline
(the baseline is off then).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rules.reporting.calendar import price_seconds
from rules.reporting.readings import (
    JOULES_PER_KWH,
    Point,
    Step,
    meter_steps,
    per_bucket,
    power_steps,
    priced,
    restrict,
)
from rules.reporting.spans import Span

Prices = Sequence[tuple[float, float, float]]


@dataclass(frozen=True, slots=True)
class DeviceReadings:
    """One device's readings in reach of the window: meter (kWh) and power (W), each
    sorted by time; the meter reaching `hold` past the window on either side, power
    `hold` before it."""

    device: str
    meter: Sequence[Point] = ()
    power: Sequence[Point] = ()


@dataclass(slots=True)
class EnergySums:
    """kWh and money of one room in one bucket."""

    kwh: float = 0.0
    kwh_vacant: float = 0.0
    cost: float = 0.0


def room_energy(
    devices: Sequence[DeviceReadings],
    vacant: Sequence[Span],
    prices: Prices,
    edges: Sequence[float],
    hold: float,
) -> tuple[list[EnergySums], float]:
    """The room's sums per bucket, and the kWh its meters counted in the window
    across gaps longer than `hold` (unattributed)."""
    start, end = edges[0], edges[-1]
    sums = [EnergySums() for _ in range(len(edges) - 1)]
    unattributed = 0.0
    for device in devices:
        steps: list[Step]
        if len(device.meter) >= 2:
            steps, gaps = meter_steps(device.meter, hold)
            unattributed += sum(kwh for at, kwh in gaps if start < at <= end)
        else:
            steps = power_steps(device.power, hold, start, end)
        if not steps:
            continue
        for k, (kwh, waste, cost) in enumerate(
            zip(
                per_bucket(steps, edges),
                per_bucket(restrict(steps, vacant), edges),
                per_bucket(priced(steps, prices), edges),
                strict=True,
            )
        ):
            sums[k].kwh += kwh
            sums[k].kwh_vacant += waste
            sums[k].cost += cost
    return sums, unattributed


def business_seconds(
    business: Sequence[Span], prices: Prices, edges: Sequence[float]
) -> tuple[list[float], list[float]]:
    """Per bucket: business seconds, and business seconds times the price (for the
    baseline's kWh and cost: multiply by W / 3,600,000)."""
    seconds = per_bucket([(s, e, 1.0) for s, e in business], edges)
    money = per_bucket(priced([(s, e, 1.0) for s, e in business], prices), edges)
    return seconds, money


@dataclass(frozen=True, slots=True)
class OffCommand:
    at: float
    device: str
    rule: str


@dataclass(frozen=True, slots=True)
class Avoided:
    command: OffCommand
    watts: float
    seconds: float
    kwh: float
    cost: float


@dataclass(frozen=True, slots=True)
class SwitchReadings:
    """A commanded device's power (W) and on/off (1/0) readings, sorted, from `hold`
    before the window to its end; and its rated watts from the site config."""

    power: Sequence[Point] = ()
    on: Sequence[Point] = ()
    rated_watts: float | None = None


def avoided_by(
    commands: Sequence[OffCommand],
    devices: Mapping[str, SwitchReadings],
    business: Sequence[Span],
    prices: Prices,
    end: float,
    hold: float,
) -> tuple[list[Avoided], int]:
    """What each OFF command avoided against the baseline, and how many commands went
    to devices whose power is not known (counted as avoiding nothing)."""
    avoided: list[Avoided] = []
    unmeasured = 0
    opens = [s for s, _ in business]
    for command in commands:
        t = command.at
        readings = devices.get(command.device, SwitchReadings())
        watts = _draw_before(readings, t, hold)
        if watts is None:
            unmeasured += 1
            continue
        k = bisect_right(opens, t) - 1
        if k < 0 or business[k][1] <= t or watts <= 0:
            avoided.append(Avoided(command, watts, 0.0, 0.0, 0.0))
            continue
        until = min(business[k][1], end, _next_on(readings, t))
        seconds = max(0.0, until - t)
        kwh = watts * seconds / JOULES_PER_KWH
        cost = watts * price_seconds(prices, [(t, t + seconds)]) / JOULES_PER_KWH if seconds else 0.0
        avoided.append(Avoided(command, watts, seconds, kwh, cost))
    return avoided, unmeasured


def _last_before(points: Sequence[Point], t: float, hold: float) -> float | None:
    """The value of the last reading at or before `t`, if within `hold` of it."""
    i = bisect_right(points, (t, float("inf"))) - 1
    if i < 0 or t - points[i][0] > hold:
        return None
    return points[i][1]


def _draw_before(readings: SwitchReadings, t: float, hold: float) -> float | None:
    # Readings at the command's very time are the device's answer to it: look before.
    before = t - 1e-6
    watts = _last_before(readings.power, before, hold)
    if watts is not None:
        return watts
    on = _last_before(readings.on, before, hold)
    if on is None:
        return None
    if not on:
        return 0.0
    return readings.rated_watts


def _next_on(readings: SwitchReadings, t: float) -> float:
    found = float("inf")
    for points in (readings.power, readings.on):
        for ts, value in points[bisect_left(points, (t, float("inf"))) :]:
            if ts > t and value > 0:
                found = min(found, ts)
                break
    return found
