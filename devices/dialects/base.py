"""What every dialect provides, so that adding a device family is adding a module."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from devices.fields import DevicePayload


class DecodeError(Exception):
    """A payload that cannot become a reading; `reason` is a `RejectReason` label.

    Raised by every dialect's decoders; the ingest pipeline counts the message as
    rejected for `reason` and goes on (one bad message is never fatal). Not a
    rules.problems.ProblemsError: those are mistakes in files people write."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TopicKind(StrEnum):
    STATE = "state"
    COMMAND = "set"
    AVAILABILITY = "availability"


TopicDecoder = Callable[[MutableMapping[str, Any], str, bytes], DevicePayload | None]
"""`(memory, suffix, payload)`: one message of a dialect whose topics carry a value each."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one device family speaks MQTT.

    - `routes(topic)`: every topic a device mapped at `topic` (site config) uses, by kind.
      A route may be an MQTT filter ending in `+` levels (`<topic>/+/+`) when the
      device's topics cannot be listed in advance; it is subscribed as it is and
      matched only after the exact topics.
    - `decode_state` / `decode_availability`: its messages in the native vocabulary;
      both raise `DecodeError` with a `RejectReason`. `decode_availability` returns
      None for a message that changes nothing.
    - `command(topic, payload, reported)`: the messages that carry a native command
      (`{"state": "OFF"}`) to the device; `reported` holds the vocabulary fields the
      device has reported so far, for families whose command depends on what the
      device is (a Shelly dimmer's `Light.Set` against a relay's `Switch.Set`).
    - `decode_topic`: set by dialects whose topics each carry one value (Homie), so
      the topic says which field the payload is; used instead of `decode_state`.
      It gets the device's own `memory` (what earlier messages taught, such as a
      self-description), the topic below the device's `topic` and the payload, and
      returns None for a message with nothing to apply (ignored, not rejected).
    - `channel`: set by families whose devices have numbered channels that the site
      config maps one entry each (Shelly's `switch:0`, `switch:1`, ... with
      `channel: N`): the dialect of the entries of channel N. Without it, a device
      entry cannot name a channel.
    """

    name: str
    routes: Callable[[str], dict[str, TopicKind]]
    decode_state: Callable[[bytes], DevicePayload]
    decode_availability: Callable[[bytes], bool | None]
    command: Callable[[str, Mapping[str, Any], Collection[str]], list[tuple[str, bytes]]]
    decode_topic: TopicDecoder | None = None
    channel: Callable[[int], Dialect] | None = None
