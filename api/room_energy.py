"""How long a room's energy figures, as documents show them, stay what they are.

`kwh_today` counts a lit room's draw up to the moment asked (`EnergyToday.at`), and
documents show it rounded (`EnergyOut.DIGITS`). Kept room documents
(`api.room_documents`) put the figures in at the moment of each request, and keep
them for as long as their rounding cannot change: the window worked out here.
"""

from __future__ import annotations

import math

from api.schemas import EnergyOut
from rules.room_model import EnergyToday

# A rounding step of the figures (kWh): 1 Wh / 1000.
ENERGY_STEP = 10.0**-EnergyOut.DIGITS
# Closer than this (kWh) to a rounding step, a figure is not kept at all: float
# arithmetic could put it on either side.
NEAR_STEP = 1e-9
# Past this (kWh), steps of ENERGY_STEP are below a float's resolution: never kept.
LARGEST_KEPT_KWH = 1e6


def energy_holds(today: EnergyToday, now: float) -> tuple[float, float]:
    """[since, until) around `now` over which the rounded figures of `today.at(t)`
    stay those at `now`.

    A dark room's figures change only when its day's span ends. A lit room's grow by
    its draw, `power / 3.6e6` kWh a second, so they keep their rounding until the
    next rounding step, less a margin for float arithmetic; close to a step (or with a
    draw that is not a plain positive number) they are not kept."""
    if today.power_w == 0.0:
        return today.since, today.until
    if not (today.power_w > 0.0 and math.isfinite(today.power_w)) or now < today.since:
        return now, now
    rate = today.power_w / 3_600_000
    kwh, wasted = today.at(now)
    until = min(today.until, now + _steady_for(kwh, rate))
    if today.wasting:
        until = min(until, now + _steady_for(wasted, rate))
    return now, until


def _steady_for(value: float, rate: float) -> float:
    """Seconds over which `round(value + rate * t, DIGITS)` surely stays `round(value,
    DIGITS)`: up to the next rounding step, less NEAR_STEP; none near a step."""
    if not (0.0 <= value < LARGEST_KEPT_KWH):
        return 0.0
    scaled = value / ENERGY_STEP + 0.5
    above = scaled - math.floor(scaled)  # in steps, from the step below
    if min(above, 1.0 - above) * ENERGY_STEP < 2 * NEAR_STEP:
        return 0.0
    return ((1.0 - above) * ENERGY_STEP - NEAR_STEP) / rate
