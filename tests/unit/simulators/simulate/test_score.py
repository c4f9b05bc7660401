"""The score on a hand-made truth: accuracy by the minute, latencies, bookings, energy."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from simulators.simulate.library import parse_scenario
from simulators.simulate.people import Meeting
from simulators.simulate.plan import SitePlan
from simulators.simulate.score import EnergyDay, Timeline, booking_figures, energy_figures, occupancy_figures
from simulators.simulate.truth import FaultRecord, Truth

T0 = 1_893_974_400.0  # Monday 2030-01-07 00:00 UTC
SCENARIO = parse_scenario(
    """
name: two
buildings: [{id: hq, floors: [{id: "1", rooms: [{id: a, type: meeting, capacity: 4}, {id: b}]}]}]
fits: {meeting: [{kind: counter}, {kind: light, watts: 100}], office: [{kind: pir}]}
"""
)


def truth(hours: float = 2.0) -> Truth:
    t = Truth(SitePlan(SCENARIO), T0, T0 + hours * 3600, SCENARIO.baseline, ZoneInfo("UTC"))
    # Room a: two people from 00:10 to 00:40; room b: nobody.
    t.people("a", T0 + 600, 1)
    t.people("a", T0 + 605, 2)
    t.people("a", T0 + 2400, 0)
    for minute in range(int(hours * 60)):
        at = T0 + minute * 60
        t.minute(at, [t.count_at("a", at), t.count_at("b", at)], 0.0)
    return t


def test_accuracy_counts_room_minutes_and_latency_the_gateways_delay() -> None:
    said = {"a": Timeline(), "b": Timeline()}
    said["a"].add(T0 + 630, True)  # 30 s after the first person came in
    said["a"].add(T0 + 3000, False)  # 10 min after the last one left
    figures = occupancy_figures(truth(), said)
    # 240 room-minutes; room a wrong at 00:10 (not yet) and at 00:40 .. 00:49 (still occupied).
    assert figures["occupancy_room_minutes"] == 240
    assert figures["occupancy_accuracy"] == round(229 / 240, 4)
    assert figures["detection_latency_s"]["median"] == 30.0
    assert figures["vacancy_latency_s"]["median"] == 600.0


def test_rooms_under_a_fault_are_also_scored_apart() -> None:
    t = truth()
    t.faults = [FaultRecord(0, "stuck_sensor", "a/counter", T0, T0 + 3600)]
    # The gateway says room a is occupied while the fault lasts: wrong but for 00:10-00:40.
    figures = occupancy_figures(t, {"a": Timeline([(T0, True), (T0 + 3600, False)])})
    assert figures["occupancy_accuracy"] == round(210 / 240, 4)  # 00:00-00:10 and 00:40-01:00 wrong
    assert figures["occupancy_accuracy_outside_faults"] == 1.0  # room b, and room a after 01:10


def test_bookings_right_wrong_and_not_yet_decided() -> None:
    t = truth(hours=3)

    def meeting(n: int, start: float, no_show: bool) -> Meeting:
        return Meeting(
            f"m{n}", "hq", "a", start, start + 1800, "p1", ("p1",), True, no_show, 0.0, start - 3600
        )

    cases = [
        (T0 + 600, False, "ended"),
        (T0 + 3600, True, "released"),
        (T0 + 5400, True, "booked"),
        (T0 + 10_000, False, "booked"),
    ]
    for n, (start, no_show, status) in enumerate(cases):
        t.meeting(meeting(n, start, no_show))
        record = t.meetings[f"m{n}"]
        record.requested, record.booking_id, record.gateway_status = True, f"b{n}", status
    figures = booking_figures(t)
    assert figures["bookings"] == 4
    assert figures["bookings_undecided"] == 1  # starts 20 min before the end: not judged
    assert (figures["checkins_right"], figures["checkins_expected"]) == (1, 1)
    assert (figures["releases_right"], figures["releases_expected"]) == (1, 2)


def test_energy_against_the_truth_and_the_always_on_baseline() -> None:
    t = Truth(SitePlan(SCENARIO), T0, T0 + 86_400, SCENARIO.baseline, ZoneInfo("UTC"))
    t.kwh = [(T0, 0.0), (T0 + 86_400, 1.0)]
    # Baseline: 100 W for 12 h (07:00-19:00, a Monday) = 1.2 kWh.
    assert t.baseline_kwh() == 1.2
    figures = energy_figures(t, [EnergyDay(T0, T0 + 86_400, 0.99)])
    assert figures["kwh_truth"] == 1.0
    assert figures["kwh_error"] == -0.01
    assert figures["lighting_savings"] == round(1 - 0.99 / 1.2, 4)
