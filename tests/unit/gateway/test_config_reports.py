"""The `reports:` section: business hours, tariff, baseline, comfort bands; every mistake
named by its path, in one pass."""

from __future__ import annotations

from datetime import time

import pytest

from gateway.config import ConfigError, settings_from_dict
from gateway.reports.rooms import report_rooms
from rules.reporting.calendar import DailyWindow, Tariff, TariffBand

ROOMS = [
    {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
    {"id": "lyra", "building": "hq", "floor": 2, "type": "office"},
    {"id": "vega", "building": "hq", "floor": 3, "type": "open"},
]


def test_defaults() -> None:
    reports = settings_from_dict({}).reports
    assert reports.business_hours.window() == DailyWindow(time(8), time(18), frozenset(range(5)))
    assert reports.tariff.tariff() == Tariff("EUR", 0.0)
    assert (reports.comfort.temperature_c.min, reports.comfort.temperature_c.max) == (20.0, 26.0)
    assert (reports.reading_hold, reports.max_rows, reports.max_days) == (7_200.0, 100_000, 366.0)


def test_a_time_of_day_tariff_and_the_baseline_of_each_room() -> None:
    settings = settings_from_dict(
        {
            "site": {
                "rooms": ROOMS,
                "devices": [
                    {"id": "vega-light-1", "room": "vega", "rated_watts": 60},
                    {"id": "vega-light-2", "room": "vega", "rated_watts": 40},
                    {"id": "orion-light", "room": "orion", "rated_watts": 30},
                ],
            },
            "reports": {
                "tariff": {
                    "currency": "CHF",
                    "price_per_kwh": 0.18,
                    "bands": [
                        {"start": "07:00", "end": "20:00", "weekdays": ["mon", "tue"], "price_per_kwh": 0.31},
                        # Over midnight, and on other days than the first band: no overlap.
                        {"start": "22:00", "end": "06:00", "price_per_kwh": 0.12},
                    ],
                },
                "baseline_w": {"rooms": {"orion": 200}, "room_types": {"office": 45}},
            },
        }
    )
    tariff = settings.reports.tariff.tariff()
    assert tariff == Tariff(
        "CHF",
        0.18,
        (
            TariffBand(DailyWindow(time(7), time(20), frozenset({0, 1})), 0.31),
            TariffBand(DailyWindow(time(22), time(6), frozenset(range(7))), 0.12),
        ),
    )
    rooms = {room.id: room for room in report_rooms(settings.site.rooms, settings)}
    # The room's own, else its type's, else its devices' rated watts.
    assert {room_id: room.baseline_w for room_id, room in rooms.items()} == {
        "orion": 200,
        "lyra": 45,
        "vega": 100,
    }
    assert dict(rooms["vega"].rated_watts) == {"vega-light-1": 60, "vega-light-2": 40}


def test_mistakes_are_named_by_path() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(
            {
                "site": {"rooms": ROOMS},
                "reports": {
                    "business_hours": {"start": "8am", "weekdays": []},
                    "tariff": {
                        "currency": "euro",
                        "bands": [
                            {"start": "08:00", "end": "18:00", "price_per_kwh": 0.3},
                            {"start": "17:00", "end": "19:00", "weekdays": ["fri"], "price_per_kwh": 0.4},
                        ],
                    },
                    "baseline_w": {"rooms": {"nowhere": 100}, "room_types": {"meeting": 0}},
                    "comfort": {"temperature_c": {"min": 24, "max": 22}, "co2_ppm": {"max": -1}},
                    "reading_hold": 0,
                    "colour": "blue",
                },
            }
        )
    problems = caught.value.problems
    expected = [
        'reports.business_hours.start: must be a time of day "HH:MM"',
        "reports.business_hours.weekdays: ",
        "reports.tariff.currency: must be an ISO 4217 code",
        "reports.baseline_w.room_types.meeting: must be > 0",
        "reports.comfort.temperature_c: max must be above min",
        "reports.comfort.co2_ppm.max: must be > 0",
        "reports.reading_hold: must be > 0",
        "reports.colour: ",
        "reports.baseline_w.rooms.nowhere: unknown room 'nowhere'",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), (start, problems)


def test_overlapping_tariff_bands_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(
            {
                "reports": {
                    "tariff": {
                        "bands": [
                            {"start": "22:00", "end": "06:00", "weekdays": ["sun"], "price_per_kwh": 0.1},
                            # Sunday night's band runs into Monday morning.
                            {"start": "05:00", "end": "09:00", "weekdays": ["mon"], "price_per_kwh": 0.3},
                        ]
                    }
                }
            }
        )
    assert caught.value.problems == ["reports.tariff.bands[1]: overlaps bands[0] (a moment has one price)"]


def test_did_you_mean_suggests_keys_of_the_same_section() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(
            {
                "mqtt": {"colour": "blue"},
                "reports": {"comfrot": {}},
                "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2, "capcity": 8}]},
                "bookings": {"room_types": {"meeting": {"checkin_windw": 60}}},
            }
        )
    assert set(caught.value.problems) == {
        # `comfort` is a key of reports:, not of mqtt:.
        "mqtt.colour: unknown key",
        "reports.comfrot: unknown key (did you mean 'comfort'?)",
        "site.rooms[0].capcity: unknown key (did you mean 'capacity'?)",
        "bookings.room_types.meeting.checkin_windw: unknown key (did you mean 'checkin_window'?)",
    }
