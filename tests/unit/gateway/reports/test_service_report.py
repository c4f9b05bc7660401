"""The service report from hand-made records, against figures worked out by hand.

Two days (Monday 23 and Tuesday 24 November 2026, Europe/Berlin) in three rooms:
commands with and without confirmation, alerts acknowledged, resolved or left open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.reports.places import RoomPlace
from gateway.reports.service import COLUMNS, service_report
from gateway.reports.table import Bucket, GroupBy, Report, ReportWindow
from gateway.storage.service_records import AlertRecord, Confirmation, SentCommand

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


PLACES = {
    "orion": RoomPlace("orion", "hq", "2", "meeting"),
    "lyra": RoomPlace("lyra", "hq", "2", "meeting"),
    "vega": RoomPlace("vega", "annex", "1", "open"),
}
COMMANDS = [
    SentCommand(at("2026-11-22T23:59:59"), "orion", "orion-light", "light"),  # before the window
    SentCommand(at("2026-11-23T09:00"), "orion", "orion-light", "light"),
    SentCommand(at("2026-11-23T09:00"), "orion", "orion-hvac", "hvac"),
    SentCommand(at("2026-11-23T18:00"), "orion", "orion-light", "light"),
    SentCommand(at("2026-11-24T09:00"), "orion", "orion-light", "light"),  # never confirmed
    SentCommand(at("2026-11-23T10:00"), "vega", "vega-light", "light"),
    SentCommand(at("2026-11-24T23:59:59.5"), "lyra", "lyra-light", "light"),
    SentCommand(at("2026-11-23T10:00"), "nowhere", "lost-light", "light"),  # a room no one knows
]
CONFIRMATIONS = [
    Confirmation(at("2026-11-23T09:00"), "orion", "orion-light", "light", 200.0),
    Confirmation(at("2026-11-23T09:00"), "orion", "orion-hvac", "hvac", 1500.0),
    Confirmation(at("2026-11-23T18:00"), "orion", "orion-light", "light", 600.0),
    Confirmation(at("2026-11-23T10:00"), "vega", "vega-light", "light", 100.0),
    # Sent in the window, confirmed after its end: it counts, in the day it was sent.
    Confirmation(at("2026-11-24T23:59:59.5"), "lyra", "lyra-light", "light", 800.0),
]


def alert(
    seq: int, when: str, room: str | None, rule: str, acked: float | None, resolved: float | None
) -> AlertRecord:
    raised = at(when)
    return AlertRecord(
        seq,
        raised,
        room,
        rule,
        None if acked is None else raised + acked,
        None if resolved is None else raised + resolved,
    )


ALERTS = [
    alert(1, "2026-11-23T10:00", "orion", "co2-ventilation-alert", 120, 600),
    alert(2, "2026-11-23T11:00", "orion", "door-held-open", 60, 60),  # resolved at once: acked then too
    alert(3, "2026-11-23T14:00", "orion", "co2-ventilation-alert", 300, None),
    alert(4, "2026-11-23T16:00", "orion", "co2-ventilation-alert", None, None),
    alert(5, "2026-11-24T08:00", "vega", "co2-ventilation-alert", 30, None),
    alert(6, "2026-11-23T12:00", None, "webhooks", None, None),  # of no room: in no report
]


def report(group_by: GroupBy = GroupBy.ROOM, bucket: Bucket = Bucket.DAY, **filters: Any) -> Report:
    window = ReportWindow(
        start=datetime(2026, 11, 23, tzinfo=BERLIN),
        end=datetime(2026, 11, 25, tzinfo=BERLIN),
        timezone="Europe/Berlin",
        group_by=group_by,
        bucket=bucket,
        **filters,
    )
    return service_report(COMMANDS, CONFIRMATIONS, ALERTS, PLACES, window)


def figures(*values: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS, values, strict=True))


NO_ALERTS = (0, 0, None, None, 0, None, None, 0)


def test_rows_per_room_and_day_hold_the_hand_computed_figures() -> None:
    rows = {
        (r.group["room"], r.bucket_start.isoformat() if r.bucket_start else None): r for r in report().rows
    }
    assert set(rows) == {
        ("orion", "2026-11-23T00:00:00+01:00"),
        ("orion", "2026-11-24T00:00:00+01:00"),
        ("lyra", "2026-11-24T00:00:00+01:00"),
        ("vega", "2026-11-23T00:00:00+01:00"),
        ("vega", "2026-11-24T00:00:00+01:00"),
    }
    # Confirmations 200, 600, 1500 ms: p50 600, p95 600 + 0.9 * 900. Acknowledged after
    # 60, 120, 300 s: p50 120, p95 120 + 0.9 * 180; resolved after 60, 600 s: p50 330,
    # p95 60 + 0.95 * 540. Three CO2 alerts and a door alert: two repeats.
    assert rows[("orion", "2026-11-23T00:00:00+01:00")].figures == figures(
        3, 3, 600.0, 1410.0, 4, 3, 120.0, 282.0, 2, 330.0, 573.0, 2
    )
    assert rows[("orion", "2026-11-24T00:00:00+01:00")].figures == figures(1, 0, None, None, *NO_ALERTS)
    assert rows[("lyra", "2026-11-24T00:00:00+01:00")].figures == figures(1, 1, 800.0, 800.0, *NO_ALERTS)
    assert rows[("vega", "2026-11-23T00:00:00+01:00")].figures == figures(1, 1, 100.0, 100.0, *NO_ALERTS)
    assert rows[("vega", "2026-11-24T00:00:00+01:00")].figures == figures(
        0, 0, None, None, 1, 1, 30.0, 30.0, 0, None, None, 0
    )
    assert rows[("orion", "2026-11-23T00:00:00+01:00")].group == {
        "building": "hq",
        "floor": "2",
        "room": "orion",
    }


def test_totals_cover_the_window_and_repeats_are_listed_by_room_and_rule() -> None:
    r = report()
    # Confirmations 100, 200, 600, 800, 1500: p95 800 + 0.8 * 700. Acknowledged after
    # 30, 60, 120, 300: p50 90, p95 120 + 0.85 * 180.
    assert r.totals == figures(6, 5, 600.0, 1360.0, 5, 4, 90.0, 273.0, 2, 330.0, 573.0, 2)
    assert r.meta["repeated"] == [
        {"building": "hq", "floor": "2", "room": "orion", "rule": "co2-ventilation-alert", "alerts": 3}
    ]
    assert r.meta["by_device_kind"] == [
        {
            "device_kind": "hvac",
            "commands": 1,
            "confirmed": 1,
            "confirm_p50_ms": 1500.0,
            "confirm_p95_ms": 1500.0,
        },
        # 100, 200, 600, 800: p50 400, p95 600 + 0.85 * 200.
        {
            "device_kind": "light",
            "commands": 5,
            "confirmed": 4,
            "confirm_p50_ms": 400.0,
            "confirm_p95_ms": 770.0,
        },
    ]


def test_a_scope_keeps_its_buildings_only_in_rows_and_totals() -> None:
    r = report(buildings=frozenset({"annex"}))
    assert {row.group["building"] for row in r.rows} == {"annex"}
    assert (r.totals["commands"], r.totals["alerts"], r.totals["confirm_p50_ms"]) == (1, 1, 100.0)
    assert r.meta["repeated"] == []


def test_by_building_over_the_whole_window() -> None:
    r = report(GroupBy.BUILDING, Bucket.NONE)
    rows = {row.group["building"]: row for row in r.rows}
    assert set(rows) == {"hq", "annex"}
    assert rows["hq"].bucket_start is None
    # hq: orion's 4 commands and lyra's 1; confirmations 200, 600, 800, 1500.
    assert rows["hq"].figures == figures(5, 4, 700.0, 1395.0, 4, 3, 120.0, 282.0, 2, 330.0, 573.0, 2)


def test_by_device_kind_the_rows_carry_command_figures_and_the_totals_the_alerts() -> None:
    r = report(GroupBy.DEVICE_KIND, Bucket.NONE)
    rows = {row.group["device_kind"]: row.figures for row in r.rows}
    assert rows["hvac"] == figures(1, 1, 1500.0, 1500.0, *([None] * 8))
    assert rows["light"] == figures(5, 4, 400.0, 770.0, *([None] * 8))
    assert r.totals["alerts"] == 5


def test_filters_by_floor_room_and_type() -> None:
    assert {row.group["room"] for row in report(room="lyra").rows} == {"lyra"}
    assert {row.group["room"] for row in report(room_type="open").rows} == {"vega"}
    assert {row.group["room"] for row in report(floor="2").rows} == {"orion", "lyra"}


def test_csv_has_a_line_per_row_and_the_totals_last() -> None:
    lines = report(GroupBy.BUILDING, Bucket.NONE).as_csv().splitlines()
    assert lines[0] == "building,bucket_start," + ",".join(COLUMNS)
    assert "annex,,1,1,100.0,100.0,1,1,30.0,30.0,0,,,0" in lines
    assert lines[-1] == "total,,6,5,600.0,1360.0,5,4,90.0,273.0,2,330.0,573.0,2"
