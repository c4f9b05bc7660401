"""A shard carrying out API replicas' commands (gateway/runtime/command_handler.py), on a
real gateway over a FakeTransport: the same checks as its REST API, one answer per
request id however often it is delivered, nothing done after the deadline, nothing
for rooms of another shard or outside the caller's buildings; and the notice that
tells replicas its bookings changed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.shard_commands import CommandRequest, Operation, bookings_changed_topic, command_topic
from gateway.storage.bookings_store import BookingQuery
from tests.fakes import GatewayOnFakes, running_gateway
from tests.support import wait_until

SITE = {
    "gateway": {"buildings": ["hq"]},
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2, "bookable": True, "capacity": 8},
            {"id": "lyra", "building": "hq", "floor": 2, "bookable": True, "capacity": 4},
            {"id": "vega", "building": "annex", "floor": 1, "bookable": True, "capacity": 4},
        ],
        "devices": [{"id": "orion-light", "room": "orion", "kind": "light"}],
    },
}


@pytest.fixture
def g(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as gateway:
        yield gateway


def ask(
    g: GatewayOnFakes,
    op: Operation,
    args: dict[str, Any],
    *,
    building: str = "hq",
    request_id: str = "r-1",
    buildings: frozenset[str] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Delivers the request and waits for the answer on its reply topic."""
    reply_to = f"officegw/reply/test/{request_id}"
    before = len(g.transport.sent(reply_to))
    request = CommandRequest(
        request_id, op, "booking-system", buildings, deadline or time.time() + 5, reply_to, args
    )
    g.transport.deliver(command_topic(building), request.encode())
    replies = wait_until(lambda: g.transport.sent(reply_to)[before:], 5.0, f"an answer to {op}")
    answer: dict[str, Any] = replies[0]
    return answer


def booking_args(room: str, g: GatewayOnFakes, **fields: Any) -> dict[str, Any]:
    now = g.clock.now()
    return {"room_id": room, "start": now, "end": now + 3600, **fields}


def test_a_booking_is_made_through_the_gateway_and_audited_as_the_callers(g: GatewayOnFakes) -> None:
    answer = ask(g, "booking.create", booking_args("orion", g, title="Planning"))
    assert answer["ok"] and answer["result"]["outcome"] == "created"
    booking = answer["result"]["booking"]
    assert (booking["room_id"], booking["title"], booking["created_by"]) == (
        "orion",
        "Planning",
        "booking-system",
    )
    assert g.gateway.booking(booking["id"]) is not None
    audit = g.gateway.events_page(kind="audit")
    assert [(e.data["actor"], e.data["action"]) for e in audit] == [("booking-system", "booking_create")]
    # Replicas are told, so they read the bookings again.
    wait_until(lambda: g.transport.sent(bookings_changed_topic("hq")), 5.0, "a bookings notice")
    assert g.transport.sent(bookings_changed_topic("hq"))[-1]["rooms"] == ["orion"]


def test_a_request_delivered_twice_is_carried_out_once(g: GatewayOnFakes) -> None:
    first = ask(g, "booking.create", booking_args("orion", g), request_id="same")
    again = ask(g, "booking.create", booking_args("orion", g), request_id="same")
    assert again == first
    assert len(g.gateway.bookings_page(BookingQuery())) == 1


@pytest.mark.parametrize(
    ("op", "args", "building", "buildings", "error"),
    [
        ("booking.create", {"room_id": "vega"}, "hq", None, "not_served"),
        ("booking.create", {"room_id": "orion"}, "hq", frozenset({"annex"}), "not_found"),
        ("booking.create", {"room_id": "orion"}, "annex", None, "not_served"),
        ("booking.create", {"room_id": "nowhere"}, "hq", None, "not_found"),
        ("booking.cancel", {"booking_id": "nope"}, "hq", None, "not_found"),
        ("room.lights", {"room_id": "lyra", "on": True}, "hq", None, "refused"),
        ("room.lights", {"room_id": "orion", "on": "yes"}, "hq", None, "bad_request"),
        ("device.command", {"device_id": "orion-light", "payload": {}}, "hq", None, "bad_request"),
    ],
    ids=[
        "room of another shard",
        "room outside the key's buildings",
        "building not this gateway's",
        "no such room",
        "no such booking",
        "no lights",
        "not a bool",
        "empty payload",
    ],
)
def test_what_the_rest_api_refuses_is_refused(
    g: GatewayOnFakes,
    op: Operation,
    args: dict[str, Any],
    building: str,
    buildings: frozenset[str] | None,
    error: str,
) -> None:
    if op == "booking.create":
        args = booking_args(args["room_id"], g)
    answer = ask(g, op, args, building=building, buildings=buildings)
    assert (answer["ok"], answer["error"]) == (False, error), answer


def test_a_clash_names_the_booking_it_clashes_with(g: GatewayOnFakes) -> None:
    made = ask(g, "booking.create", booking_args("orion", g), request_id="a")["result"]["booking"]
    clash = ask(g, "booking.create", booking_args("orion", g), request_id="b")
    assert clash["error"] == "conflict" and clash["clash"]["id"] == made["id"]


def test_a_request_past_its_deadline_is_not_carried_out(g: GatewayOnFakes) -> None:
    answer = ask(g, "room.lights", {"room_id": "orion", "on": True}, deadline=time.time() - 1)
    assert answer["error"] == "expired"
    assert not [p for p in g.transport.published if p.topic.endswith("/set")]


def test_lights_go_out_as_the_rest_api_sends_them(g: GatewayOnFakes) -> None:
    answer = ask(g, "room.lights", {"room_id": "orion", "on": True, "brightness_pct": 50})
    assert answer["ok"], answer
    assert [c["device_id"] for c in answer["result"]["commands"]] == ["orion-light"]
    assert g.transport.sent("office/hq/2/orion/orion-light/set") == [{"state": "ON", "brightness": 127}]


def test_garbage_retained_and_unknown_operations_get_no_action(g: GatewayOnFakes) -> None:
    g.transport.deliver(command_topic("hq"), b"not json")
    request = CommandRequest("x", "room.lights", "someone", None, time.time() + 5, "officegw/reply/t/x", {})
    g.transport.deliver(command_topic("hq"), request.encode(), retained=True)
    unknown = orjson.loads(request.encode()) | {"op": "door.open", "id": "y"}
    g.transport.deliver(command_topic("hq"), orjson.dumps(unknown))
    # All three are refused on arrival (the transport's thread), before any worker.
    assert not [p for p in g.transport.published if p.topic.startswith("officegw/reply/")]
    assert g.gateway._commands is not None and g.gateway._commands.outcomes() == {"bad_request": 2}
