"""Device identity: valid topic levels, ids of auto-registered devices, the old-id rename."""

from __future__ import annotations

import pytest

from devices.dialects.base import DecodeError
from devices.dialects.native import parse_topic
from devices.fields import RejectReason
from devices.identity import auto_device_id, invalid_segment, legacy_renamer, valid_segment


@pytest.mark.parametrize("text", ["orion", "2", "B1", "kitchen-3", "pir_1", "a.b", "hq:2", "x" * 64])
def test_valid_segments(text: str) -> None:
    assert valid_segment(text)


@pytest.mark.parametrize(
    "text",
    ["", "bad!room", "..", "a..b", ".hidden", "-x", "_x", "x" * 65, "with space", "ünï", "line\n", "a/b"],
)
def test_invalid_segments(text: str) -> None:
    assert not valid_segment(text)


def test_invalid_segment_names_the_first_bad_level() -> None:
    assert invalid_segment({"building": "hq", "room": "orion"}) is None
    problem = invalid_segment({"building": "hq", "room": "bad!room", "device": ".."})
    assert problem is not None and problem.startswith("room 'bad!room' is not a valid id")


@pytest.mark.parametrize(
    ("topic", "level"),
    [
        ("office/hq/2/bad!room/pir", "room"),
        ("office/hq/2/../pir", "room"),
        ("office/h q/2/orion/pir", "building"),
        ("office/hq/+/orion/pir/availability", "floor"),
        ("office/hq/2/orion/a..b/set", "device"),
    ],
)
def test_native_topics_with_invalid_levels_are_rejected(topic: str, level: str) -> None:
    with pytest.raises(DecodeError) as raised:
        parse_topic(topic, "office")
    assert raised.value.reason == RejectReason.INVALID_TOPIC
    assert raised.value.detail.startswith(level)


def test_an_auto_registered_device_is_its_name_within_its_room() -> None:
    assert auto_device_id("orion", "pir-1") == "orion.pir-1"
    assert auto_device_id("kitchen-3", "pir-1") == "kitchen-3.pir-1"


def test_legacy_ids_move_to_the_room_and_only_once() -> None:
    rename = legacy_renamer({"orion-env"})
    assert rename("orion", "orion-env") == "orion-env"  # configured: as configured
    assert rename("orion", "pir-1") == "orion.pir-1"  # auto-registered before: plain name
    assert rename("orion", rename("orion", "pir-1")) == "orion.pir-1"
