"""The rooms a replica knows from the retained state topics: taken as published, forgotten
when cleared, refused when the document does not match its topic (a room must not move
into another building's scope), and a room's config object kept while its description
stays the same (availability answers kept for it stay valid)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.replica.room_documents import RoomDocuments
from rules.occupancy import Occupancy

TOPIC = "officegw/state/hq/2/orion"


def document(**changes: Any) -> bytes:
    room: dict[str, Any] = {
        "id": "orion", "name": "Orion", "building": "hq", "floor": "2", "type": "meeting", "capacity": 8,
        "features": ["display"], "plan": None, "bookable": True, "configured": True,
        "occupancy": {"state": "vacant", "people": None, "since": None, "confidence": 0.5, "reason": "x"},
        "booking": {"current": None, "next": None},
    }  # fmt: skip
    return orjson.dumps(room | changes)


def test_a_document_is_kept_as_published() -> None:
    rooms = RoomDocuments()
    taken = rooms.take(TOPIC, document())
    assert taken is not None and taken.json == document()
    assert (taken.building, taken.floor, taken.occupancy) == ("hq", "2", Occupancy.VACANT)
    assert (taken.config.capacity, taken.config.bookable, taken.config.features) == (8, True, ["display"])
    assert rooms.building_of("orion") == "hq"


def test_occupancy_changes_keep_the_config_and_bump_only_the_occupancy_version() -> None:
    rooms = RoomDocuments()
    first = rooms.take(TOPIC, document())
    versions = rooms.rooms_version, rooms.occupancy_version
    occupied = {"state": "occupied", "people": 2, "since": None, "confidence": 0.9, "reason": "motion"}
    second = rooms.take(TOPIC, document(occupancy=occupied))
    assert first is not None and second is not None and second.config is first.config
    assert (rooms.rooms_version, rooms.occupancy_version) == (versions[0], versions[1] + 1)
    third = rooms.take(TOPIC, document(occupancy=occupied, capacity=10))
    assert third is not None and third.config is not first.config and rooms.rooms_version == versions[0] + 1


def test_an_empty_retained_message_forgets_the_room() -> None:
    rooms = RoomDocuments()
    rooms.take(TOPIC, document())
    assert rooms.take(TOPIC, b"") is None
    assert rooms.room("orion") is None


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("officegw/state/annex/2/orion", document(), "document"),
        ("officegw/state/hq/3/orion", document(), "document"),
        ("officegw/state/hq/2/lyra", document(), "document"),
        (TOPIC, b"{not json", "document"),
        (TOPIC, b"[1]", "document"),
        (TOPIC, document(occupancy={"state": "maybe"}), "document"),
        (TOPIC, document(capacity=-1), "document"),
        (TOPIC, b" " * 70_000, "document"),
        ("officegw/state/hq/orion", document(), "topic"),
    ],
    ids=[
        "building differs",
        "floor differs",
        "id differs",
        "not json",
        "not an object",
        "unknown occupancy",
        "not a room description",
        "too large",
        "not a state topic",
    ],
)
def test_what_is_not_a_room_document_of_its_topic_is_refused(topic: str, payload: bytes, reason: str) -> None:
    rooms = RoomDocuments()
    assert rooms.take(topic, payload) is None
    assert rooms.rooms() == {} and rooms.refused == {reason: 1}


def test_a_room_id_published_by_a_second_building_does_not_move_the_room() -> None:
    rooms = RoomDocuments()
    rooms.take(TOPIC, document())
    assert rooms.take("officegw/state/annex/2/orion", document(building="annex")) is None
    assert rooms.building_of("orion") == "hq" and rooms.refused == {"building": 1}
    # Nor can the other building's empty message forget it.
    rooms.take("officegw/state/annex/2/orion", b"")
    assert rooms.building_of("orion") == "hq"
