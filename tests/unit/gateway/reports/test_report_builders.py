"""The reports built from a real SQLite store: what the SQL reads, how rooms group, the
totals, CSV against JSON, readings not merged yet, and the bounds of an answer.

Three rooms on one Monday in Berlin (business hours 08:00-18:00):

| room | building | floor | type | capacity | occupied (local) | peak people |
|---|---|---|---|---|---|---|
| orion | hq | 2 | meeting | 10 | 09:00-13:00 | 3 |
| vega | hq | 3 | meeting | 4 | 12:00-20:00 | 6 |
| lyra | annex | 1 | office | 2 | since before the day, until 10:00 | 2 |
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Settings, settings_from_dict
from gateway.reports.catalog import ReportRefused, build_report
from gateway.reports.rooms import report_rooms
from gateway.reports.table import Bucket, GroupBy, Report, ReportWindow
from gateway.storage.bookings_store import SqliteBookingStore
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.report_queries import SqliteReportSource
from gateway.storage.sqlite_store import Store
from rules.bookings import Booking, BookingStatus

BERLIN = ZoneInfo("Europe/Berlin")
H = 3_600.0
PLACES = {"orion": ("hq", "2"), "vega": ("hq", "3"), "lyra": ("annex", "1")}
CONFIG: dict[str, Any] = {
    "site": {
        "timezone": "Europe/Berlin",
        "rooms": [
            {
                "id": "orion",
                "building": "hq",
                "floor": 2,
                "type": "meeting",
                "capacity": 10,
                "bookable": True,
            },
            {"id": "vega", "building": "hq", "floor": 3, "type": "meeting", "capacity": 4},
            {"id": "lyra", "building": "annex", "floor": 1, "type": "office", "capacity": 2},
        ],
        "devices": [{"id": "orion-light", "room": "orion", "kind": "light", "rated_watts": 50}],
    },
    "reports": {"tariff": {"price_per_kwh": 0.25}, "baseline_w": {"room_types": {"office": 20}}},
}


def at(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=BERLIN).timestamp()


def reading(room: str, metric: str, value: float, ts: float, device: str = "sensor") -> Reading:
    building, floor = PLACES[room]
    return Reading(f"{room}-{device}", room, building, floor, metric, value, ts, ts, "environment")


def event(room: str, at_: float, kind: str, **data: Any) -> StoredEvent:
    building, floor = PLACES[room]
    return StoredEvent(kind, room, building, floor, at_, data)


def occupancy(room: str, at_: float, old: str, new: str) -> StoredEvent:
    return event(room, at_, "occupancy", old=old, new=new)


EVENTS = [
    occupancy("lyra", at("2024-03-03T22:00"), "vacant", "occupied"),
    occupancy("lyra", at("2024-03-04T10:00"), "occupied", "vacant"),
    occupancy("orion", at("2024-03-04T09:00"), "vacant", "occupied"),
    occupancy("vega", at("2024-03-04T12:00"), "vacant", "occupied"),
    occupancy("orion", at("2024-03-04T13:00"), "occupied", "vacant"),
    event(
        "orion",
        at("2024-03-04T13:00"),
        "command",
        device="orion-light",
        payload={"state": "OFF"},
        rule="lights-off-when-vacant",
        attempt=1,
        status="sent",
    ),
    # A retry of the same command, and a command that was held back: neither counts again.
    event(
        "orion",
        at("2024-03-04T13:00") + 3,
        "command",
        device="orion-light",
        payload={"state": "OFF"},
        rule="lights-off-when-vacant",
        attempt=2,
        status="sent",
    ),
    event(
        "orion",
        at("2024-03-04T13:30"),
        "command",
        device="orion-light",
        payload={"state": "OFF"},
        rule="lights-off-when-vacant",
        status="suppressed",
    ),
    occupancy("vega", at("2024-03-04T20:00"), "occupied", "vacant"),
]
READINGS = [
    reading("orion", "people", 3, at("2024-03-04T09:00")),
    reading("orion", "people", 0, at("2024-03-04T13:00")),
    reading("vega", "people", 6, at("2024-03-04T12:30")),
    reading("vega", "people", 0, at("2024-03-04T20:00")),
    reading("lyra", "people", 2, at("2024-03-04T08:00")),
    # orion's light, reporting every hour: 50 W from 08:00 until the rule's OFF at 13:00;
    # on again at 15:00 for an hour.
    *(reading("orion", "power", 50, at(f"2024-03-04T{hour:02}:00"), "light") for hour in range(8, 13)),
    reading("orion", "power", 0, at("2024-03-04T13:00"), "light"),
    reading("orion", "power", 0, at("2024-03-04T14:00"), "light"),
    reading("orion", "power", 50, at("2024-03-04T15:00"), "light"),
    reading("orion", "power", 0, at("2024-03-04T16:00"), "light"),
    reading("orion", "temperature", 22, at("2024-03-04T09:00")),
    reading("orion", "temperature", 27, at("2024-03-04T11:00")),
    reading("orion", "co2", 800, at("2024-03-04T09:00")),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "officegw.db"
    db = Store(path)
    db.commit(READINGS, list(enumerate(EVENTS, start=1)), [], at("2024-03-04T21:00"))
    db.merge_recent()
    bookings = SqliteBookingStore(path)
    bookings.insert(
        Booking("b1", "orion", at("2024-03-04T09:00"), at("2024-03-04T10:00"), status=BookingStatus.ENDED)
    )
    bookings.insert(
        Booking("b2", "orion", at("2024-03-04T14:00"), at("2024-03-04T15:00"), status=BookingStatus.RELEASED)
    )
    bookings.insert(
        Booking("b3", "orion", at("2024-03-04T16:00"), at("2024-03-04T17:00"), status=BookingStatus.CANCELLED)
    )
    bookings.close()
    yield path
    db.close()


SETTINGS: Settings = settings_from_dict(CONFIG)


def report(path: Path, name: str, group_by: GroupBy, bucket: Bucket = Bucket.DAY, **filters: str) -> Report:
    window = ReportWindow(
        datetime.fromtimestamp(at("2024-03-04T00:00"), UTC),
        datetime.fromtimestamp(at("2024-03-05T00:00"), UTC),
        "Europe/Berlin",
        group_by,
        bucket,
        **filters,  # type: ignore[arg-type]
    )
    rooms = report_rooms(SETTINGS.site.rooms, SETTINGS)
    return build_report(name, SqliteReportSource(path), window, rooms, SETTINGS.reports)


def row(report: Report, **group: str) -> dict[str, Any]:
    (found,) = [r for r in report.as_json()["rows"] if all(r[k] == v for k, v in group.items())]
    return found


def test_utilization_by_room(store: Path) -> None:
    rep = report(store, "utilization", GroupBy.ROOM)
    orion = row(rep, room="orion")
    assert orion["bucket_start"] == "2024-03-04T00:00:00+01:00"
    assert {k: orion[k] for k in rep.columns} == {
        "occupied_hours": 4.0,
        "business_hours": 10.0,
        "occupied_business_hours": 4.0,
        "utilization": 0.4,
        # The cancelled booking is left out; the no-show's hour is booked and unused.
        "booked_hours": 2.0,
        "booked_used_hours": 1.0,
        "booked_vs_used": 0.5,
        "bookings": 2,
        "no_shows": 1,
        "peak_people": 3,
        "capacity": 10,
        "right_sizing": "oversized: peak 3 people, capacity 10",
    }
    # Occupied since the evening before: the state before the window counts.
    lyra = row(rep, room="lyra")
    assert (lyra["occupied_hours"], lyra["occupied_business_hours"]) == (10.0, 2.0)
    vega = row(rep, room="vega")
    assert (vega["occupied_business_hours"], vega["right_sizing"]) == (
        6.0,
        "undersized: peak 6 people, capacity 4",
    )


def test_utilization_by_building_and_room_type_adds_rooms_up(store: Path) -> None:
    by_building = report(store, "utilization", GroupBy.BUILDING)
    hq = row(by_building, building="hq")
    assert (hq["occupied_hours"], hq["business_hours"], hq["occupied_business_hours"]) == (12.0, 20.0, 10.0)
    assert hq["utilization"] == 0.5
    assert (hq["peak_people"], hq["capacity"]) == (9, 14)
    assert hq["right_sizing"] == "1 of 2 rooms oversized; 1 of 2 rooms undersized"
    assert set(row(by_building, building="annex")) >= {"building", "bucket_start"}
    by_type = report(store, "utilization", GroupBy.ROOM_TYPE)
    assert [r["room_type"] for r in by_type.as_json()["rows"]] == ["meeting", "office"]
    totals = by_type.totals
    assert (totals["occupied_hours"], totals["business_hours"], totals["utilization"]) == (22.0, 30.0, 0.4)


def test_filters_and_hour_buckets(store: Path) -> None:
    rep = report(store, "utilization", GroupBy.FLOOR, Bucket.HOUR, building="hq", floor="3")
    rows = rep.as_json()["rows"]
    assert len(rows) == 24 and {(r["building"], r["floor"]) for r in rows} == {("hq", "3")}
    assert [r["occupied_hours"] for r in rows[11:14]] == [0.0, 1.0, 1.0]
    assert rows[12]["bucket_start"] == "2024-03-04T12:00:00+01:00"


def test_energy_with_baseline_and_rule_savings(store: Path) -> None:
    rep = report(store, "energy", GroupBy.ROOM)
    orion = row(rep, room="orion")
    # 50 W for 5 h + 1 h; vacant from 13:00 (the hour 15:00-16:00); 0.25 a kWh.
    # Baseline: the light's rated 50 W for 10 business hours = 0.5 kWh.
    assert {k: orion[k] for k in rep.columns} == {
        "kwh": 0.3,
        "kwh_vacant": 0.05,
        "cost": 0.075,
        "baseline_kwh": 0.5,
        "saved_kwh": 0.2,
        "saved_cost": 0.05,
    }
    # vega has no baseline (no lights, no setting); lyra's type has one (20 W x 10 h).
    assert (row(rep, room="vega")["baseline_kwh"], row(rep, room="lyra")["saved_kwh"]) == (None, 0.2)
    # The OFF at 13:00 avoided 50 W until the light was on again at 15:00.
    assert rep.meta["savings_by_rule"] == [
        {"rule": "lights-off-when-vacant", "commands": 1, "kwh": 0.1, "cost": 0.025}
    ]
    assert rep.meta["savings_by_rule_and_group"] == [
        {
            "building": "hq",
            "floor": "2",
            "room": "orion",
            "rule": "lights-off-when-vacant",
            "commands": 1,
            "kwh": 0.1,
            "cost": 0.025,
        }
    ]
    assert rep.totals["saved_kwh"] == 0.4  # orion 0.2 + lyra 0.2 (vega has no baseline)


def test_comfort(store: Path) -> None:
    orion = row(report(store, "comfort", GroupBy.ROOM), room="orion")
    # Occupied 09:00-13:00; 22 degrees held 09:00-11:00, 27 (out) 11:00-13:00;
    # CO2 held for reading_hold (2 h): 09:00-11:00.
    assert orion["occupied_minutes"] == 240.0
    assert (orion["temperature_minutes"], orion["temperature_in_band_pct"]) == (240.0, 50.0)
    assert (orion["co2_minutes"], orion["co2_in_band_pct"]) == (120.0, 100.0)
    assert row(report(store, "comfort", GroupBy.ROOM), room="vega")["co2_in_band_pct"] is None


@pytest.mark.parametrize("name", ["utilization", "energy", "comfort"])
def test_csv_says_what_json_says(store: Path, name: str) -> None:
    rep = report(store, name, GroupBy.FLOOR)
    body = rep.as_json()
    lines = list(csv.reader(io.StringIO(rep.as_csv())))
    header, data, total = lines[0], lines[1:-1], lines[-1]
    assert header == ["building", "floor", "bucket_start", *body["columns"]]
    assert [dict(zip(header, line, strict=True)) for line in data] == [
        {k: "" if v is None else str(v) for k, v in r.items()} for r in body["rows"]
    ]
    assert total == ["total", "", "", *("" if v is None else str(v) for v in body["totals"].values())]


def test_readings_not_merged_yet_count_once(store: Path) -> None:
    before = report(store, "comfort", GroupBy.ROOM)
    db = Store(store)
    # A redelivery of a merged reading, and a new one, both waiting for the merge.
    db.commit(
        [
            reading("orion", "temperature", 27, at("2024-03-04T11:00")),
            reading("vega", "temperature", 21, at("2024-03-04T12:00")),
        ],
        [],
        [],
        at("2024-03-04T21:00"),
    )
    waiting = report(store, "comfort", GroupBy.ROOM)
    assert row(waiting, room="orion") == row(before, room="orion")
    assert row(waiting, room="vega")["temperature_minutes"] == 120.0
    db.merge_recent()
    assert report(store, "comfort", GroupBy.ROOM).as_json() == waiting.as_json()
    db.close()


def test_answers_are_bounded(store: Path) -> None:
    settings = settings_from_dict({**CONFIG, "reports": {"max_rows": 50, "max_days": 2}})
    rooms = report_rooms(settings.site.rooms, settings)
    source = SqliteReportSource(store)

    def window(days: float, bucket: Bucket) -> ReportWindow:
        start = at("2024-03-04T00:00")
        return ReportWindow(
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(start + days * 86_400, UTC),
            "Europe/Berlin",
            GroupBy.ROOM,
            bucket,
        )

    with pytest.raises(ReportRefused, match="72 rows; at most 50"):
        build_report("utilization", source, window(1, Bucket.HOUR), rooms, settings.reports)
    with pytest.raises(ReportRefused, match="3 days long; at most 2"):
        build_report("utilization", source, window(3, Bucket.DAY), rooms, settings.reports)
    assert len(build_report("energy", source, window(1, Bucket.NONE), rooms, settings.reports).rows) == 3


def test_power_readings_not_merged_yet_end_steps_and_start_them(store: Path) -> None:
    db = Store(store)
    lamp = [reading("lyra", "power", 60, at("2024-03-04T10:00"), "lamp")]
    db.commit(lamp, [], [], at("2024-03-04T21:00"))
    db.merge_recent()
    # Off at 11:00 and on again (30 W) at 12:00, both waiting for the merge.
    db.commit(
        [
            reading("lyra", "power", 0, at("2024-03-04T11:00"), "lamp"),
            reading("lyra", "power", 30, at("2024-03-04T12:00"), "lamp"),
        ],
        [],
        [],
        at("2024-03-04T21:00"),
    )
    waiting = report(store, "energy", GroupBy.ROOM)
    # 60 W for an hour, 30 W held for reading_hold (2 h).
    assert row(waiting, room="lyra")["kwh"] == 0.12
    db.merge_recent()
    assert report(store, "energy", GroupBy.ROOM).as_json() == waiting.as_json()
    db.close()
