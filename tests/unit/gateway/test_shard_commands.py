"""The command contract between API replicas and gateways: requests and replies survive
the wire; anything else is a BadCommand with a reason."""

from __future__ import annotations

import pytest

from gateway.shard_commands import (
    BadCommand,
    CommandReply,
    CommandRequest,
    building_of_command_topic,
    command_filters,
    decode_reply,
    decode_request,
)


def test_a_request_and_a_reply_survive_the_wire() -> None:
    request = CommandRequest(
        "id1", "booking.create", "key", frozenset({"hq"}), 1.5e9, "officegw/reply/r/id1", {"a": 1}
    )
    assert decode_request(request.encode()) == request
    reply = CommandReply("id1", False, error="conflict", detail="taken", clash={"id": "b"})
    assert decode_reply(reply.encode()) == reply


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"id": "x"}',
        b'{"id": "x", "op": "door.open", "actor": "a", "deadline": 1, "reply_to": "t"}',
        b'{"id": "x", "op": "room.lights", "actor": "a", "deadline": "soon", "reply_to": "t"}',
        b'{"id": "x", "op": "room.lights", "actor": "a", "deadline": 1, "reply_to": "t", "buildings": "hq"}',
        b'{"id": "x", "op": "room.lights", "actor": "a", "deadline": 1, "reply_to": "t", "args": []}',
        b'{"id": "", "op": "room.lights", "actor": "a", "deadline": 1, "reply_to": "t"}',
    ],
    ids=[
        "empty",
        "not an object",
        "fields missing",
        "unknown op",
        "bad deadline",
        "bad buildings",
        "bad args",
        "no id",
    ],
)
def test_what_is_not_a_request_is_refused(payload: bytes) -> None:
    with pytest.raises(BadCommand):
        decode_request(payload)


def test_topics() -> None:
    assert command_filters(None) == ("officegw/command/+",)
    assert command_filters(frozenset({"b", "a"})) == ("officegw/command/a", "officegw/command/b")
    assert building_of_command_topic("officegw/command/hq") == "hq"
    assert building_of_command_topic("officegw/command/hq/x") is None
    assert building_of_command_topic("office/hq") is None
