"""A replica's side of commands (gateway/shard_commands.py): send a request to the
gateway of the room's building and wait for its answer, up to the request's deadline.

Each request gets a random id; answers arrive on `officegw/reply/<replica id>/<request
id>` and wake the caller waiting for that id (any thread: API calls run in FastAPI's
worker threads). An answer for no waiting caller (it timed out) is dropped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.logs import kv
from gateway.shard_commands import (
    BadCommand,
    CommandReply,
    CommandRequest,
    Operation,
    command_topic,
    decode_reply,
    reply_topic,
)

log = logging.getLogger("officegw.replica")

Publish = Callable[[str, bytes], None]


class NotAnswered(Exception):
    """No answer came before the deadline (the gateway is down, or the broker)."""


class _Waiting:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: CommandReply | None = None


class CommandClient:
    def __init__(
        self,
        replica_id: str,
        publish: Publish,
        *,
        timeout: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._replica_id = replica_id
        self._publish = publish
        self._timeout = timeout
        self._wall_clock = wall_clock
        self._waiting: dict[str, _Waiting] = {}
        self._lock = threading.Lock()
        self.unanswered = 0
        self.late_replies = 0

    def request(
        self,
        building: str,
        op: Operation,
        args: Mapping[str, Any],
        *,
        actor: str,
        buildings: frozenset[str] | None,
    ) -> CommandReply:
        """The owning gateway's answer; raises NotAnswered after `timeout` seconds."""
        request_id = secrets.token_hex(12)
        request = CommandRequest(
            id=request_id,
            op=op,
            actor=actor,
            buildings=buildings,
            deadline=self._wall_clock() + self._timeout,
            reply_to=reply_topic(self._replica_id, request_id),
            args=args,
        )
        waiting = _Waiting()
        with self._lock:
            self._waiting[request_id] = waiting
        try:
            self._publish(command_topic(building), request.encode())
            if not waiting.done.wait(self._timeout):
                self.unanswered += 1
                log.warning(kv("command not answered", op=op, building=building, timeout=self._timeout))
                raise NotAnswered(
                    f"the gateway of building {building!r} did not answer within {self._timeout:g} s "
                    "(it is down or unreachable); it refuses the request after that, so try again"
                )
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        assert waiting.reply is not None
        return waiting.reply

    def receive(self, payload: bytes) -> None:
        """A message on this replica's reply topics (the transport's thread)."""
        try:
            reply = decode_reply(payload)
        except BadCommand as exc:
            log.warning(kv("reply not understood", error=str(exc)))
            return
        with self._lock:
            waiting = self._waiting.get(reply.id)
        if waiting is None:
            self.late_replies += 1
            return
        waiting.reply = reply
        waiting.done.set()
