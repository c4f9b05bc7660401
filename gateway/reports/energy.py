"""The energy report: kWh, the part used in empty rooms, cost, and savings against a baseline.

Figures (columns, in order): kwh, kwh_vacant, cost, baseline_kwh, saved_kwh,
saved_cost. Method: rules/reporting/energy.py. A group's baseline and savings are
those of its rooms that have a baseline (reports.baseline_w, else their lights'
rated watts); null when none has.

meta: currency, tariff, baseline (definition, business hours), kwh_unattributed
(counted by meters across gaps longer than reading_hold), commands_unmeasured,
savings_by_rule ([{rule, commands, kwh, cost}] over the window, most kWh first)
and savings_by_rule_and_group (the same per group of the report: per room with
group_by=room).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import ReportsSection
from gateway.reports.grouping import Buckets, assemble
from gateway.reports.rooms import ReportRoom
from gateway.reports.table import Figure, Report, ReportWindow
from gateway.storage.report_queries import ReportSource
from rules.reporting.energy import (
    Avoided,
    DeviceReadings,
    OffCommand,
    SwitchReadings,
    avoided_by,
    business_seconds,
    room_energy,
)
from rules.reporting.occupancy import VACANT, spans_in_state
from rules.reporting.readings import JOULES_PER_KWH

NAME = "energy"
COLUMNS = ("kwh", "kwh_vacant", "cost", "baseline_kwh", "saved_kwh", "saved_cost")
BASELINE = (
    "each room's baseline_w drawn throughout business hours and never outside them; "
    "saved = baseline - measured"
)


@dataclass(slots=True)
class EnergyCell:
    """One room in one bucket: measured kWh and cost, and the baseline's (None without one)."""

    kwh: float = 0.0
    kwh_vacant: float = 0.0
    cost: float = 0.0
    baseline_kwh: float | None = None
    baseline_cost: float | None = None


def build_energy(
    source: ReportSource, window: ReportWindow, rooms: Sequence[ReportRoom], settings: ReportsSection
) -> Report:
    """`rooms`: the rooms the caller may see (gateway.reports.rooms.selected applies the
    window's filters to them first)."""
    zone = ZoneInfo(window.timezone)
    buckets = Buckets.of(window)
    edges = buckets.edges
    start, end = edges[0], edges[-1]
    hold = settings.reading_hold
    tariff = settings.tariff.tariff()
    prices = tariff.prices(start, end, zone)
    business = settings.business_hours.window().spans(start, end, zone)
    business_s, business_money = business_seconds(business, prices, edges)
    ids = [room.id for room in rooms]
    sums: dict[str, list[EnergyCell]] = {}
    unattributed = 0.0
    avoided: list[tuple[ReportRoom, Avoided]] = []
    unmeasured = 0
    with source.read() as rows:
        occupancy = rows.occupancy(ids, start, end)
        commands: dict[str, list[OffCommand]] = {}
        for c in rows.off_commands(ids, start, end):
            commands.setdefault(c.room, []).append(OffCommand(c.at, c.device, c.rule))
        for room in rooms:
            meters = rows.device_series(room.id, "energy", start - hold, end + hold)
            power = rows.device_series(room.id, "power", start - hold, end)
            readings = [
                DeviceReadings(device, meters.get(device, ()), power.get(device, ()))
                for device in sorted(set(meters) | set(power))
            ]
            o = occupancy[room.id]
            vacant = spans_in_state(VACANT, o.initial, o.changes, start, end)
            measured, lost = room_energy(readings, vacant, prices, edges, hold)
            unattributed += lost
            w = room.baseline_w
            sums[room.id] = [
                EnergyCell(
                    m.kwh,
                    m.kwh_vacant,
                    m.cost,
                    None if w is None else w * business_s[k] / JOULES_PER_KWH,
                    None if w is None else w * business_money[k] / JOULES_PER_KWH,
                )
                for k, m in enumerate(measured)
            ]
            offs = commands.get(room.id)
            if offs:
                switched = rows.device_series(room.id, "on", start - hold, end)
                switches = {
                    device: SwitchReadings(
                        power.get(device, ()), switched.get(device, ()), room.rated_watts.get(device)
                    )
                    for device in {c.device for c in offs}
                }
                found, missing = avoided_by(offs, switches, business, prices, end, hold)
                avoided += [(room, a) for a in found]
                unmeasured += missing

    meta: dict[str, Any] = {
        "currency": tariff.currency,
        "tariff": tariff.describe(),
        "baseline": {"definition": BASELINE, "business_hours": settings.business_hours.window().describe()},
        "reading_hold_s": hold,
        "kwh_unattributed": round(unattributed, 4),
        "commands_unmeasured": unmeasured,
        "savings_by_rule": _by_rule(avoided, None),
        "savings_by_rule_and_group": _by_rule(avoided, window),
    }
    return assemble(NAME, window, COLUMNS, rooms, buckets, sums, _figures, _over_time, meta)


def _by_rule(
    avoided: Sequence[tuple[ReportRoom, Avoided]], window: ReportWindow | None
) -> list[dict[str, Any]]:
    """Savings per rule (and per group of the window's grouping), most kWh first."""
    totals: dict[tuple[tuple[tuple[str, str], ...], str], list[float]] = {}
    for room, a in avoided:
        group = tuple(room.group(window.group_by).items()) if window is not None else ()
        entry = totals.setdefault((group, a.command.rule), [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += a.kwh
        entry[2] += a.cost
    ranked = sorted(totals.items(), key=lambda item: (-item[1][1], item[0]))
    return [
        {**dict(group), "rule": rule, "commands": int(count), "kwh": round(kwh, 4), "cost": round(cost, 4)}
        for (group, rule), (count, kwh, cost) in ranked
    ]


def _over_time(cells: Sequence[EnergyCell]) -> EnergyCell:
    known = [c for c in cells if c.baseline_kwh is not None]
    return EnergyCell(
        sum(c.kwh for c in cells),
        sum(c.kwh_vacant for c in cells),
        sum(c.cost for c in cells),
        sum(c.baseline_kwh or 0.0 for c in known) if known else None,
        sum(c.baseline_cost or 0.0 for c in known) if known else None,
    )


def _figures(members: Sequence[tuple[ReportRoom, EnergyCell]], single: bool) -> dict[str, Figure]:
    cells = [cell for _, cell in members]
    with_baseline = [c for c in cells if c.baseline_kwh is not None]
    baseline = saved = saved_cost = None
    if with_baseline:
        baseline = round(sum(c.baseline_kwh or 0.0 for c in with_baseline), 4)
        saved = round(sum((c.baseline_kwh or 0.0) - c.kwh for c in with_baseline), 4)
        saved_cost = round(sum((c.baseline_cost or 0.0) - c.cost for c in with_baseline), 4)
    return {
        "kwh": round(sum(c.kwh for c in cells), 4),
        "kwh_vacant": round(sum(c.kwh_vacant for c in cells), 4),
        "cost": round(sum(c.cost for c in cells), 4),
        "baseline_kwh": baseline,
        "saved_kwh": saved,
        "saved_cost": saved_cost,
    }
