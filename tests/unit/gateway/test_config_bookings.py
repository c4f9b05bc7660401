"""Booking timers in the site config: the room's own, else its type's, else `bookings.*`."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, settings_from_dict
from rules.bookings import BookingPolicy


def test_booking_timers_by_room_then_type_then_default() -> None:
    settings = settings_from_dict(
        {
            "site": {
                "rooms": [
                    {"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "checkin_window": 120},
                    {"id": "booth", "building": "hq", "floor": 2, "type": "phone_booth"},
                    {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting"},
                ]
            },
            "bookings": {
                "checkin_window": 600,
                "release_when_vacant": 900,
                "presence_min": 30,
                "room_types": {
                    "phone_booth": {"release_when_vacant": 300},
                    "meeting": {"checkin_window": 400},
                },
            },
        }
    )
    orion, booth, lyra = settings.site.rooms
    assert settings.booking_policy_for(orion) == BookingPolicy(120, 900, 30)
    assert settings.booking_policy_for(booth) == BookingPolicy(600, 300, 30)
    assert settings.booking_policy_for(lyra) == BookingPolicy(400, 900, 30)
    assert settings.booking_policy_for(None) == BookingPolicy(600, 900, 30)


def test_bad_booking_timers_are_reported_with_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(
            {
                "bookings": {"checkin_window": -1, "room_types": {"meeting": {"release_when_vacant": 0}}},
                "site": {"rooms": [{"id": "o", "building": "hq", "floor": 1, "release_when_vacant": 0}]},
            }
        )
    assert caught.value.problems == [
        "site.rooms[0].release_when_vacant: must be > 0",
        "bookings.checkin_window: must be >= 0",
        "bookings.room_types.meeting.release_when_vacant: must be > 0",
    ]
