"""Business hours and energy tariffs: weekly wall-clock windows of the site, as spans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, tzinfo

from rules.reporting.spans import Span
from rules.site_time import daily_spans

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """From `opens` to `closes` local time on `weekdays` (Monday = 0); closing at or
    before the opening time runs over midnight (the weekday is the opening day's)."""

    opens: time
    closes: time
    weekdays: frozenset[int]

    def spans(self, start: float, end: float, zone: tzinfo) -> list[Span]:
        return daily_spans(start, end, zone, self.opens, self.closes, self.weekdays)

    def describe(self) -> dict[str, object]:
        return {
            "start": self.opens.isoformat("minutes"),
            "end": self.closes.isoformat("minutes"),
            "weekdays": [WEEKDAY_NAMES[d] for d in sorted(self.weekdays)],
        }


@dataclass(frozen=True, slots=True)
class TariffBand:
    window: DailyWindow
    price: float  # per kWh


@dataclass(frozen=True, slots=True)
class Tariff:
    """A price per kWh: `price` outside every band (a flat tariff has no bands)."""

    currency: str
    price: float
    bands: tuple[TariffBand, ...] = ()

    def prices(self, start: float, end: float, zone: tzinfo) -> list[tuple[float, float, float]]:
        """(start, end, price) covering [start, end) without gaps, in order. Bands do
        not overlap (the config refuses it); if they did, the earlier one would keep
        the overlap."""
        banded = sorted(
            (s, e, band.price) for band in self.bands for s, e in band.window.spans(start, end, zone)
        )
        out: list[tuple[float, float, float]] = []
        at = start
        for s, e, price in banded:
            s = max(s, at)
            if s >= e:
                continue
            if s > at:
                out.append((at, s, self.price))
            out.append((s, e, price))
            at = e
        if at < end:
            out.append((at, end, self.price))
        return out

    def describe(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "price_per_kwh": self.price,
            "bands": [{**band.window.describe(), "price_per_kwh": band.price} for band in self.bands],
        }
