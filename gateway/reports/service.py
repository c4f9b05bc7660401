"""The service report: how fast officegw and the facilities team respond.

- Commands: each command officegw sent (its first attempt; retries are the same
  command) and whether, and how long after that first attempt, the device reported
  the commanded state (`confirm_*_ms`). A confirmation counts in the bucket its
  command was sent in, so `confirmed` never exceeds `commands` in a row. A command
  replaced by a newer one for the same device before it was confirmed, or given up
  on (an alert), counts as not confirmed.
- Alerts raised in the window, how many were acknowledged and resolved so far, and
  the time from raising to acknowledging (`ack_*_s`) and to resolving
  (`resolve_*_s`). Acknowledgements made after the window count: a past week's
  figures grow as late acknowledgements come in.
- `repeated_alerts`: alerts that repeat an alert of the same rule in the same room
  within the row (its group and bucket): a room whose CO2 alert fires three times in
  a day has 2 on that day. `meta.repeated` lists every room and rule that alerted
  more than once over the whole window.

Percentiles interpolate linearly between the closest ranks (gateway/reports/figures.py).
Rows are the groups and buckets that had a command or an alert; `group_by=device_kind`
groups the command figures by the device's kind (light, hvac, lock, ...), and leaves
the alert figures to the totals (alerts are about rooms, not devices).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from gateway.config import Settings
from gateway.reports.figures import percentiles, rounded
from gateway.reports.places import RoomPlace, SnapshotSource, group_of, places_kept, room_places
from gateway.reports.site_time import Buckets, bucket_label
from gateway.reports.table import Figure, GroupBy, Report, ReportRow, ReportWindow
from gateway.storage import service_records
from gateway.storage.service_records import AlertRecord, Confirmation, SentCommand
from gateway.storage.sqlite_store import Store

NAME = "service"
COLUMNS = (
    "commands",
    "confirmed",
    "confirm_p50_ms",
    "confirm_p95_ms",
    "alerts",
    "acked",
    "ack_p50_s",
    "ack_p95_s",
    "resolved",
    "resolve_p50_s",
    "resolve_p95_s",
    "repeated_alerts",
)
ALERT_COLUMNS = COLUMNS[4:]
UNKNOWN_KIND = "unknown"

# A row's key: its group's (field, value) pairs and its bucket's start.
_Key = tuple[tuple[tuple[str, str], ...], float | None]


@dataclass(slots=True)
class _Tally:
    commands: int = 0
    confirm_ms: list[float] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)

    def figures(self, *, with_alerts: bool = True) -> dict[str, Figure]:
        p50, p95 = percentiles(self.confirm_ms, 50, 95)
        figures: dict[str, Figure] = {
            "commands": self.commands,
            "confirmed": len(self.confirm_ms),
            "confirm_p50_ms": rounded(p50),
            "confirm_p95_ms": rounded(p95),
        }
        if not with_alerts:
            return figures | dict.fromkeys(ALERT_COLUMNS)
        acked = [a.acked_at - a.at for a in self.alerts if a.acked_at is not None]
        resolved = [a.resolved_at - a.at for a in self.alerts if a.resolved_at is not None]
        repeats = len(self.alerts) - len({(a.room, a.rule) for a in self.alerts})
        ack50, ack95 = percentiles(acked, 50, 95)
        resolve50, resolve95 = percentiles(resolved, 50, 95)
        return figures | {
            "alerts": len(self.alerts),
            "acked": len(acked),
            "ack_p50_s": rounded(ack50),
            "ack_p95_s": rounded(ack95),
            "resolved": len(resolved),
            "resolve_p50_s": rounded(resolve50),
            "resolve_p95_s": rounded(resolve95),
            "repeated_alerts": repeats,
        }


def confirm_within(settings: Settings) -> float:
    """The longest a confirmation can come after its command's first attempt: the
    actuator waits confirm_timeout, doubling, after each of max_attempts sends."""
    a = settings.actuation
    return a.confirm_timeout * float(2**a.max_attempts - 1) + 1.0


def build_service(
    store: Store,
    window: ReportWindow,
    settings: Settings,
    *,
    snapshot: SnapshotSource | None = None,
    lifecycles: Mapping[int, tuple[float | None, float | None]] | None = None,
) -> Report:
    """`snapshot`: where the auto-registered rooms are (default: `store`);
    `lifecycles`: alert -> (acknowledged at, resolved at) when the alert states are
    kept elsewhere than the file's events (a shared store)."""
    start, end = window.start.timestamp(), window.end.timestamp()
    places = room_places(settings, snapshot or store)
    # Both reads from one snapshot of the store, on a connection of the report's own.
    with store.reader() as db:
        commands, confirmations = service_records.commands(db, start, end, confirm_within(settings))
        alerts = service_records.alerts(db, start, end)
    if lifecycles is not None:
        alerts = [_with_lifecycle(a, lifecycles.get(a.seq, (None, None))) for a in alerts]
    return service_report(commands, confirmations, alerts, places, window)


def _with_lifecycle(alert: AlertRecord, lifecycle: tuple[float | None, float | None]) -> AlertRecord:
    return alert._replace(acked_at=lifecycle[0], resolved_at=lifecycle[1])


def service_report(
    commands: Iterable[SentCommand],
    confirmations: Iterable[Confirmation],
    alerts: Iterable[AlertRecord],
    places: Mapping[str, RoomPlace],
    window: ReportWindow,
) -> Report:
    """The report from what the store holds of the window (pure: no I/O, no clock)."""
    zone = ZoneInfo(window.timezone)
    rooms = places_kept(places, window)
    by_kind = window.group_by is GroupBy.DEVICE_KIND
    start, end = window.start.timestamp(), window.end.timestamp()
    bucket_of = Buckets(start, end, window.bucket, zone).of
    # Each room's row group, worked out once: a report goes through many records a room.
    groups = {room: group_of(place, window.group_by) for room, place in rooms.items()} if not by_kind else {}

    def group(room: str | None, kind: str | None) -> tuple[tuple[str, str], ...] | None:
        if room not in rooms:
            return None
        return (("device_kind", kind or UNKNOWN_KIND),) if by_kind else groups[room]

    tallies: dict[_Key, _Tally] = defaultdict(_Tally)
    total = _Tally()
    kinds: dict[str, _Tally] = defaultdict(_Tally)
    for at, room, _, kind in commands:
        if start <= at < end and (g := group(room, kind)) is not None:
            tallies[(g, bucket_of(at))].commands += 1
            total.commands += 1
            kinds[kind or UNKNOWN_KIND].commands += 1
    for sent_at, room, _, kind, confirm_ms in confirmations:
        if start <= sent_at < end and (g := group(room, kind)) is not None:
            tallies[(g, bucket_of(sent_at))].confirm_ms.append(confirm_ms)
            total.confirm_ms.append(confirm_ms)
            kinds[kind or UNKNOWN_KIND].confirm_ms.append(confirm_ms)
    raised: list[AlertRecord] = []
    for alert in alerts:
        if start <= alert.at < end and (g := group(alert.room, None)) is not None:
            raised.append(alert)
            total.alerts.append(alert)
            if not by_kind:
                tallies[(g, bucket_of(alert.at))].alerts.append(alert)

    labels = {bucket: bucket_label(bucket, zone) for _, bucket in tallies}
    rows = [
        ReportRow(dict(g), labels[bucket], tally.figures(with_alerts=not by_kind))
        for (g, bucket), tally in sorted(tallies.items(), key=_row_order)
    ]
    return Report(
        name=NAME,
        window=window,
        columns=COLUMNS,
        rows=rows,
        totals=total.figures(),
        meta={
            "units": {"confirm": "ms", "ack": "s", "resolve": "s"},
            "percentiles": "linear interpolation between the closest ranks",
            "by_device_kind": [
                {"device_kind": kind, **_command_figures(tally)} for kind, tally in sorted(kinds.items())
            ],
            "repeated": _repeated(raised, rooms),
        },
    )


def _command_figures(tally: _Tally) -> dict[str, Figure]:
    figures = tally.figures(with_alerts=False)
    return {name: figures[name] for name in COLUMNS[:4]}


def _repeated(alerts: Sequence[AlertRecord], rooms: Mapping[str, RoomPlace]) -> list[dict[str, object]]:
    """Rooms and rules with more than one alert in the window, the most alerts first."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for alert in alerts:
        if alert.room is not None:
            counts[(alert.room, alert.rule or "")] += 1
    ranked = sorted(((-n, room, rule) for (room, rule), n in counts.items() if n > 1))
    return [
        {
            "building": rooms[room].building,
            "floor": rooms[room].floor,
            "room": room,
            "rule": rule or None,
            "alerts": -negative,
        }
        for negative, room, rule in ranked
    ]


def _row_order(item: tuple[_Key, _Tally]) -> tuple[tuple[tuple[str, str], ...], float]:
    (group, bucket), _ = item
    return group, bucket if bucket is not None else 0.0
