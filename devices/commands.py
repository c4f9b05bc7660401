"""What a device of each kind accepts as a command, in the native vocabulary (DESIGN.md §2).

The same commands the rules send (rules/actions.py): lights and switches are
switched (lights also dimmed), HVAC units get a setpoint and a mode, locks are
locked and unlocked; sensors and badge readers take no commands at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

# Kind -> field -> the values it takes (None: any value the field allows).
ACCEPTS: Mapping[str, Mapping[str, tuple[str, ...] | None]] = {
    "light": {"state": ("ON", "OFF"), "brightness": None},
    "switch": {"state": ("ON", "OFF")},
    "hvac": {"setpoint": None, "mode": None},
    "lock": {"state": ("LOCK", "UNLOCK")},
    "sensor": {},
    "badge_reader": {},
}
_NAMES = {"hvac": "an HVAC unit", "badge_reader": "a badge reader"}


def _accepted(fields: Mapping[str, tuple[str, ...] | None]) -> str:
    return " and ".join(
        name if values is None else f"{name} {'/'.join(values)}" for name, values in fields.items()
    )


def refusal(kind: str | None, capabilities: Collection[str], payload: Mapping[str, Any]) -> str | None:
    """Why a device of `kind` that reported `capabilities` cannot take `payload`; None
    when it can. An unknown kind (a device not configured with one that has said
    nothing yet) takes anything."""
    if kind is None or kind not in ACCEPTS:
        return None
    fields = ACCEPTS[kind]
    device = _NAMES.get(kind, f"a {kind}")
    if not fields:
        return f"{device} takes no commands"
    for name, value in payload.items():
        if name not in fields:
            return f"{device} takes {_accepted(fields)}, not {name}"
        values = fields[name]
        if values is not None and value not in values:
            return f"{device} takes {_accepted(fields)}, not {name} {value}"
    if (
        kind == "light"
        and "brightness" in payload
        and "state" in capabilities
        and "brightness" not in capabilities
    ):
        return "this light reports no brightness: it only switches on and off"
    return None
