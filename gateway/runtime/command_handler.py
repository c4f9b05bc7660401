"""The shard's side of API replicas' commands (`gateway.shard_commands`): requests on
`officegw/command/<building>` for the gateway's own buildings, carried out through the
same gateway methods as its REST API, and answered on the request's reply topic.

Requests are acknowledged on arrival and run once at most: a command lost in a crash
is not run after the restart (the replica answered 503 by then), and a request the
broker delivers twice (QoS 1) gets the first answer again, not a second booking. One
worker thread runs them in arrival order, off the network thread (a booking write
waits on the store). A full queue refuses at once (`storage`) rather than hold up
ingest.

The checks are those of the REST routes: the room, booking or device must exist and
be in a building the caller's key may see (otherwise `not_found`, never a hint that
it exists), and in one of this shard's buildings (`not_served`: two gateways claim
a building, or none does).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

import orjson

from devices.registry import DeviceView
from gateway.automation.actuator import Decision
from gateway.bookings.service import (
    BookingConflict,
    BookingDraft,
    BookingError,
    BookingNotFound,
    InvalidBooking,
    Outcome,
    StorageUnavailable,
)
from gateway.codec import dumps
from gateway.live_state import LiveRoom
from gateway.logs import kv
from gateway.mqtt.transport import InboundMessage
from gateway.shard_commands import (
    BadCommand,
    CommandReply,
    CommandRequest,
    ErrorKind,
    building_of_command_topic,
    decode_request,
    refusal,
)
from rules.bookings import Booking

log = logging.getLogger("officegw.commands")

# Requests waiting for the worker; more are refused at once.
QUEUE_SIZE = 1_000
# Answers kept for requests delivered again (QoS 1 redelivery, a replica's retry).
ANSWERS_KEPT = 10_000


class Shard(Protocol):
    """The gateway methods a command runs through (those of its REST API)."""

    def room(self, room_id: str) -> LiveRoom | None: ...

    def device(self, device_id: str) -> DeviceView | None: ...

    def booking(self, booking_id: str) -> Booking | None: ...

    def create_booking(
        self, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> tuple[Booking, Outcome]: ...

    def update_booking(
        self, booking_id: str, draft: BookingDraft, *, actor: str, visible: Callable[[str], bool]
    ) -> Booking: ...

    def cancel_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking: ...

    def check_in_booking(self, booking_id: str, *, actor: str, visible: Callable[[str], bool]) -> Booking: ...

    def book_now(self, room_id: str, seconds: float, *, actor: str) -> Booking: ...


# (room_id, on, brightness_pct, actor) -> [(device_id, payload, decision)]; raises LookupError: no lights
SetLights = Callable[[str, bool, float | None, str], list[tuple[str, dict[str, Any], Decision]]]
# (device_id, payload, actor) -> decision; raises ValueError: the device does not take it
CommandDevice = Callable[[str, dict[str, Any], str], Decision]
Publish = Callable[[str, bytes], None]


class _NotFound(LookupError):
    pass


class _NotServed(LookupError):
    pass


class _Refused(ValueError):
    pass


def booking_data(booking: Booking) -> dict[str, Any]:
    """A booking as it travels in a reply (gateway.codec: back with `decode_as(Booking, ...)`)."""
    data: dict[str, Any] = orjson.loads(dumps(booking))
    return data


class CommandHandler:
    def __init__(
        self,
        shard: Shard,
        *,
        set_lights: SetLights,
        command_device: CommandDevice,
        publish: Publish,
        buildings: frozenset[str] | None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._shard = shard
        self._set_lights = set_lights
        self._command_device = command_device
        self._publish = publish
        # None: every building (a gateway that is not sharded).
        self._buildings = buildings
        self._wall_clock = wall_clock
        self._queue: queue.Queue[CommandRequest | None] = queue.Queue(QUEUE_SIZE)
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        # Guards `_answers` (the network thread answers refusals, the worker the rest).
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Since start, by outcome ("ok" or an error kind); guarded by `_lock`.
        self._counts: dict[str, int] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="officegw-commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        # Waits for the request in hand; those still queued are dropped (the replicas time out).
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join(timeout=5.0)
        self._thread = None

    def receive(self, message: InboundMessage) -> None:
        """The transport's handler for command topics (its network thread): never waits."""
        if message.ack is not None:
            message.ack()  # at most once: see the module's docstring
        if message.retained:
            # A retained command is somebody's mistake; running it on every connect would be worse.
            log.warning(kv("retained command ignored", topic=message.topic))
            return
        building = building_of_command_topic(message.topic)
        try:
            request = decode_request(message.payload)
        except BadCommand as exc:
            self._count("bad_request")
            log.warning(kv("command not understood", topic=message.topic, error=str(exc)))
            return
        if building is None or (self._buildings is not None and building not in self._buildings):
            self._answer(request, refusal(request.id, "not_served", "not a building of this gateway"))
            return
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._answer(request, refusal(request.id, "storage", "the gateway is too busy; try again"))

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            with self._lock:
                kept = self._answers.get(request.id)
            if kept is not None:
                self._publish(request.reply_to, kept)  # delivered again: the same answer
                continue
            # One isolation point: a failing command is answered and logged, the next one runs.
            try:
                self._answer(request, self._reply(request))
            except Exception as exc:
                log.exception(kv("command failed", op=request.op, request=request.id))
                self._answer(request, refusal(request.id, "storage", f"the command failed: {exc}"))

    def _reply(self, request: CommandRequest) -> CommandReply:
        if self._wall_clock() > request.deadline:
            return refusal(request.id, "expired", "arrived after its deadline; not carried out")
        try:
            result = self._carry_out(request)
        except BookingError as exc:
            return _booking_refusal(request.id, exc)
        except (_NotFound, _NotServed, _Refused, BadCommand) as exc:
            kind: ErrorKind = (
                "not_found"
                if isinstance(exc, _NotFound)
                else "not_served"
                if isinstance(exc, _NotServed)
                else "refused"
                if isinstance(exc, _Refused)
                else "bad_request"
            )
            return refusal(request.id, kind, str(exc))
        return CommandReply(request.id, True, result=result)

    def _answer(self, request: CommandRequest, reply: CommandReply) -> None:
        payload = reply.encode()
        with self._lock:
            self._answers[request.id] = payload
            while len(self._answers) > ANSWERS_KEPT:
                self._answers.popitem(last=False)
        outcome = "ok" if reply.ok else str(reply.error)
        self._count(outcome)
        log.info(kv("command", op=request.op, actor=request.actor, request=request.id, outcome=outcome))
        self._publish(request.reply_to, payload)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1

    def outcomes(self) -> dict[str, int]:
        """Commands since start by outcome ("ok" or an error kind)."""
        with self._lock:
            return dict(self._counts)

    # The operations

    def _carry_out(self, request: CommandRequest) -> dict[str, Any]:
        args, actor = request.args, request.actor
        visible = self._visible(request.buildings)
        if request.op == "booking.create":
            draft = _draft(args)
            self._room(draft.room_id, request.buildings)
            booking, outcome = self._shard.create_booking(draft, actor=actor, visible=visible)
            return {"booking": booking_data(booking), "outcome": outcome}
        if request.op == "booking.update":
            booking_id, draft = _text(args, "booking_id"), _draft(args)
            self._owned_booking(booking_id, visible)
            self._room(draft.room_id, request.buildings)
            booking = self._shard.update_booking(booking_id, draft, actor=actor, visible=visible)
            return {"booking": booking_data(booking)}
        if request.op == "booking.cancel":
            booking_id = _text(args, "booking_id")
            self._owned_booking(booking_id, visible)
            return {
                "booking": booking_data(self._shard.cancel_booking(booking_id, actor=actor, visible=visible))
            }
        if request.op == "booking.check_in":
            booking_id = _text(args, "booking_id")
            self._owned_booking(booking_id, visible)
            booking = self._shard.check_in_booking(booking_id, actor=actor, visible=visible)
            return {"booking": booking_data(booking)}
        if request.op == "booking.book_now":
            room_id = _text(args, "room_id")
            self._room(room_id, request.buildings)
            booking = self._shard.book_now(room_id, _number(args, "seconds"), actor=actor)
            return {"booking": booking_data(booking)}
        if request.op == "room.lights":
            room_id = _text(args, "room_id")
            self._room(room_id, request.buildings)
            on = args.get("on")
            if not isinstance(on, bool):
                raise BadCommand("on: true or false expected")
            brightness = _number(args, "brightness_pct") if args.get("brightness_pct") is not None else None
            try:
                commands = self._set_lights(room_id, on, brightness, actor)
            except LookupError:
                raise _Refused(f"room {room_id!r} has no lights") from None
            return {"commands": [_command(device, payload, d) for device, payload, d in commands]}
        if request.op == "device.command":
            device_id, payload = _text(args, "device_id"), args.get("payload")
            if not isinstance(payload, dict) or not payload:
                raise BadCommand("payload: a non-empty object expected")
            view = self._shard.device(device_id)
            if view is None:
                raise _NotFound("device not found")
            self._room(view.room_id, request.buildings, missing="device not found")
            if view.topic is None:
                raise _Refused(f"device {device_id!r} has no command topic")
            try:
                decision = self._command_device(device_id, payload, actor)
            except ValueError as exc:
                raise _Refused(f"device {device_id!r}: {exc}") from None
            return _command(device_id, payload, decision)
        raise BadCommand(f"op: unknown operation {request.op!r}")

    def _visible(self, buildings: frozenset[str] | None) -> Callable[[str], bool]:
        def visible(room_id: str) -> bool:
            room = self._shard.room(room_id)
            return room is not None and (buildings is None or room.config.building in buildings)

        return visible

    def _room(
        self, room_id: str, buildings: Collection[str] | None, *, missing: str = "room not found"
    ) -> None:
        room = self._shard.room(room_id)
        if room is None or (buildings is not None and room.config.building not in buildings):
            raise _NotFound(missing)
        if self._buildings is not None and room.config.building not in self._buildings:
            raise _NotServed(f"room {room_id!r} is not in a building of this gateway")

    def _owned_booking(self, booking_id: str, visible: Callable[[str], bool]) -> None:
        booking = self._shard.booking(booking_id)
        if booking is None or not visible(booking.room_id):
            raise _NotFound("booking not found")
        room = self._shard.room(booking.room_id)
        if room is not None and self._buildings is not None and room.config.building not in self._buildings:
            raise _NotServed(f"booking {booking_id!r} is not in a building of this gateway")


def _booking_refusal(request_id: str, exc: BookingError) -> CommandReply:
    if isinstance(exc, BookingNotFound):
        return refusal(request_id, "not_found", str(exc))
    if isinstance(exc, InvalidBooking):
        return refusal(request_id, "invalid", str(exc))
    if isinstance(exc, StorageUnavailable):
        return refusal(request_id, "storage", str(exc))
    clash = exc.clash if isinstance(exc, BookingConflict) else None
    return refusal(request_id, "conflict", str(exc), None if clash is None else booking_data(clash))


def _command(device_id: str, payload: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "payload": dict(payload),
        "outcome": decision.outcome,
        "detail": decision.detail,
    }


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value or len(value) > 512:
        raise BadCommand(f"{key}: a non-empty string expected")
    return value


def _optional_text(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > 10_000):
        raise BadCommand(f"{key}: a string or null expected")
    return value


def _number(args: Mapping[str, Any], key: str) -> float:
    value = args.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise BadCommand(f"{key}: a finite number expected")
    return float(value)


def _draft(args: Mapping[str, Any]) -> BookingDraft:
    return BookingDraft(
        room_id=_text(args, "room_id"),
        start=_number(args, "start"),
        end=_number(args, "end"),
        title=_optional_text(args, "title"),
        organizer=_optional_text(args, "organizer"),
        external_id=_optional_text(args, "external_id"),
        series_id=_optional_text(args, "series_id"),
    )
