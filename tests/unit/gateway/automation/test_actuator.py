"""Actuation as tables of (actuator state, command/report/tick, now) -> what goes out."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.automation.actuator import ActuationPolicy, Actuator
from rules.types import Command, Priority

T0 = 1_000.0
POLICY = ActuationPolicy(confirm_timeout=2.0, max_attempts=3, min_switch_interval=30.0)


def off(priority: Priority = Priority.ENERGY, device: str = "l1") -> Command:
    return Command(device, {"state": "OFF"}, priority, "vacancy-off", "orion")


def on(priority: Priority = Priority.ENERGY, device: str = "l1") -> Command:
    return Command(device, {"state": "ON"}, priority, "occupied-on", "orion")


def actuator(reported: dict[str, Any] | None = None) -> Actuator:
    act = Actuator(POLICY)
    if reported is not None:
        act.report("l1", "orion", reported, T0 - 100)
    return act


def test_a_command_is_sent_and_confirmed_by_the_device_report() -> None:
    act = actuator({"state": "ON"})
    decision = act.submit(off(), T0)
    assert decision.outcome == "sent"
    assert decision.outgoing is not None and decision.outgoing.payload == {"state": "OFF"}
    assert act.pending() == {"l1": 1}
    assert act.report("l1", "orion", {"state": "OFF", "power": 0}, T0 + 0.1) == "confirmed"
    assert act.pending() == {}
    assert act.tick(T0 + 60) == ([], [])


def test_unconfirmed_commands_are_retried_with_backoff_then_alerted() -> None:
    act = actuator({"state": "ON"})
    act.submit(off(), T0)
    assert act.tick(T0 + 1.9) == ([], [])
    retry, alerts = act.tick(T0 + 2.0)
    assert [o.attempt for o in retry] == [2] and alerts == []
    assert act.tick(T0 + 5.9) == ([], [])  # second wait doubles: 4 s
    retry, _ = act.tick(T0 + 6.0)
    assert [o.attempt for o in retry] == [3]
    retry, alerts = act.tick(T0 + 14.0)
    assert retry == []
    assert len(alerts) == 1
    assert alerts[0].message == "device l1 did not confirm {'state': 'OFF'} after 3 attempts"
    assert act.pending() == {}


def test_no_command_for_a_state_the_device_already_reports() -> None:
    assert actuator({"state": "OFF"}).submit(off(), T0).outcome == "unchanged"


def test_rules_switch_a_device_at_most_once_per_interval_latest_wish_wins() -> None:
    act = actuator({"state": "OFF"})
    assert act.submit(on(), T0).outcome == "sent"
    act.report("l1", "orion", {"state": "ON"}, T0 + 0.1)
    assert act.submit(off(), T0 + 10).outcome == "deferred"
    assert act.submit(on(), T0 + 11).outcome == "unchanged"
    assert act.submit(off(), T0 + 12).outcome == "deferred"
    assert act.tick(T0 + 29) == ([], [])
    sent, _ = act.tick(T0 + 30)
    assert [(o.device_id, o.payload) for o in sent] == [("l1", {"state": "OFF"})]


def test_a_change_nobody_commanded_is_a_manual_override_until_vacant() -> None:
    act = actuator({"state": "OFF"})
    assert act.report("l1", "orion", {"state": "ON"}, T0) == "override"
    decision = act.submit(off(), T0 + 60)
    assert decision.outcome == "suppressed"
    assert "manual" in decision.detail
    assert act.room_vacant("orion") == ["l1"]
    assert act.submit(off(), T0 + 120).outcome == "sent"


def test_first_report_and_periodic_repeats_are_not_overrides() -> None:
    act = Actuator(POLICY)
    assert act.report("l1", "orion", {"state": "ON"}, T0) is None
    assert act.report("l1", "orion", {"state": "ON", "power": 9}, T0 + 300) is None
    assert act.report("l1", "orion", {"power": 9}, T0 + 301) is None
    assert act.claims(T0 + 301) == {}


@pytest.mark.parametrize(
    ("holder", "challenger", "outcome"),
    [
        (Priority.SAFETY, Priority.MANUAL, "suppressed"),
        (Priority.SAFETY, Priority.ENERGY, "suppressed"),
        (Priority.MANUAL, Priority.BOOKING, "suppressed"),
        (Priority.MANUAL, Priority.ENERGY, "suppressed"),
        (Priority.BOOKING, Priority.ENERGY, "suppressed"),
        (Priority.BOOKING, Priority.SAFETY, "sent"),
        (Priority.ENERGY, Priority.BOOKING, "sent"),
    ],
)
def test_a_lower_priority_never_undoes_a_higher_one(
    holder: Priority, challenger: Priority, outcome: str
) -> None:
    act = actuator({"state": "OFF"})
    act.submit(on(holder), T0)
    act.report("l1", "orion", {"state": "ON"}, T0 + 0.1)
    # Beyond the debounce window, so only priority decides.
    assert act.submit(off(challenger), T0 + 100).outcome == outcome


def test_booking_and_safety_claims_end_after_their_hold() -> None:
    act = actuator({"state": "OFF"})
    act.submit(on(Priority.BOOKING), T0)
    act.report("l1", "orion", {"state": "ON"}, T0 + 0.1)
    assert act.submit(off(), T0 + 3599).outcome == "suppressed"
    assert act.submit(off(), T0 + 3600).outcome == "sent"


def test_manual_commands_go_out_at_once_and_hold_the_device() -> None:
    act = actuator({"state": "OFF"})
    act.submit(on(), T0)
    act.report("l1", "orion", {"state": "ON"}, T0 + 0.1)
    decision = act.manual(off(), T0 + 1)  # within the debounce window
    assert decision.outcome == "sent"
    act.report("l1", "orion", {"state": "OFF"}, T0 + 1.1)
    assert act.submit(on(), T0 + 100).outcome == "suppressed"


def test_dimmer_levels_confirm_within_tolerance() -> None:
    act = actuator({"state": "ON", "brightness": 254})
    act.submit(Command("l1", {"brightness": 120}, Priority.ENERGY, "daylight", "orion"), T0)
    assert act.report("l1", "orion", {"brightness": 80}, T0 + 0.2) is None
    assert act.report("l1", "orion", {"brightness": 121}, T0 + 0.4) == "confirmed"


def test_a_command_in_flight_keeps_its_first_send_time_across_retries() -> None:
    act = actuator({"state": "ON"})
    act.submit(off(), T0)
    act.tick(T0 + 2.0)  # second attempt
    in_flight = act.in_flight("l1")
    assert in_flight is not None
    assert (in_flight.command, in_flight.attempts, in_flight.first_sent_at) == (off(), 2, T0)
    assert act.report("l1", "orion", {"state": "OFF"}, T0 + 2.5) == "confirmed"
    assert act.in_flight("l1") is None


def test_a_newer_command_replaces_the_one_in_flight_and_its_time() -> None:
    act = actuator({"state": "ON"})
    act.submit(off(), T0)
    act.manual(on(), T0 + 1.0)
    in_flight = act.in_flight("l1")
    assert in_flight is not None
    assert (in_flight.command.payload, in_flight.attempts, in_flight.first_sent_at) == (
        {"state": "ON"},
        1,
        T0 + 1.0,
    )
