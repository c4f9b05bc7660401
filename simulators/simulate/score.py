"""The gateway against the ground truth: one score.

Pure: takes the truth, the gateway's occupancy events (`/v1/events?kind=occupancy`),
its booking statuses, its energy readings and the fault findings, and returns the
figures (`Score.figures()`, the JSON line) and a one-screen summary.

- `occupancy_accuracy`: share of room-minutes (every room, every whole minute of
  the run) where the gateway's occupied/vacant equals "anyone in the room".
  The gateway's state at a minute is that of its last occupancy event at or before
  it (vacant before the first). Room-minutes of a room while one of its devices is
  under an injected fault are also reported apart (`..._outside_faults`).
- `detection_latency_s`, `vacancy_latency_s`: from a room's real change (first
  person in, last person out) to the gateway's; median, 95th percentile, max.
- `checkins_right`, `releases_right`: booked meetings that took place and were
  checked in (or ended), and no-shows that were released.
- `kwh_gateway` vs `kwh_truth`: lighting energy of the UTC days (as far as the
  run covered them) the gateway counts in `energy.kwh_today`, against the energy
  the simulated lights drew over the same time; `lighting_savings`: one minus the
  gateway's kWh over the always-on baseline's (every light at full power during
  the baseline hours of working days, scenario `baseline:`).
- `faults_detected` of `faults_injected`: device faults the gateway flagged while
  they lasted (or just after), restarts it came back from (see runner.FaultWatch).
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from typing import Any

from simulators.simulate.truth import Truth


@dataclass(slots=True)
class Timeline:
    """One room's occupied/vacant as the gateway said it, by time."""

    changes: list[tuple[float, bool]] = field(default_factory=list)

    def add(self, at: float, occupied: bool) -> None:
        if self.changes and at < self.changes[-1][0]:
            bisect.insort(self.changes, (at, occupied))
        else:
            self.changes.append((at, occupied))

    def at(self, t: float) -> bool:
        index = bisect.bisect_right(self.changes, (t, True)) - 1
        return self.changes[index][1] if index >= 0 else False

    def first_change_after(self, t: float, occupied: bool, until: float) -> float | None:
        """When the gateway first says `occupied` at or after `t` (already: t), before `until`."""
        if self.at(t) == occupied:
            return t
        index = bisect.bisect_right(self.changes, (t, True))
        for at, state in self.changes[index:]:
            if at >= until:
                return None
            if state == occupied:
                return at
        return None


@dataclass(slots=True)
class EnergyDay:
    """The gateway's lighting kWh of one UTC day, last read at gateway time `clock`."""

    day_start: float
    clock: float
    kwh: float


def _spread(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def occupancy_figures(truth: Truth, timelines: dict[str, Timeline]) -> dict[str, Any]:
    faulted = _faulted_rooms(truth)
    right = total = right_clean = total_clean = 0
    for at, row in truth.minutes:
        if at >= truth.end:
            break
        for room, people in zip(truth.room_ids, row, strict=True):
            timeline = timelines.get(room)
            said = timeline.at(at) if timeline is not None else False
            ok = said == (people > 0)
            right += ok
            total += 1
            if not any(start <= at < end for start, end in faulted.get(room, ())):
                right_clean += ok
                total_clean += 1
    detections: list[float] = []
    vacancies: list[float] = []
    missed = 0
    for room in truth.room_ids:
        changes = truth.changes[room]
        timeline = timelines.get(room, Timeline())
        for i in range(1, len(changes)):
            (_, before), (t, now) = changes[i - 1], changes[i]
            if (before > 0) == (now > 0) or t >= truth.end:
                continue
            # The gateway has until the room's next real change to catch up.
            until = next(((tn for tn, n in changes[i + 1 :] if (n > 0) != (now > 0))), truth.end)
            seen = timeline.first_change_after(t, now > 0, until)
            if seen is None:
                missed += 1
            elif now > 0:
                detections.append(seen - t)
            else:
                vacancies.append(seen - t)
    return {
        "occupancy_accuracy": _ratio(right, total),
        "occupancy_accuracy_outside_faults": _ratio(right_clean, total_clean),
        "occupancy_room_minutes": total,
        "detection_latency_s": _spread(detections),
        "vacancy_latency_s": _spread(vacancies),
        "changes_missed": missed,
    }


def _faulted_rooms(truth: Truth) -> dict[str, list[tuple[float, float]]]:
    """Rooms whose sensors are under an injected fault, and when (until 10 min after it)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for record in truth.faults:
        if record.device is None or not record.injected or record.kind in ("flood", "battery_drain"):
            continue
        room = record.device.split("/", 1)[0]
        end = (record.end if record.end is not None else truth.end) + 600
        spans.setdefault(room, []).append((record.start, end))
    return spans


# A booking is judged once the gateway had time to decide it: its start plus the
# default check-in window (600 s) and some slack, before the run ended.
DECIDED_AFTER = 1200.0


def booking_figures(truth: Truth) -> dict[str, Any]:
    asked = [m for m in truth.meetings.values() if m.requested]
    made = [m for m in asked if m.booking_id is not None]
    decided = [m for m in made if m.meeting.start + DECIDED_AFTER <= truth.end]
    kept = [m for m in decided if not m.meeting.no_show]
    skipped = [m for m in decided if m.meeting.no_show]
    checked = sum(1 for m in kept if m.gateway_status in ("checked_in", "ended"))
    released = sum(1 for m in skipped if m.gateway_status == "released")
    refusals = sorted({m.refused for m in asked if m.refused})
    return {
        "bookings": len(made),
        "bookings_refused": len(asked) - len(made),
        "bookings_undecided": len(made) - len(decided),
        "checkins_expected": len(kept),
        "checkins_right": checked,
        "releases_expected": len(skipped),
        "releases_right": released,
        "bookings_right": _ratio(checked + released, len(decided)),
        **({"booking_refusals": refusals[:3]} if refusals else {}),
    }


def energy_figures(truth: Truth, days: list[EnergyDay]) -> dict[str, Any]:
    gateway = sum(day.kwh for day in days)
    measured = sum(truth.kwh_between(max(day.day_start, truth.start), day.clock) for day in days)
    baseline = sum(truth.baseline_kwh(max(day.day_start, truth.start), day.clock) for day in days)
    whole_truth = truth.kwh_between(truth.start, truth.end)
    whole_baseline = truth.baseline_kwh()
    return {
        "kwh_gateway": round(gateway, 3) if days else None,
        "kwh_truth": round(measured, 3) if days else None,
        "kwh_error": _ratio(gateway - measured, measured) if days else None,
        "baseline_kwh": round(baseline, 3) if days else None,
        "lighting_savings": _ratio(baseline - gateway, baseline) if days and baseline else None,
        "lighting_savings_truth": _ratio(whole_baseline - whole_truth, whole_baseline),
    }


def fault_figures(truth: Truth) -> dict[str, Any]:
    injected = [f for f in truth.faults if f.injected]
    detected = [f for f in injected if f.detected]
    return {
        "faults_injected": len(injected),
        "faults_detected": len(detected),
        "faults_skipped": len(truth.faults) - len(injected),
        "faults": [
            {
                "kind": f.kind,
                "device": f.device,
                "detected": f.detected,
                "latency_s": round(f.detected_at - f.start, 1) if f.detected_at is not None else None,
                **({"skipped": f.skipped} if f.skipped else {}),
            }
            for f in truth.faults
        ],
    }


def summary(figures: dict[str, Any]) -> list[str]:
    """The one-screen summary printed before the JSON line."""

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    def spread(value: dict[str, Any]) -> str:
        if not value or not value.get("n"):
            return "n/a"
        return f"median {value['median']} s, p95 {value['p95']} s, max {value['max']} s (n={value['n']})"

    f = figures
    gw = f.get("gateway", {})
    lines = [
        f"officegw simulate: {f['scenario']} seed {f['seed']}, {f['hours']:g} h from {f['start']}"
        f" at speed {f['speed']}, {f['messages']:,} messages in {f['wall_s']:.1f} s",
        f"  occupancy accuracy    {pct(f.get('occupancy_accuracy'))}"
        f" of {f.get('occupancy_room_minutes', 0):,}"
        f" room-minutes ({pct(f.get('occupancy_accuracy_outside_faults'))} outside faulted rooms)",
        f"  detection latency     {spread(f.get('detection_latency_s', {}))}",
        f"  vacancy latency       {spread(f.get('vacancy_latency_s', {}))}",
    ]
    if f.get("bookings") is not None:
        lines.append(
            f"  bookings              {f['bookings']} made ({f.get('bookings_refused', 0)} refused):"
            f" check-ins {f['checkins_right']}/{f['checkins_expected']},"
            f" releases {f['releases_right']}/{f['releases_expected']}"
        )
        for refusal in f.get("booking_refusals", []):
            lines.append(f"    refused: {refusal}")
    lines.append(
        f"  faults                {f['faults_detected']}/{f['faults_injected']} detected"
        + (f", {f['faults_skipped']} not injected" if f.get("faults_skipped") else "")
    )
    for fault in f.get("faults", []):
        state = (
            f"skipped: {fault['skipped']}"
            if fault.get("skipped")
            else (f"detected after {fault['latency_s']} s" if fault["detected"] else "NOT DETECTED")
        )
        lines.append(f"    {fault['kind']:<16} {fault['device'] or '':<24} {state}")
    lines.append(
        f"  lighting energy       gateway {f.get('kwh_gateway')} kWh, truth {f.get('kwh_truth')} kWh"
        f" (error {pct(f.get('kwh_error'))}), baseline {f.get('baseline_kwh')} kWh"
    )
    lines.append(
        f"  lighting savings      {pct(f.get('lighting_savings'))} vs always-on"
        f" (truth: {pct(f.get('lighting_savings_truth'))})"
    )
    if gw:
        lines.append(
            f"  gateway               behind by {gw.get('lag_s_p50')} s median, {gw.get('lag_s_max')} s max;"
            f" CPU {gw.get('cpu_pct')} %, memory {gw.get('rss_mb_max')} MB;"
            f" {gw.get('handler_errors', 0):g} handler errors"
        )
    return lines
