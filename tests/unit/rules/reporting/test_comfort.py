"""One room's comfort, figures computed by hand: 3 occupied hours, readings held for at most an hour."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rules.reporting.comfort import Band, ComfortSums, room_comfort
from rules.reporting.readings import band_spans
from rules.site_time import bucket_edges

BERLIN = ZoneInfo("Europe/Berlin")
M = 60.0


def at(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).timestamp()


OCCUPIED = [
    (at("2024-03-05T09:00"), at("2024-03-05T11:00")),
    (at("2024-03-05T14:00"), at("2024-03-05T15:00")),
]
TEMPERATURE = [
    (at("2024-03-05T08:30"), 21.0),  # in, until the next reading: 09:00-09:30 counts
    (at("2024-03-05T09:30"), 27.0),  # out: 30 min
    (at("2024-03-05T10:00"), 22.0),  # in: held an hour, 10:00-11:00
    (at("2024-03-05T14:30"), 19.0),  # out: 14:30-15:00; 14:00-14:30 nothing is known
]
CO2 = [
    (at("2024-03-05T09:00"), 900.0),  # in: 09:00-10:00 (held an hour)
    (at("2024-03-05T10:30"), 1_200.0),  # out: 10:30-11:00
    (at("2024-03-05T14:00"), 700.0),  # in: 14:00-15:00
]


def test_a_day_of_comfort() -> None:
    edges = bucket_edges(at("2024-03-05T00:00"), at("2024-03-06T00:00"), "day", BERLIN)
    (day,) = room_comfort(OCCUPIED, TEMPERATURE, CO2, edges, 3_600, Band(20, 26), Band(None, 1_000))
    assert day == ComfortSums(
        occupied=180 * M,
        temperature_known=150 * M,
        temperature_inside=90 * M,
        co2_known=150 * M,
        co2_inside=120 * M,
    )


def test_by_hour() -> None:
    edges = bucket_edges(at("2024-03-05T09:00"), at("2024-03-05T11:00"), "hour", BERLIN)
    nine, ten = room_comfort(OCCUPIED, TEMPERATURE, CO2, edges, 3_600, Band(20, 26), Band(None, 1_000))
    assert (nine.temperature_known, nine.temperature_inside) == (60 * M, 30 * M)
    assert (ten.co2_known, ten.co2_inside) == (30 * M, 0.0)


def test_band_bounds_are_inclusive_and_neighbours_join() -> None:
    known, inside = band_spans([(0.0, 20.0), (10.0, 26.0), (20.0, 26.5)], 100.0, 0.0, 40.0, 20.0, 26.0)
    assert known == [(0.0, 40.0)]
    assert inside == [(0.0, 20.0)]
