"""What every dialect provides, so that adding a device family is adding a module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from devices.fields import DevicePayload


class TopicKind(StrEnum):
    STATE = "state"
    COMMAND = "set"
    AVAILABILITY = "availability"


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one device family speaks MQTT.

    - `routes(topic)`: every topic a device mapped at `topic` (site config) uses, by kind.
    - `decode_state` / `decode_availability`: its messages in the native vocabulary;
      both raise `DecodeError` with a `RejectReason`.
    - `command(topic, payload)`: the messages that carry a native command
      (`{"state": "OFF"}`) to the device.
    """

    name: str
    routes: Callable[[str], dict[str, TopicKind]]
    decode_state: Callable[[bytes], DevicePayload]
    decode_availability: Callable[[bytes], bool]
    command: Callable[[str, Mapping[str, Any]], list[tuple[str, bytes]]]
