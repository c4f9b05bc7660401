"""Device physics: what the air, the daylight and the lights do between two events.

Pure functions of the state, the time that passed and the scenario's constants;
the world calls them with simulated time. Each is a first-order model a facilities
engineer would recognise, not a fit to any one building:

- CO2: a well-mixed room with people breathing out and ventilation exchanging
  air (`dC/dt = n·G/V - k·(C - C_out)`, solved exactly between events);
- temperature: a lag toward the HVAC setpoint (or the building's free-running
  temperature) plus body heat; humidity likewise;
- daylight: a sine between sunrise and sunset under a cloud cover that changes
  hour by hour (an overcast sky lets a fifth through);
- lights: power in proportion to brightness (LED drivers), illuminance likewise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.simulate.schema import Co2Physics, DaylightPhysics

FREE_RUNNING_C = 18.5  # a building with the HVAC off, in winter
HEAT_PER_PERSON_C = 0.12  # room temperature a person adds at steady state
TEMPERATURE_LAG_S = 2400.0
HUMIDITY_BASE = 35.0
HUMIDITY_PER_PERSON = 1.2


def co2_after(ppm: float, people: int, seconds: float, volume_m3: float, p: Co2Physics) -> float:
    """CO2 (ppm) after `seconds` with `people` in a room of `volume_m3`."""
    if seconds <= 0:
        return ppm
    k = p.air_changes / 3600.0  # 1/s
    generation = people * p.per_person / 1000.0  # m3/s
    steady = p.outdoor + generation / (volume_m3 * k) * 1e6
    return steady + (ppm - steady) * math.exp(-k * seconds)


def lag(value: float, target: float, seconds: float, tau: float) -> float:
    if seconds <= 0:
        return value
    return target + (value - target) * math.exp(-seconds / tau)


def temperature_target(setpoint: float | None, people: int) -> float:
    base = FREE_RUNNING_C if setpoint is None else setpoint
    return base + HEAT_PER_PERSON_C * people


def humidity_target(people: int, capacity: int) -> float:
    return HUMIDITY_BASE + HUMIDITY_PER_PERSON * people * 10 / max(capacity, 1)


@dataclass(frozen=True, slots=True)
class Sky:
    """One day's cloud cover, hour by hour (0 clear .. 1 overcast), drawn once per day."""

    cover: tuple[float, ...]  # 25 values: the hours 0..24

    @classmethod
    def draw(cls, rng: random.Random, cloudiness: float) -> Sky:
        # A slow walk around the day's mean: weather changes over hours, not minutes.
        mean = min(1.0, max(0.0, rng.gauss(cloudiness, 0.2)))
        cover, value = [], mean
        for _ in range(25):
            value = min(1.0, max(0.0, value + rng.gauss(0.0, 0.12) + (mean - value) * 0.3))
            cover.append(round(value, 3))
        return cls(tuple(cover))

    def at(self, hour: float) -> float:
        low = int(hour) % 24
        frac = hour - int(hour)
        return self.cover[low] * (1 - frac) + self.cover[low + 1] * frac


def daylight_lux(seconds_of_day: float, sky: Sky, windows: float, p: DaylightPhysics) -> float:
    """Daylight at the desk of a room with `windows` (0..1) at this local time."""
    if windows <= 0 or not p.sunrise < seconds_of_day < p.sunset:
        return 0.0
    elevation = math.sin(math.pi * (seconds_of_day - p.sunrise) / (p.sunset - p.sunrise))
    through = 1.0 - 0.8 * sky.at(seconds_of_day / 3600.0)
    return p.peak_lux * windows * elevation * through


def light_watts(rated: float, on: bool, brightness: int) -> float:
    return rated * brightness / 254 if on else 0.0
