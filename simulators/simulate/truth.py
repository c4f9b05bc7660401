"""What really happened in the simulated site, for the score and for the JSONL file:
people per room per minute (and every change), meetings kept or skipped, faults,
lighting energy drawn, and the always-on baseline.

The JSONL (`--truth FILE`), one object a line, `kind` first:

    {"kind": "run", "scenario": "small-office", "seed": 7, "start": "...", "end": "...", "rooms": [...]}
    {"kind": "people", "t": "2030-01-07T09:01:00Z", "rooms": {"orion": 4, "office-201": 1}}
                                                     (rooms not listed: nobody in them)
    {"kind": "meeting", "id": "d0-m3", "room": "orion", "start": ..., "end": ..., "booked": true,
     "no_show": false, "late_by_s": 120.0, "people": 5, "booking": "5f2c...", "gateway_status": "ended"}
    {"kind": "fault", "fault": "flood", "device": "open-2/env", "start": ..., "end": ...,
     "detected": true, "detected_at": ..., "evidence": "quality.flooding"}
    {"kind": "energy", "room": "orion", "kwh": 0.412}
    {"kind": "energy_total", "kwh": 3.91, "baseline_kwh": 11.52, "gateway_kwh": 3.88}
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.simulate.people import Meeting
from simulators.simulate.plan import SitePlan
from simulators.simulate.schema import WEEKDAYS, Baseline


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class FaultRecord:
    index: int
    kind: str
    device: str | None  # <room>/<name>; None for broker and gateway restarts
    start: float
    end: float | None
    # Filled in by the runner: what the gateway said about it.
    injected: bool = True
    skipped: str | None = None  # why it was not injected (no restart command given)
    detected: bool = False
    detected_at: float | None = None
    evidence: str | None = None

    def line(self) -> dict[str, Any]:
        return {
            "kind": "fault",
            "fault": self.kind,
            "device": self.device,
            "start": iso(self.start),
            "end": iso(self.end) if self.end is not None else None,
            "injected": self.injected,
            "skipped": self.skipped,
            "detected": self.detected,
            "detected_at": iso(self.detected_at) if self.detected_at is not None else None,
            "latency_s": round(self.detected_at - self.start, 1) if self.detected_at is not None else None,
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class MeetingRecord:
    meeting: Meeting
    requested: bool = False  # the booking was asked for (its time came within the run)
    booking_id: str | None = None
    refused: str | None = None  # why the booking API refused it
    gateway_status: str | None = None

    def line(self) -> dict[str, Any]:
        m = self.meeting
        return {
            "kind": "meeting",
            "id": m.id,
            "room": m.room,
            "start": iso(m.start),
            "end": iso(m.end),
            "booked": m.booked,
            "no_show": m.no_show,
            "late_by_s": round(m.late_by, 1),
            "people": len(m.attendees),
            "booking": self.booking_id,
            "refused": self.refused,
            "gateway_status": self.gateway_status,
        }


@dataclass(slots=True)
class Truth:
    plan: SitePlan
    start: float
    end: float
    baseline: Baseline
    zone: ZoneInfo
    room_ids: list[str] = field(init=False)
    # (minute, people per room in room_ids order); (minute, site kWh drawn so far)
    minutes: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)
    kwh: list[tuple[float, float]] = field(default_factory=list)
    changes: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    meetings: dict[str, MeetingRecord] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    room_kwh: dict[str, float] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.room_ids = list(self.plan.rooms)
        self.changes = {room: [(self.start, 0)] for room in self.room_ids}
        self.kwh = [(self.start, 0.0)]

    # Written by the world as it runs

    def people(self, room: str, at: float, count: int) -> None:
        self.changes[room].append((at, count))

    def minute(self, at: float, counts: list[int], kwh: float) -> None:
        row = tuple(counts)
        self.minutes.append((at, row))
        self.kwh.append((at, kwh))
        self.pending.append(
            {
                "kind": "people",
                "t": iso(at),
                "rooms": {r: n for r, n in zip(self.room_ids, row, strict=True) if n},
            }
        )

    def finish(self, at: float, counts: list[int], kwh: float) -> None:
        if not self.kwh or self.kwh[-1][0] < at:
            self.kwh.append((at, kwh))

    def meeting(self, meeting: Meeting) -> None:
        self.meetings[meeting.id] = MeetingRecord(meeting)

    # Read by the score

    def count_at(self, room: str, at: float) -> int:
        changes = self.changes[room]
        index = bisect.bisect_right(changes, (at, float("inf"))) - 1
        return changes[index][1] if index >= 0 else 0

    def kwh_between(self, t0: float, t1: float) -> float:
        return self._kwh_at(t1) - self._kwh_at(t0)

    def _kwh_at(self, at: float) -> float:
        points = self.kwh
        index = bisect.bisect_right(points, (at, float("inf"))) - 1
        if index < 0:
            return 0.0
        if index + 1 >= len(points):
            return points[-1][1]
        (a, ka), (b, kb) = points[index], points[index + 1]
        return ka + (kb - ka) * (at - a) / (b - a) if b > a else kb

    def baseline_kwh(self, t0: float | None = None, t1: float | None = None) -> float:
        """Every light at full power during the baseline hours of working days, between t0 and t1."""
        t0 = self.start if t0 is None else t0
        t1 = self.end if t1 is None else t1
        watts = sum(d.watts for d in self.plan.devices.values() if d.kind == "light")
        seconds, day = 0.0, datetime.fromtimestamp(t0, self.zone).date()
        last = datetime.fromtimestamp(t1, self.zone).date()
        while day <= last:
            if WEEKDAYS[day.weekday()] in self.baseline.workdays:
                midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()
                low, high = midnight + self.baseline.hours[0], midnight + self.baseline.hours[1]
                seconds += max(0.0, min(high, t1) - max(low, t0))
            day += timedelta(days=1)
        return watts * seconds / 3.6e6

    def take_lines(self) -> list[dict[str, Any]]:
        lines, self.pending = self.pending, []
        return lines
