"""A simulated Monday in virtual time, through mosquitto and HTTP, and the service report
checked against figures worked out by hand from the same messages; then the week's
scheduled archive appears at 06:00 the next Monday, in the archive, on the stream and on
MQTT.

The gateway runs on a `ManualClock`: the test moves time, publishes what the devices
say at that moment, and answers alerts over HTTP at chosen instants. Each step waits
until the gateway has acted on the last (an event in the log) before time moves on.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.clock import ManualClock
from simulators.broker import BrokerProcess
from tests.sse import StreamReader
from tests.support import Publisher, RunningGateway, start_gateway, wait_until, watching

BERLIN = ZoneInfo("Europe/Berlin")
# Lights off when a room turns vacant, and an alert for every refused badge (an access
# event is acted on as it arrives, so two in a row make two alerts, deterministically).
RULES = """
- name: lights-off-when-vacant
  priority: energy
  trigger: {occupancy: vacant}
  conditions: {fact: lights_on, op: ne, value: false}
  actions:
    - lights: off
- name: badge-denied
  priority: safety
  trigger: {access: denied}
  actions:
    - alert: {severity: warning, message: "badge refused at {room}"}
"""
KEYS = {
    "admin-key": ("admin", "admin", "all"),
    "hq-ops-key": ("hq-ops", "operator", "hq"),
    "annex-ops-key": ("annex-ops", "operator", "annex"),
    "hq-view-key": ("hq-view", "viewer", "hq"),
}


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).timestamp()


class Day:
    """The gateway, its clock and the devices of the two rooms, as the test drives them."""

    def __init__(
        self,
        gw: RunningGateway,
        clock: ManualClock,
        broker: BrokerProcess,
        publisher: Publisher,
        hq: str,
        annex: str,
    ) -> None:
        self.gw, self.clock, self.broker, self.publisher = gw, clock, broker, publisher
        self.place = {"orion": (hq, "2"), "vega": (annex, "1")}
        self.hq, self.annex = hq, annex

    def to(self, local: str) -> None:
        """Moves the clock to 2026-11-23 `local` (Berlin)."""
        target = at(f"2026-11-23T{local}")
        assert target >= self.clock.now()
        self.clock.advance(target - self.clock.now())

    def device(self, room: str, device: str, payload: dict[str, Any]) -> None:
        building, floor = self.place[room]
        self.publisher.publish(f"{self.gw.prefix}/{building}/{floor}/{room}/{room}-{device}", payload)

    def events(self, kind: str) -> list[dict[str, Any]]:
        response = self.gw.http.get(
            "/v1/events", params={"kind": kind, "limit": 1000}, headers=auth("admin-key")
        )
        page: list[dict[str, Any]] = response.json()["events"]
        return page

    def wait_event(self, kind: str, what: str, nth: int = 1, **data: Any) -> dict[str, Any]:
        """The `nth` event of `kind` whose data has `data`, once it is in the log."""

        def found() -> dict[str, Any] | None:
            matching = [e for e in self.events(kind) if all(e["data"].get(k) == v for k, v in data.items())]
            return matching[nth - 1] if len(matching) >= nth else None

        return wait_until(found, 10.0, what)

    def occupancy(self, room: str, state: str) -> None:
        wait_until(
            lambda: (
                self.gw.http.get(f"/v1/rooms/{room}", headers=auth("admin-key")).json()["occupancy"]["state"]
                == state
            ),
            10.0,
            f"{room} {state}",
        )

    def post(self, path: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.gw.http.post(path, json=body, headers=auth(key))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def config(tmp_path: Path, hq: str, annex: str) -> dict[str, Any]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    scopes = {"all": [], "hq": [hq], "annex": [annex]}
    return {
        "site": {
            "timezone": "Europe/Berlin",
            "rooms": [
                {"id": "orion", "building": hq, "floor": 2, "type": "meeting"},
                {"id": "vega", "building": annex, "floor": 1, "type": "meeting"},
            ],
            "devices": [
                {"id": "orion-pir", "room": "orion"},
                {"id": "orion-light", "room": "orion", "kind": "light"},
                {"id": "orion-badge", "room": "orion", "kind": "badge_reader"},
                {"id": "vega-pir", "room": "vega"},
                {"id": "vega-light", "room": "vega", "kind": "light"},
            ],
        },
        "rules": str(rules),
        "occupancy": {"vacancy_timeout": 600},
        # Devices stay online through the jumps in time.
        "availability": {"mains_timeout": 30 * 86_400, "battery_timeout": 30 * 86_400},
        # One attempt, then an alert after 3 s.
        "actuation": {"confirm_timeout": 3, "max_attempts": 1},
        "reports": {"schedule": {"periods": ["weekly"], "at": "06:00", "group_by": ["building", "room"]}},
        "push": {"stream": {"ping_interval": 0.5}},
        "api": {
            "keys": [
                {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "role": role,
                 "buildings": scopes[scope]}
                for key, (name, role, scope) in KEYS.items()
            ],
            "auth_failure_limit": 0,
        },
    }  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def day(
    request: pytest.FixtureRequest, mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path
) -> Any:
    # officegw/events/report/<building>/... has no per-test prefix: buildings of our own.
    hq, annex = f"hq{uuid.uuid4().hex[:6]}", f"annex{uuid.uuid4().hex[:6]}"
    clock = ManualClock(at("2026-11-23T07:59:00"))
    settings = config(tmp_path, hq, annex)
    if request.param == "postgresql":
        # The shared stores (events, alert states, snapshot) in PostgreSQL: the same day,
        # the same figures.
        url = request.getfixturevalue("postgres_url")
        settings["storage"] = {"path": str(tmp_path / "officegw.db"), "url": url}
    gw = start_gateway(mqtt_broker, settings, clock=clock)
    try:
        yield Day(gw, clock, mqtt_broker, publisher, hq, annex)
    finally:
        gw.stop()


def live_the_day(d: Day) -> dict[str, int]:
    """Monday 23 November 2026 in Berlin; returns the alerts' ids."""
    d.to("08:00:00")
    d.device("orion", "light", {"state": "ON"})
    d.device("vega", "light", {"state": "ON"})
    d.device("orion", "pir", {"occupancy": True})
    d.occupancy("orion", "occupied")

    # 09:00 orion has been empty for 50 min: lights off, confirmed 350 ms later.
    d.to("09:00:00")
    d.wait_event("command", "orion's first OFF", device="orion-light", status="sent")
    d.to("09:00:00.350")
    d.device("orion", "light", {"state": "OFF"})
    d.wait_event("command", "orion's OFF confirmed", device="orion-light", status="confirmed")

    # vega: occupied at 10:00, empty at 11:00; its light never confirms: alert at 11:00:03.
    d.to("10:00:00")
    d.device("vega", "pir", {"occupancy": True})
    d.occupancy("vega", "occupied")
    d.to("11:00:00")
    d.wait_event("command", "vega's OFF", device="vega-light", status="sent")
    d.to("11:00:03")
    vega = d.wait_event("alert", "vega's unconfirmed command", rule="lights-off-when-vacant")
    d.to("11:05:03")
    d.post(f"/v1/alerts/{vega['seq']}/ack", "annex-ops-key", {"note": "checking the relay"})
    d.to("11:20:00")
    d.device("vega", "light", {"state": "OFF"})  # switched off by hand
    d.wait_event("override", "vega's light switched by hand", device="vega-light")
    d.to("11:30:03")
    d.post(f"/v1/alerts/{vega['seq']}/resolve", "annex-ops-key", {"note": "relay replaced"})

    # orion again: someone in at 12:00 switches the light on; empty at 13:00: off,
    # confirmed after 1.2 s.
    d.to("12:00:00")
    d.device("orion", "pir", {"occupancy": True})
    d.device("orion", "light", {"state": "ON"})
    d.wait_event("override", "orion's light switched on by hand", device="orion-light")
    d.to("13:00:00")
    d.wait_event("command", "orion's second OFF", 2, device="orion-light", status="sent")
    d.to("13:00:01.200")
    d.device("orion", "light", {"state": "OFF"})
    d.wait_event("command", "orion's second OFF confirmed", 2, device="orion-light", status="confirmed")

    # Two refused badges in orion: a repeated alert.
    d.to("14:00:00")
    d.device("orion", "badge", {"access": "denied", "credential": "card-1"})
    first = d.wait_event("alert", "the first badge alert", rule="badge-denied")
    d.to("14:02:00")
    d.post(f"/v1/alerts/{first['seq']}/ack", "hq-ops-key")
    d.to("15:00:00")
    d.device("orion", "badge", {"access": "denied", "credential": "card-2"})
    second = d.wait_event("alert", "the second badge alert", 2, rule="badge-denied")
    d.to("15:10:00")
    d.post(f"/v1/alerts/{second['seq']}/resolve", "hq-ops-key")
    d.to("16:00:00")
    d.post(f"/v1/alerts/{first['seq']}/resolve", "hq-ops-key")
    return {"vega": vega["seq"], "first": first["seq"], "second": second["seq"]}


MONDAY = {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-24T00:00:00+01:00"}
COLUMNS = [
    *("commands", "confirmed", "confirm_p50_ms", "confirm_p95_ms"),
    *("alerts", "acked", "ack_p50_s", "ack_p95_s", "resolved", "resolve_p50_s", "resolve_p95_s"),
    "repeated_alerts",
]


def figures(*values: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS, values, strict=True))


# By hand, from the day above:
# orion: OFF confirmed after 350 and 1200 ms (p50 775, p95 350 + 0.95 * 850); badge
#   alerts acknowledged after 120 and 600 s (the second by its resolution: p50 360,
#   p95 120 + 0.95 * 480), resolved after 7200 and 600 s (p50 3900, p95 600 + 0.95 *
#   6600); the same rule twice: one repeat.
ORION = figures(2, 2, 775.0, 1157.5, 2, 2, 360.0, 576.0, 2, 3900.0, 6870.0, 1)
# vega: one OFF never confirmed; its alert acknowledged after 300 s, resolved after 1800 s.
VEGA = figures(1, 0, None, None, 1, 1, 300.0, 300.0, 1, 1800.0, 1800.0, 0)
# All: acknowledged after 120, 300, 600 s (p95 300 + 0.9 * 300); resolved after 600,
# 1800, 7200 s (p95 1800 + 0.9 * 5400).
TOTAL = figures(3, 2, 775.0, 1157.5, 3, 3, 300.0, 570.0, 3, 1800.0, 6660.0, 1)


def service(d: Day, key: str = "admin-key", **params: Any) -> httpx.Response:
    return d.gw.http.get("/v1/reports/service", params={**MONDAY, **params}, headers=auth(key))


def test_a_simulated_day_gives_the_hand_computed_service_figures_and_the_week_is_archived(day: Day) -> None:
    d = day
    alerts = live_the_day(d)
    resolved = d.gw.http.get("/v1/alerts", params={"state": "resolved"}, headers=auth("admin-key")).json()
    assert sorted(a["seq"] for a in resolved["events"]) == sorted(alerts.values())

    # Committed by the history writer a moment after the events.
    wait_until(lambda: service(d).json()["totals"]["resolved"] == 3, 5.0, "the day's events in the store")
    report = service(d).json()
    assert (report["report"], report["timezone"], report["group_by"], report["bucket"]) == (
        "service",
        "Europe/Berlin",
        "room",
        "day",
    )
    rows = {row["room"]: row for row in report["rows"]}
    assert set(rows) == {"orion", "vega"}
    assert rows["orion"]["bucket_start"] == "2026-11-23T00:00:00+01:00"
    assert {k: rows["orion"][k] for k in COLUMNS} == ORION
    assert {k: rows["vega"][k] for k in COLUMNS} == VEGA
    assert report["totals"] == TOTAL
    assert report["meta"]["by_device_kind"] == [
        {
            "device_kind": "light",
            "commands": 3,
            "confirmed": 2,
            "confirm_p50_ms": 775.0,
            "confirm_p95_ms": 1157.5,
        }
    ]
    assert report["meta"]["repeated"] == [
        {"building": d.hq, "floor": "2", "room": "orion", "rule": "badge-denied", "alerts": 2}
    ]

    # CSV, by ?format= or by Accept; the same figures.
    csv_text = service(d, format="csv").text
    assert (
        csv_text
        == d.gw.http.get(
            "/v1/reports/service", params=MONDAY, headers={**auth("admin-key"), "Accept": "text/csv"}
        ).text
    )
    lines = csv_text.splitlines()
    assert lines[0] == "building,floor,room,bucket_start," + ",".join(COLUMNS)
    assert (
        f"{d.hq},2,orion,2026-11-23T00:00:00+01:00,2,2,775.0,1157.5,2,2,360.0,576.0,2,3900.0,6870.0,1"
        in lines
    )
    assert lines[-1] == "total,,,,3,2,775.0,1157.5,3,3,300.0,570.0,3,1800.0,6660.0,1"

    # A key scoped to hq sees hq alone; asking for the annex is refused, its room not found.
    scoped = service(d, "hq-view-key").json()
    assert [row["room"] for row in scoped["rows"]] == ["orion"]
    assert scoped["totals"] == {**ORION}
    assert service(d, "hq-view-key", building=d.annex).status_code == 403
    assert service(d, "hq-view-key", room="vega").status_code == 404
    assert service(d, group_by="device_kind").json()["rows"][0]["device_kind"] == "light"
    assert service(d, end="2026-11-22T00:00:00Z").status_code == 422

    # The week's reports: written at 06:00 on Monday 30 November, announced on the
    # stream and on MQTT, listed in the archive.
    stream = StreamReader(d.gw.server.url, "/v1/stream?kind=report", headers=auth("admin-key"))
    try:
        stream.wait_ready()
        with watching(d.broker, "officegw/events/report/#") as mqtt:
            d.clock.advance(at("2026-11-30T05:59:59") - d.clock.now())
            d.clock.advance(1)

            def announced() -> list[dict[str, Any]]:
                return [sse.json() for sse in stream.events if sse.event == "report"]

            wait_until(lambda: len(announced()) == 2, 10.0, "both buildings' report events on the stream")
            reports = announced()
            published = dict(mqtt.get(timeout=5) for _ in range(2))
    finally:
        stream.close()
    assert sorted(r["building"] for r in reports) == sorted([d.hq, d.annex])
    hq_event = next(r for r in reports if r["building"] == d.hq)
    assert hq_event["room_id"] is None and hq_event["at"] == "2026-11-30T05:00:00Z"
    assert hq_event["data"]["label"] == "2026-W48"
    assert set(published) == {
        f"officegw/events/report/{d.hq}/2026-W48",
        f"officegw/events/report/{d.annex}/2026-W48",
    }
    assert published[f"officegw/events/report/{d.hq}/2026-W48"]["seq"] == hq_event["seq"]

    listing = d.gw.http.get("/v1/reports/archive", headers=auth("admin-key")).json()["reports"]
    assert sorted(r["id"] for r in listing) == sorted([f"{d.hq}/2026-W48", f"{d.annex}/2026-W48"])
    hq_archive = next(r for r in listing if r["building"] == d.hq)
    assert (hq_archive["start"], hq_archive["end"]) == ("2026-11-22T23:00:00Z", "2026-11-29T23:00:00Z")
    # Every report the gateway archives, by building and by room, and the summary.
    assert [f["name"] for f in hq_archive["files"]] == [
        f"{report}-{grouping}.csv"
        for report in ("utilization", "energy", "comfort", "service")
        for grouping in ("building", "room")
    ] + ["summary.html"]
    files = {f["name"]: f for f in hq_archive["files"]}
    room_csv = d.gw.http.get(files["service-room.csv"]["url"], headers=auth("hq-view-key"))
    assert room_csv.status_code == 200 and room_csv.headers["content-type"].startswith("text/csv")
    assert len(room_csv.content) == files["service-room.csv"]["bytes"]
    # Monday's row in the week's file holds the same figures as the report asked for the day.
    assert f"{d.hq},2,orion,2026-11-23T00:00:00+01:00,2,2,775.0,1157.5,2,2,360.0,576.0,2,3900.0,6870.0,1" in (
        room_csv.text.splitlines()
    )
    summary = d.gw.http.get(files["summary.html"]["url"], headers=auth("hq-view-key"))
    assert summary.headers["content-type"].startswith("text/html")
    assert "<svg" in summary.text and f"Building {d.hq}: reports for 2026-W48" in summary.text

    # Scopes: hq's viewer lists hq's archive only, and another building's file is not found.
    scoped_listing = d.gw.http.get("/v1/reports/archive", headers=auth("hq-view-key")).json()["reports"]
    assert [r["building"] for r in scoped_listing] == [d.hq]
    annex_url = f"/v1/reports/archive/{d.annex}/2026-W48/summary.html"
    assert d.gw.http.get(annex_url, headers=auth("hq-view-key")).status_code == 404
    assert d.gw.http.get(annex_url, headers=auth("admin-key")).status_code == 200
    assert (
        d.gw.http.get(
            f"/v1/reports/archive/{d.hq}/2026-W48/manifest.json", headers=auth("admin-key")
        ).status_code
        == 404
    )
