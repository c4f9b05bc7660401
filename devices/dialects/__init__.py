"""Payload dialects: each module translates one device family's topics and payloads.

Adding a dialect is adding a module that defines `DIALECT` (see `base.Dialect`)
and naming it here.
"""

from __future__ import annotations

from devices.dialects import homie, native, shelly, tasmota, zigbee2mqtt
from devices.dialects.base import Dialect

DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (native.DIALECT, zigbee2mqtt.DIALECT, tasmota.DIALECT, shelly.DIALECT, homie.DIALECT)
}


def dialect_for(name: str, channel: int | None = None) -> Dialect:
    """The dialect a device entry speaks: its family's, bound to the entry's channel
    when it names one (only families with channels take one: see `Dialect.channel`)."""
    dialect = DIALECTS[name]
    if channel is None:
        return dialect
    if dialect.channel is None:
        raise ValueError(f"dialect {name!r} has no channels")
    return dialect.channel(channel)
