"""What an API replica asks the shard that owns a room to do, and the shard's answer
(MQTT, outside the device prefix; DESIGN.md §7).

A replica ingests no device and writes no booking itself: every write goes to the one
gateway that owns the room's building, which carries it out through the same methods
as its own REST API (so the same checks, clash detection, audit and events) and
answers. One writer per room keeps a booking clash check and the write it guards one
step, whatever the number of replicas.

    officegw/command/<building>          request (QoS 1): CommandRequest as JSON
    <request.reply_to>                   answer (QoS 1): CommandReply as JSON
    officegw/bookings/<building>/changed a shard's bookings of that building changed (QoS 1)

A request carries a deadline (epoch seconds, wall clock): a shard that gets it later
(it was down, the broker queued it in its session) refuses it with `expired` rather
than unlock a door long after the person asking gave up. The replica waits until the
deadline and answers 504 when no reply came; the command then was not carried out,
unless it reached the shard within the last moments (clock skew between machines).

Pure: encoding and decoding only; a malformed message is a `BadCommand`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

COMMAND_ROOT = "officegw/command"
REPLY_ROOT = "officegw/reply"
BOOKINGS_ROOT = "officegw/bookings"

Operation = Literal[
    "booking.create",
    "booking.update",
    "booking.cancel",
    "booking.check_in",
    "booking.book_now",
    "room.lights",
    "device.command",
]
OPERATIONS: frozenset[str] = frozenset(get_args(Operation))

# Why a shard refused; the replica maps each to an HTTP status (api/replica).
ErrorKind = Literal[
    "invalid",  # the request itself is wrong (422)
    "conflict",  # clashes with what is booked, or with a booking's status (409)
    "not_found",  # no such booking / room / device the caller may see (404)
    "refused",  # the device does not take the command, the room has no lights (409)
    "storage",  # the shard's store failed; nothing written (503)
    "not_served",  # the room is not in this shard's buildings (503: a config problem)
    "expired",  # arrived after its deadline; not carried out (504)
    "bad_request",  # not a request this shard understands (a version mismatch) (502)
]

# Requests larger than this are not read (a command is a few hundred bytes).
MAX_REQUEST_BYTES = 64 * 1024


class BadCommand(ValueError):
    """A message on a command or reply topic that is not one."""


def command_topic(building: str) -> str:
    return f"{COMMAND_ROOT}/{building}"


def command_filters(buildings: frozenset[str] | None) -> tuple[str, ...]:
    """What a shard subscribes to: its buildings' command topics (every building's
    when it is not sharded)."""
    if buildings is None:
        return (f"{COMMAND_ROOT}/+",)
    return tuple(command_topic(b) for b in sorted(buildings))


def reply_filter(replica_id: str) -> str:
    return f"{REPLY_ROOT}/{replica_id}/+"


def reply_topic(replica_id: str, request_id: str) -> str:
    return f"{REPLY_ROOT}/{replica_id}/{request_id}"


def bookings_changed_topic(building: str) -> str:
    return f"{BOOKINGS_ROOT}/{building}/changed"


BOOKINGS_CHANGED_FILTER = f"{BOOKINGS_ROOT}/+/changed"


def building_of_command_topic(topic: str) -> str | None:
    prefix = COMMAND_ROOT + "/"
    if not topic.startswith(prefix):
        return None
    building = topic[len(prefix) :]
    return building if building and "/" not in building else None


@dataclass(frozen=True, slots=True)
class CommandRequest:
    id: str
    op: Operation
    # The API key's name (the audit's actor) and its buildings (None: every building);
    # the shard checks what the request touches against them as its own API would.
    actor: str
    buildings: frozenset[str] | None
    deadline: float
    reply_to: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "op": self.op,
                "actor": self.actor,
                "buildings": None if self.buildings is None else sorted(self.buildings),
                "deadline": self.deadline,
                "reply_to": self.reply_to,
                "args": dict(self.args),
            }
        )


@dataclass(frozen=True, slots=True)
class CommandReply:
    id: str
    ok: bool
    result: Mapping[str, Any] | None = None
    error: ErrorKind | None = None
    detail: str | None = None
    # A booking the request clashed with (or whose status refused it), as booking data.
    clash: Mapping[str, Any] | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "ok": self.ok,
                "result": None if self.result is None else dict(self.result),
                "error": self.error,
                "detail": self.detail,
                "clash": None if self.clash is None else dict(self.clash),
            }
        )


def refusal(
    request_id: str, error: ErrorKind, detail: str, clash: Mapping[str, Any] | None = None
) -> CommandReply:
    return CommandReply(request_id, False, error=error, detail=detail, clash=clash)


def _object(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_REQUEST_BYTES:
        raise BadCommand(f"larger than {MAX_REQUEST_BYTES} bytes")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadCommand(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadCommand("not a JSON object")
    return data


def _text(data: Mapping[str, Any], key: str, *, max_length: int = 512) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BadCommand(f"{key}: a non-empty string of at most {max_length} characters expected")
    return value


def decode_request(payload: bytes) -> CommandRequest:
    data = _object(payload)
    op = _text(data, "op", max_length=64)
    if op not in OPERATIONS:
        raise BadCommand(f"op: unknown operation {op!r}")
    buildings = data.get("buildings")
    if buildings is not None and (
        not isinstance(buildings, list) or not all(isinstance(b, str) for b in buildings)
    ):
        raise BadCommand("buildings: a list of building ids or null expected")
    deadline = data.get("deadline")
    if not isinstance(deadline, int | float) or isinstance(deadline, bool) or not math.isfinite(deadline):
        raise BadCommand("deadline: epoch seconds expected")
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise BadCommand("args: an object expected")
    return CommandRequest(
        id=_text(data, "id", max_length=64),
        op=op,  # type: ignore[arg-type]  # checked against OPERATIONS above
        actor=_text(data, "actor", max_length=256),
        buildings=None if buildings is None else frozenset(buildings),
        deadline=float(deadline),
        reply_to=_text(data, "reply_to", max_length=512),
        args=args,
    )


def decode_reply(payload: bytes) -> CommandReply:
    data = _object(payload)
    ok = data.get("ok")
    result, error, detail, clash = (
        data.get("result"),
        data.get("error"),
        data.get("detail"),
        data.get("clash"),
    )
    if not isinstance(ok, bool):
        raise BadCommand("ok: true or false expected")
    if result is not None and not isinstance(result, dict):
        raise BadCommand("result: an object or null expected")
    if clash is not None and not isinstance(clash, dict):
        raise BadCommand("clash: an object or null expected")
    if not ok and error not in get_args(ErrorKind):
        raise BadCommand("error: a known error kind expected")
    return CommandReply(
        id=_text(data, "id", max_length=64),
        ok=ok,
        result=result,
        error=error,
        detail=detail if isinstance(detail, str) else None,
        clash=clash,
    )
