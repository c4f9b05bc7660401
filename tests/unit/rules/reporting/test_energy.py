"""One room's energy, cost, baseline and the rules' savings, figures computed by hand.

A Tuesday in Berlin; business hours 08:00-18:00; a time-of-day tariff of 0.30 per
kWh from 08:00 to 18:00 on weekdays, 0.20 otherwise; readings held up to 4 h.

- light L reports power: 07:30 100 W, 08:30 200 W, 12:00 0 W (a rule's OFF), 13:00
  200 W, 16:00 200 W, 19:00 0 W. kWh: 0.1 (07:30-08:30; half at each price) + 0.7
  (08:30-12:00) + 1.2 (13:00-19:00; 1.0 at day price, 0.2 after 18:00) = 2.0;
  cost 0.05*0.2 + 0.05*0.3 + 0.7*0.3 + 1.0*0.3 + 0.2*0.2 = 0.575.
- plug P has a meter (and power readings, unused): 10:00 5.0 kWh, 11:00 5.3,
  12:00 5.3, 20:00 5.9. 0.3 kWh 10:00-11:00 at 0.30 = 0.09; the 0.6 kWh of the 8-hour
  gap are unattributed.
- occupied 08:00-11:30 and 13:00-17:00: vacant kWh are L's 07:30-08:00 (0.05),
  11:30-12:00 (0.1) and 17:00-19:00 (0.4) = 0.55.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules.reporting.calendar import DailyWindow, Tariff, TariffBand
from rules.reporting.energy import (
    DeviceReadings,
    OffCommand,
    SiteSlices,
    SwitchReadings,
    avoided_by,
    business_seconds,
    power_starts,
    room_energy,
)
from rules.reporting.occupancy import VACANT, spans_in_state
from rules.site_time import bucket_edges, day_start

BERLIN = ZoneInfo("Europe/Berlin")
HOLD = 4 * 3_600.0
WEEKDAYS = frozenset(range(5))
DAY_RATE = DailyWindow(time(8), time(18), WEEKDAYS)
TARIFF = Tariff("EUR", 0.20, (TariffBand(DAY_RATE, 0.30),))


def at(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).timestamp()


START, END = at("2024-03-05T00:00"), at("2024-03-06T00:00")
LIGHT_POWER = [
    (at("2024-03-05T07:30"), 100.0),
    (at("2024-03-05T08:30"), 200.0),
    (at("2024-03-05T12:00"), 0.0),
    (at("2024-03-05T13:00"), 200.0),
    (at("2024-03-05T16:00"), 200.0),
    (at("2024-03-05T19:00"), 0.0),
]
PLUG = DeviceReadings(
    "plug",
    meter=[
        (at("2024-03-05T10:00"), 5.0),
        (at("2024-03-05T11:00"), 5.3),
        (at("2024-03-05T12:00"), 5.3),
        (at("2024-03-05T20:00"), 5.9),
    ],
    power=power_starts([(at("2024-03-05T10:00"), 300.0)], HOLD),
)
LIGHT = power_starts(LIGHT_POWER, HOLD)


def site(start: float = START, end: float = END, tariff: Tariff = TARIFF) -> SiteSlices:
    return SiteSlices.of(bucket_edges(start, end, "day", BERLIN), tariff.prices(start, end, BERLIN))


CHANGES = [
    (at("2024-03-05T08:00"), "occupied"),
    (at("2024-03-05T11:30"), VACANT),
    (at("2024-03-05T13:00"), "occupied"),
    (at("2024-03-05T17:00"), VACANT),
]


def test_a_day_of_energy() -> None:
    vacant = spans_in_state(VACANT, VACANT, CHANGES, START, END)
    (day,), unattributed = room_energy(
        [DeviceReadings("light", power=LIGHT), PLUG], vacant, site(), [START, END], HOLD
    )
    assert day.kwh == pytest.approx(2.3)
    assert day.kwh_vacant == pytest.approx(0.55)
    assert day.cost == pytest.approx(0.665)
    assert unattributed == pytest.approx(0.6)


def test_the_baseline_burns_through_business_hours() -> None:
    (seconds,), (money,) = business_seconds(DAY_RATE.spans(START, END, BERLIN), site(), 1)
    # 300 W for 10 hours at 0.30: 3.0 kWh, 0.90. Saved: 3.0 - 2.3 = 0.7 kWh, 0.235.
    assert 300 * seconds / 3_600_000 == pytest.approx(3.0)
    assert 300 * money / 3_600_000 == pytest.approx(0.9)


def test_what_each_rule_avoided() -> None:
    commands = [
        OffCommand(at("2024-03-05T12:00"), "light", "lights-off-when-vacant"),
        OffCommand(at("2024-03-05T19:00"), "light", "lights-off-after-hours"),
        OffCommand(at("2024-03-05T12:00"), "fan", "lights-off-when-vacant"),
    ]
    avoided, unmeasured = avoided_by(
        commands,
        {"light": SwitchReadings(power=LIGHT)},
        DAY_RATE.spans(START, END, BERLIN),
        site(),
        END,
        HOLD,
    )
    # 200 W from 12:00 until it was on again at 13:00 (before 18:00): 0.2 kWh at 0.30.
    noon, evening = avoided
    assert (noon.watts, noon.seconds) == (200.0, 3_600.0)
    assert (noon.kwh, noon.cost) == (pytest.approx(0.2), pytest.approx(0.06))
    # After hours the baseline is off already: nothing avoided against it.
    assert (evening.command.rule, evening.kwh) == ("lights-off-after-hours", 0.0)
    assert unmeasured == 1


def test_the_baseline_ends_the_avoided_time_and_rated_watts_stand_in_for_power() -> None:
    on = [(at("2024-03-05T16:00"), 1.0)]
    (late,), _ = avoided_by(
        [OffCommand(at("2024-03-05T17:30"), "lamp", "r")],
        {"lamp": SwitchReadings(on=on, rated_watts=60.0)},
        DAY_RATE.spans(START, END, BERLIN),
        site(),
        END,
        HOLD,
    )
    # Never on again that day: until 18:00, when the baseline turns off.
    assert (late.watts, late.seconds, late.kwh) == (60.0, 1_800.0, pytest.approx(0.03))


@pytest.mark.parametrize(
    ("day", "kwh"),
    [(date(2024, 3, 31), 2.3), (date(2024, 3, 30), 2.4), (date(2024, 10, 27), 2.5)],
    ids=["clocks forward", "ordinary", "clocks back"],
)
def test_a_day_of_constant_draw_is_as_long_as_the_day(day: date, kwh: float) -> None:
    start, end = day_start(day, BERLIN), day_start(day + timedelta(days=1), BERLIN)
    # 100 W reported every hour all weekend long.
    power = power_starts([(start - 3_600 + k * 3_600.0, 100.0) for k in range(30)], HOLD)
    (sums,), _ = room_energy(
        [DeviceReadings("l", power=power)], [], site(start, end, Tariff("EUR", 0.25)), [start, end], HOLD
    )
    assert (sums.kwh, sums.cost) == (pytest.approx(kwh), pytest.approx(kwh * 0.25))


def test_a_meter_reset_counts_from_zero() -> None:
    meter = [(0.0, 10.0), (3_600.0, 10.5), (7_200.0, 0.25)]
    flat = SiteSlices.of([0.0, 7_200.0], [(0.0, 7_200.0, 1.0)])
    (sums,), unattributed = room_energy([DeviceReadings("m", meter=meter)], [], flat, [0.0, 7_200.0], HOLD)
    assert (sums.kwh, unattributed) == (pytest.approx(0.75), 0.0)


def test_power_starts_keep_what_draws_and_when_it_ended() -> None:
    readings = [(0.0, 0.0), (10.0, 40.0), (20.0, 40.0), (30.0, 0.0), (40.0, 60.0)]
    assert power_starts(readings, 15.0) == [(10.0, 40.0, 20.0), (20.0, 40.0, 30.0), (40.0, 60.0, None)]
    # The next reading too late to end it: the hold does.
    assert power_starts([(0.0, 5.0), (100.0, 0.0)], 15.0) == [(0.0, 5.0, None)]


def test_the_draw_before_an_off_command() -> None:
    business = DAY_RATE.spans(START, END, BERLIN)
    noon = at("2024-03-05T12:00")
    cases = {
        # 40 W in force until the command itself (its answer comes at that moment).
        "in force": SwitchReadings(power=power_starts([(noon - 600, 40.0), (noon, 0.0)], HOLD)),
        # Ended by a 0 W reading an hour before: off already.
        "ended": SwitchReadings(power=power_starts([(noon - 7_200, 40.0), (noon - 3_600, 0.0)], HOLD)),
        # No power readings: the on/off state and the rated watts.
        "rated": SwitchReadings(on=[(noon - 60, 1.0)], rated_watts=25.0),
        "off": SwitchReadings(on=[(noon - 60, 0.0)], rated_watts=25.0),
        "unknown": SwitchReadings(on=[(noon - HOLD - 1, 1.0)], rated_watts=25.0),
    }
    commands = [OffCommand(noon, name, "r") for name in cases]
    avoided, unmeasured = avoided_by(commands, cases, business, site(), END, HOLD)
    assert {a.command.device: a.watts for a in avoided} == {
        "in force": 40.0,
        "ended": 0.0,
        "rated": 25.0,
        "off": 0.0,
    }
    assert unmeasured == 1
