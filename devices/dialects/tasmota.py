"""The Tasmota dialect: relays, plugs and energy meters (`tele/`, `stat/`, `cmnd/`).

A device is mapped by its Tasmota topic (`dialect: tasmota, topic: plug-orion`).
It reports on several topics; each payload says what it is, so the decoder needs
no topic:

- `stat/<t>/POWER`: the bare word `ON` / `OFF`;
- `stat/<t>/RESULT`, `tele/<t>/STATE`: JSON with `POWER` and, for dimmers,
  `Dimmer` (0-100 %);
- `tele/<t>/SENSOR`: JSON with `ENERGY` (`Power` W, `Total` kWh) and sensor
  objects such as `{"AM2301": {"Temperature": 22.1, "Humidity": 45}}`;
- `tele/<t>/LWT`: `Online` / `Offline` (retained).

Commands go to `cmnd/<t>/POWER` (`ON`/`OFF`) and `cmnd/<t>/Dimmer` (0-100).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from devices.dialects.base import Dialect, TopicKind
from devices.dialects.native import decode_availability, decode_translated
from devices.fields import DevicePayload

__all__ = ["DIALECT", "command", "decode_state", "routes", "translate"]

# Tasmota sensor readings -> native fields.
_SENSOR_FIELDS = {
    "Temperature": "temperature",
    "Humidity": "humidity",
    "Illuminance": "illuminance",
    "CarbonDioxide": "co2",
    "eCO2": "co2",
}


def routes(topic: str) -> dict[str, TopicKind]:
    return {
        f"stat/{topic}/POWER": TopicKind.STATE,
        f"stat/{topic}/RESULT": TopicKind.STATE,
        f"tele/{topic}/STATE": TopicKind.STATE,
        f"tele/{topic}/SENSOR": TopicKind.STATE,
        f"tele/{topic}/LWT": TopicKind.AVAILABILITY,
        f"cmnd/{topic}/POWER": TopicKind.COMMAND,
        f"cmnd/{topic}/Dimmer": TopicKind.COMMAND,
    }


def decode_state(payload: bytes) -> DevicePayload:
    word = payload.strip().upper()
    if word in (b"ON", b"OFF"):  # stat/<t>/POWER is a bare word, not JSON
        return DevicePayload(state=word.decode())  # type: ignore[arg-type]
    return decode_translated(payload, translate)


def translate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A Tasmota payload in the native vocabulary; what is not understood is left out."""
    fields: dict[str, Any] = {}
    power = raw.get("POWER", raw.get("POWER1"))
    if isinstance(power, str):
        fields["state"] = power.upper()
    dimmer = raw.get("Dimmer")
    if isinstance(dimmer, int | float) and not isinstance(dimmer, bool):
        fields["brightness"] = round(dimmer * 254 / 100)
    energy = raw.get("ENERGY")
    if isinstance(energy, Mapping):
        if "Power" in energy:
            fields["power"] = energy["Power"]
        if "Total" in energy:
            fields["energy"] = energy["Total"]
    for value in raw.values():
        if isinstance(value, Mapping) and value is not energy:
            for name, field in _SENSOR_FIELDS.items():
                if name in value:
                    fields.setdefault(field, value[name])
    return fields


def command(
    topic: str, payload: Mapping[str, Any], reported: Collection[str] = ()
) -> list[tuple[str, bytes]]:
    messages: list[tuple[str, bytes]] = []
    if payload.get("state") in ("ON", "OFF"):
        messages.append((f"cmnd/{topic}/POWER", str(payload["state"]).encode()))
    if isinstance(payload.get("brightness"), int):
        messages.append((f"cmnd/{topic}/Dimmer", str(round(payload["brightness"] * 100 / 254)).encode()))
    return messages


DIALECT = Dialect("tasmota", routes, decode_state, decode_availability, command)
