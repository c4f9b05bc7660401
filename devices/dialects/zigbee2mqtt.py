"""The Zigbee2MQTT dialect: `zigbee2mqtt/<friendly name>`, `/set`, `/availability`.

Devices are mapped to rooms by the site config (`dialect: zigbee2mqtt, topic: ...`),
since a friendly name says nothing about where a device is. Payloads are close to
the native vocabulary; the differences are translated here and nowhere else:

- mmWave sensors say `presence` where PIRs say `occupancy`: both become
  `occupancy` (what a person is there means) and `presence` is kept, so the
  occupancy fusion also gets the radar's "hold".
- Zigbee2MQTT before 2.0 said `illuminance_lux`; 2.0 says `illuminance`.
- Locks report `lock_state` (locked/unlocked); their `action` can disagree with it
  and is an event, not a state, so `lock_state` wins. A plug's `child_lock` is a
  setting of the plug, not a door lock, and is not a lock state.
- `last_seen` is ISO 8601 on some installs and epoch milliseconds on others.
"""

from __future__ import annotations

from typing import Any

from devices.dialects.base import Dialect
from devices.dialects.native import command, decode_availability, decode_translated, routes
from devices.fields import DevicePayload

__all__ = ["DIALECT", "decode_availability", "decode_state", "translate"]

_LOCK_STATES = {"locked": "LOCK", "unlocked": "UNLOCK"}


def decode_state(payload: bytes) -> DevicePayload:
    return decode_translated(payload, translate)


def translate(raw: dict[str, Any]) -> dict[str, Any]:
    """A Zigbee2MQTT payload in the native vocabulary (unknown fields kept as they are)."""
    fields = dict(raw)
    if "presence" in fields and "occupancy" not in fields and isinstance(fields["presence"], bool):
        fields["occupancy"] = fields["presence"]
    if "illuminance_lux" in fields:
        lux = fields.pop("illuminance_lux")
        fields.setdefault("illuminance", lux)
    lock_state = fields.get("lock_state")
    if isinstance(lock_state, str) and lock_state.lower() in _LOCK_STATES:
        fields["state"] = _LOCK_STATES[lock_state.lower()]
    last_seen = fields.pop("last_seen", None)
    if last_seen is not None and "ts" not in fields:
        # Epoch milliseconds on some installs, ISO 8601 on others.
        fields["ts"] = last_seen / 1000 if isinstance(last_seen, int | float) else last_seen
    # Values Zigbee2MQTT reports as null ("not known") mean the same as absent.
    return {key: value for key, value in fields.items() if value is not None}


# Topics, availability and commands are the same as native (`<topic>/set`,
# `<topic>/availability`); only the payloads differ.
DIALECT = Dialect("zigbee2mqtt", routes, decode_state, decode_availability, command)
