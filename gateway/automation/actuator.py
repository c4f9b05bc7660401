"""Whether, when and how often a command goes out to a device.

Pure and clock-injected like the rules: the gateway feeds it commands, device
reports and ticks, and publishes what it returns. It owns four promises:

- **Confirmation**: a command is done when the device reports the commanded
  state; until then it is re-sent with doubling back-off, and a device that never
  confirms raises an alert.
- **Debounce**: rules switch a device at most once per `min_switch_interval`; a
  later wish within the window is kept (latest wins) and sent when it ends.
- **Manual override**: a state change officegw did not command (a wall switch, or
  a manual command through the API) pauses the rules for that device until the
  room is next vacant.
- **Priorities**: safety > manual > booking > energy. A command never undoes a
  claim of higher priority; claims end on vacancy (manual), after a hold time
  (booking, safety), or when a higher claim replaces them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.codec import decode_as
from rules.types import Alert, Command, Priority, Severity

# Fields whose change is an actuation (not a sensor reading).
ACTUATED_FIELDS = ("state", "brightness", "setpoint", "mode")
_ACTUATED = frozenset(ACTUATED_FIELDS)
# A dimmer reports its level rounded; this close counts as done.
BRIGHTNESS_TOLERANCE = 2


@dataclass(frozen=True, slots=True)
class ActuationPolicy:
    confirm_timeout: float = 3.0
    max_attempts: int = 4
    min_switch_interval: float = 30.0
    override_release: Literal["vacant", "never"] = "vacant"
    booking_hold: float = 3600.0
    safety_hold: float = 3600.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A command to publish now."""

    device_id: str
    payload: dict[str, Any]
    attempt: int
    command: Command


@dataclass(frozen=True, slots=True)
class Decision:
    """What happened to a submitted command, for logs, events and the API."""

    outcome: Literal["sent", "unchanged", "deferred", "suppressed"]
    detail: str = ""
    outgoing: Outgoing | None = None


@dataclass(slots=True)
class _Pending:
    command: Command
    attempts: int
    next_retry_at: float
    # When the first attempt went out: confirmation time counts from there.
    first_sent_at: float


@dataclass(frozen=True, slots=True)
class InFlight:
    """A command sent and not confirmed yet (see `Actuator.in_flight`)."""

    command: Command
    attempts: int
    first_sent_at: float


@dataclass(frozen=True, slots=True)
class Claim:
    priority: Priority
    room_id: str
    since: float
    until: float | None  # None: until released (vacancy or a higher claim)
    reason: str


@dataclass(slots=True)
class Actuator:
    policy: ActuationPolicy = field(default_factory=ActuationPolicy)
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _deferred: dict[str, Command] = field(default_factory=dict)
    _last_switch: dict[str, float] = field(default_factory=dict)
    _reported: dict[str, dict[str, Any]] = field(default_factory=dict)
    _claims: dict[str, Claim] = field(default_factory=dict)

    # Commands

    def submit(self, command: Command, now: float) -> Decision:
        device = command.device_id
        claim = self._active_claim(device, now)
        if claim is not None and claim.priority > command.priority:
            return Decision("suppressed", f"held by {claim.priority.name.lower()} ({claim.reason})")
        if _matches(self._reported.get(device, {}), command.payload) and device not in self._pending:
            self._claim(command, now)
            return Decision("unchanged", "device already reports this state")
        if command.priority <= Priority.BOOKING:
            last = self._last_switch.get(device)
            if last is not None and now - last < self.policy.min_switch_interval:
                self._deferred[device] = command
                return Decision("deferred", f"switched {now - last:.0f} s ago")
        self._deferred.pop(device, None)
        self._claim(command, now)
        return Decision("sent", outgoing=self._send(command, now, attempt=1))

    def _send(self, command: Command, now: float, attempt: int) -> Outgoing:
        earlier = self._pending.get(command.device_id)
        first_sent_at = earlier.first_sent_at if attempt > 1 and earlier is not None else now
        self._pending[command.device_id] = _Pending(
            command, attempt, now + self.policy.confirm_timeout * 2 ** (attempt - 1), first_sent_at
        )
        self._last_switch[command.device_id] = now
        return Outgoing(command.device_id, command.payload, attempt, command)

    def _claim(self, command: Command, now: float) -> None:
        if command.priority == Priority.ENERGY:
            return
        hold = {
            Priority.BOOKING: self.policy.booking_hold,
            Priority.SAFETY: self.policy.safety_hold,
        }.get(command.priority)
        self._claims[command.device_id] = Claim(
            command.priority, command.room_id, now, None if hold is None else now + hold, command.rule
        )

    def _active_claim(self, device_id: str, now: float) -> Claim | None:
        claim = self._claims.get(device_id)
        if claim is not None and claim.until is not None and now >= claim.until:
            del self._claims[device_id]
            return None
        return claim

    # Device reports

    def report(self, device_id: str, room_id: str, fields: Mapping[str, Any], now: float) -> str | None:
        """Takes a device's report; returns "confirmed", "override" or None."""
        # Most reports (sensors) carry no actuated field: said in one C-level pass.
        if _ACTUATED.isdisjoint(fields):
            return None
        actuated = {key: fields[key] for key in ACTUATED_FIELDS if key in fields}
        previous = self._reported.get(device_id)
        merged = {**(previous or {}), **actuated}
        self._reported[device_id] = merged

        pending = self._pending.get(device_id)
        if pending is not None:
            if _matches(merged, pending.command.payload):
                del self._pending[device_id]
                return "confirmed"
            return None  # on its way (a dimmer ramping) or a stale report; the retry decides
        if previous is None or _matches(previous, actuated):
            return None  # first sight of the device, or nothing changed
        # A change nobody here asked for: a person did it.
        self._claims[device_id] = Claim(Priority.MANUAL, room_id, now, None, "changed at the device")
        self._deferred.pop(device_id, None)
        return "override"

    def manual(self, command: Command, now: float) -> Decision:
        """A person's command through the API: sent at once, and it pauses the rules."""
        manual = Command(
            command.device_id, command.payload, Priority.MANUAL, command.rule, command.room_id, command.reason
        )
        claim = self._active_claim(command.device_id, now)
        if claim is not None and claim.priority > Priority.MANUAL:
            return Decision("suppressed", f"held by {claim.priority.name.lower()} ({claim.reason})")
        self._deferred.pop(command.device_id, None)
        self._claim(manual, now)
        return Decision("sent", outgoing=self._send(manual, now, attempt=1))

    # Time

    def tick(self, now: float) -> tuple[list[Outgoing], list[Alert]]:
        outgoing: list[Outgoing] = []
        alerts: list[Alert] = []
        for device_id, pending in list(self._pending.items()):
            if now < pending.next_retry_at:
                continue
            if pending.attempts >= self.policy.max_attempts:
                del self._pending[device_id]
                alerts.append(
                    Alert(
                        rule=pending.command.rule,
                        room_id=pending.command.room_id,
                        severity=Severity.WARNING,
                        message=(
                            f"device {device_id} did not confirm {pending.command.payload} "
                            f"after {pending.attempts} attempts"
                        ),
                        at=now,
                    )
                )
                continue
            outgoing.append(self._send(pending.command, now, pending.attempts + 1))
        for device_id, command in list(self._deferred.items()):
            last = self._last_switch.get(device_id)
            if last is None or now - last >= self.policy.min_switch_interval:
                del self._deferred[device_id]
                decision = self.submit(command, now)
                if decision.outgoing is not None:
                    outgoing.append(decision.outgoing)
        return outgoing, alerts

    def room_vacant(self, room_id: str) -> list[str]:
        """Ends manual overrides in a room that is now empty; returns the devices released."""
        if self.policy.override_release != "vacant":
            return []
        released = [
            device
            for device, claim in self._claims.items()
            if claim.room_id == room_id and claim.priority == Priority.MANUAL
        ]
        for device in released:
            del self._claims[device]
        return released

    def forget(self, devices: Iterable[str]) -> None:
        """Drops everything about devices the registry forgot."""
        for device in devices:
            for table in (self._pending, self._deferred, self._last_switch, self._reported, self._claims):
                table.pop(device, None)

    # Snapshot: overrides and claims survive a restart. Pending retries do not (a
    # command not confirmed before the restart is decided afresh), nor do reported
    # states (devices report again; copying them would hold the lock for ms).

    def export(self) -> dict[str, Any]:
        # Shallow copies only: claims are frozen, and the snapshot serialises them
        # (orjson handles dataclasses) after the gateway's lock is released.
        return {"claims": dict(self._claims), "last_switch": dict(self._last_switch)}

    def restore(self, data: Mapping[str, Any]) -> None:
        self._claims = {device: decode_as(Claim, claim) for device, claim in data.get("claims", {}).items()}
        self._last_switch = dict(data.get("last_switch", {}))

    # Views

    def claims(self, now: float) -> dict[str, Claim]:
        return {device: claim for device in list(self._claims) if (claim := self._active_claim(device, now))}

    def in_flight(self, device_id: str) -> InFlight | None:
        """The device's command awaiting confirmation, if any: what a report that
        confirms it (`report` returning "confirmed") confirms, and since when."""
        pending = self._pending.get(device_id)
        if pending is None:
            return None
        return InFlight(pending.command, pending.attempts, pending.first_sent_at)

    def pending(self) -> dict[str, int]:
        """Device -> attempts so far, for commands not yet confirmed."""
        return {device: pending.attempts for device, pending in self._pending.items()}


def _matches(reported: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        have = reported.get(key)
        if key == "brightness" and isinstance(have, int | float) and isinstance(value, int | float):
            if abs(have - value) > BRIGHTNESS_TOLERANCE:
                return False
        elif have != value:
            return False
    return True
