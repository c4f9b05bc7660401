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
    SiteSlices,
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
    site = SiteSlices.of(edges, prices)
    business_s, business_money = business_seconds(business, site, len(buckets))
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
            power = rows.power_starts(room.id, start - hold, end, hold)
            readings = [
                DeviceReadings(device, meters.get(device, ()), power.get(device, ()))
                for device in sorted(set(meters) | set(power))
            ]
            o = occupancy[room.id]
            vacant = spans_in_state(VACANT, o.initial, o.changes, start, end)
            measured, lost = room_energy(readings, vacant, site, edges, hold)
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
                found, missing = avoided_by(offs, switches, business, site, end, hold)
                avoided += [(room, a) for a in found]
                unmeasured += missing

    meta: dict[str, Any] = {
        "currency": tariff.currency,
        "tariff": tariff.describe(),
        "baseline": {"definition": BASELINE, "business_hours": settings.business_hours.window().describe()},
        "reading_hold_s": hold,
        "kwh_unattributed": round(unattributed, 4),
        "commands_unmeasured": unmeasured,
        **_by_rule(avoided, window),
    }
    return assemble(NAME, window, COLUMNS, rooms, buckets, sums, _figures, _over_time, meta)


def _by_rule(avoided: Sequence[tuple[ReportRoom, Avoided]], window: ReportWindow) -> dict[str, Any]:
    """savings_by_rule (over the window) and savings_by_rule_and_group (per group of the
    window's grouping): [{<group fields>, rule, commands, kwh, cost}], most kWh first."""
    by_rule: dict[str, list[float]] = {}
    by_group: dict[tuple[tuple[tuple[str, str], ...], str], list[float]] = {}
    groups: dict[str, tuple[tuple[str, str], ...]] = {}
    for room, a in avoided:
        group = groups.get(room.id)
        if group is None:
            group = groups[room.id] = tuple(room.group(window.group_by).items())
        rule = a.command.rule
        for entry in (by_rule.get(rule), by_group.get((group, rule))):
            if entry is not None:
                entry[0] += 1
                entry[1] += a.kwh
                entry[2] += a.cost
        if rule not in by_rule:
            by_rule[rule] = [1, a.kwh, a.cost]
        if (group, rule) not in by_group:
            by_group[(group, rule)] = [1, a.kwh, a.cost]

    def listed(totals: dict[Any, list[float]], fields: Any) -> list[dict[str, Any]]:
        ranked = sorted(totals.items(), key=lambda item: (-item[1][1], item[0]))
        return [
            {**fields(key), "commands": int(count), "kwh": round(kwh, 4), "cost": round(cost, 4)}
            for key, (count, kwh, cost) in ranked
        ]

    return {
        "savings_by_rule": listed(by_rule, lambda rule: {"rule": rule}),
        "savings_by_rule_and_group": listed(by_group, lambda key: {**dict(key[0]), "rule": key[1]}),
    }


def _over_time(cells: Sequence[EnergyCell]) -> EnergyCell:
    total = EnergyCell()
    for c in cells:
        total.kwh += c.kwh
        total.kwh_vacant += c.kwh_vacant
        total.cost += c.cost
        if c.baseline_kwh is not None:
            total.baseline_kwh = (total.baseline_kwh or 0.0) + c.baseline_kwh
            total.baseline_cost = (total.baseline_cost or 0.0) + (c.baseline_cost or 0.0)
    return total


def _figures(members: Sequence[tuple[ReportRoom, EnergyCell]], single: bool) -> dict[str, Figure]:
    kwh = vacant = cost = 0.0
    baseline: float | None = None
    saved = saved_cost = 0.0
    for _, c in members:
        kwh += c.kwh
        vacant += c.kwh_vacant
        cost += c.cost
        if c.baseline_kwh is not None:
            baseline = (baseline or 0.0) + c.baseline_kwh
            saved += c.baseline_kwh - c.kwh
            saved_cost += (c.baseline_cost or 0.0) - c.cost
    known = baseline is not None
    return {
        "kwh": round(kwh, 4),
        "kwh_vacant": round(vacant, 4),
        "cost": round(cost, 4),
        "baseline_kwh": round(baseline, 4) if baseline is not None else None,
        "saved_kwh": round(saved, 4) if known else None,
        "saved_cost": round(saved_cost, 4) if known else None,
    }
