"""Bookings in the assembled gateway on a FakeTransport and a manual clock: presence
checks a booking in, a no-show is released (event log + MQTT), a checked-in room
left empty ends early, and the rules see `next_booking_in`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bookings.service import BookingDraft
from rules.bookings import Booking, BookingStatus
from tests.fakes import GatewayOnFakes, running_gateway

PIR = "office/hq/2/orion/orion-pir"
HVAC_SET = "office/hq/2/orion/orion-hvac/set"
EVENTS = "officegw/events/{kind}/hq/orion"
CONFIG: dict[str, Any] = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "bookable": True},
        ],
        "devices": [
            # Battery powered: silent for long while nobody moves, yet not offline.
            {"id": "orion-pir", "room": "orion", "power_source": "battery"},
            {"id": "orion-hvac", "room": "orion", "kind": "hvac"},
        ],
    },
    "occupancy": {"vacancy_timeout": 120},
    "bookings": {"checkin_window": 300, "release_when_vacant": 600, "presence_min": 60},
}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, CONFIG) as running:
        yield running


def book(gw: GatewayOnFakes, starts_in: float, minutes: float = 60) -> Booking:
    now = gw.clock.now()
    booking, outcome = gw.gateway.create_booking(
        BookingDraft("orion", now + starts_in, now + starts_in + minutes * 60, title="Review"),
        actor="test",
        visible=lambda room_id: True,
    )
    assert outcome == "created"
    return booking


def status(gw: GatewayOnFakes, booking: Booking) -> BookingStatus:
    found = gw.gateway.booking(booking.id)
    assert found is not None
    return found.status


def published(gw: GatewayOnFakes, kind: str) -> list[Any]:
    return gw.transport.sent(EVENTS.format(kind=kind))


def test_a_no_show_is_released_logged_and_published(gw: GatewayOnFakes) -> None:
    # The PIR has reported, so the room can see (and sees nobody).
    gw.transport.deliver(PIR, {"occupancy": False})
    booking = book(gw, starts_in=60)
    gw.advance(60 + 299)
    assert status(gw, booking) == BookingStatus.BOOKED
    assert gw.gateway.room_bookings()["orion"][0] == gw.gateway.booking(booking.id)
    gw.advance(2)
    assert status(gw, booking) == BookingStatus.RELEASED
    [event] = gw.events.page(kind="booking_released")
    assert (event.room_id, event.data["booking"], event.data["status"]) == ("orion", booking.id, "released")
    [message] = published(gw, "booking_released")
    assert message["booking"] == booking.id
    assert (message["building"], message["room_id"], message["seq"]) == ("hq", "orion", event.seq)
    # Released at the deadline, whenever the tick came.
    assert gw.gateway.booking(booking.id).released_at == booking.start + 300  # type: ignore[union-attr]
    # The room is free again.
    assert "orion" not in gw.gateway.room_bookings()


def test_presence_checks_in_and_an_empty_room_ends_the_booking_early(gw: GatewayOnFakes) -> None:
    booking = book(gw, starts_in=60)
    gw.advance(70)
    gw.transport.deliver(PIR, {"occupancy": True})
    gw.advance(30)
    # One blip is not presence, however long it keeps the room occupied.
    gw.advance(40)
    assert status(gw, booking) == BookingStatus.BOOKED
    gw.transport.deliver(PIR, {"occupancy": True})
    gw.advance(1)
    assert status(gw, booking) == BookingStatus.CHECKED_IN
    assert [m["booking"] for m in published(gw, "booking_checked_in")] == [booking.id]
    # Nobody moves again: vacant after the 120 s timeout, ended 600 s after that.
    gw.advance(119)
    assert gw.room("orion").occupancy.since == booking.start + 200  # vacant from 120 s after the motion
    gw.advance(598)
    assert status(gw, booking) == BookingStatus.CHECKED_IN
    gw.advance(2)
    ended = gw.gateway.booking(booking.id)
    assert ended is not None and ended.status == BookingStatus.ENDED
    assert ended.ended_at == booking.start + 200 + 600
    assert [m["reason"] for m in published(gw, "booking_ended")] == ["room vacant for 10 min"]


def test_a_room_without_presence_sensors_keeps_its_booking(gw: GatewayOnFakes) -> None:
    booking = book(gw, starts_in=0, minutes=15)
    gw.advance(600)
    assert status(gw, booking) == BookingStatus.BOOKED
    gw.advance(301)
    assert status(gw, booking) == BookingStatus.ENDED
    assert published(gw, "booking_released") == []


def test_the_hvac_warms_the_room_before_a_booking(gw: GatewayOnFakes) -> None:
    gw.transport.deliver("office/hq/2/orion/orion-hvac", {"setpoint": 17.0})
    book(gw, starts_in=1200)
    gw.advance(1)
    assert gw.transport.sent(HVAC_SET) == []
    gw.advance(302)  # the booking now starts in under 15 min
    assert gw.transport.sent(HVAC_SET) == [{"setpoint": 21.0}]
    [fired] = [
        e for e in gw.events.page(kind="command") if e.data.get("rule") == "hvac-comfort-before-booking"
    ]
    assert fired.data["status"] == "sent"
