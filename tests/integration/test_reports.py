"""A simulated office day in virtual time, then the reports over HTTP, against figures
worked out by hand from the same messages.

The gateway runs on a real mosquitto with its SQLite file and HTTP server; only its
clock is a `ManualClock`, set by the test to each moment of the day before the
messages of that moment are published (devices stamp their readings with `ts`; a
simulated light reports as a real one would, stamped by the gateway on arrival).
The default rules are in force. Tuesday 4 March 2025 in Berlin (UTC+1); business
hours 08:00-18:00; 0.30 EUR a kWh 08:00-18:00 on weekdays, 0.20 otherwise.

orion (hq, floor 2, meeting room for 8, bookable; a people counter, a temperature
and CO2 sensor, a 40 W light):
- people: 4 at 09:00, 0 at 10:30, 3 at 14:00, 0 at 15:00 -> occupied 2.5 h, peak 4
  (at most half of 8 seats: oversized);
- bookings 09:00-10:00 (kept) and 11:00-12:00 (nobody came: released at 11:10) ->
  booked 2 h, used 1 h, 2 bookings, 1 no-show;
- the light, switched on at the wall at 09:00 and 14:00, is switched off by the
  rule lights-off-when-vacant at 10:30 and 15:00 -> 2.5 h at 40 W = 0.1 kWh, all at
  0.30 = 0.03, none of it vacant; baseline 40 W (its rated watts) x 10 h = 0.4 kWh
  (0.12): saved 0.3 kWh, 0.09;
- the rule's OFFs avoided 40 W from 10:30 until the wall switch at 14:00 (3.5 h) and
  from 15:00 until the baseline's 18:00 (3 h): 0.26 kWh, 0.078;
- hourly 22 degrees (27 at 14:00, 23 at 15:00) and 600 ppm (1,100 at 10:00):
  of 150 occupied minutes, 90 (09:00-10:30) in the temperature band, 120 in the CO2
  band (not 10:00-10:30) -> 60 % and 80 %.

lyra (hq, floor 3, office for 2; a motion sensor, vacancy after 10 minutes; a plug
with an energy meter, 100 W from 08:00 to 19:00, counting hourly):
- motion 08:00 and 13:00, 13:50 -> occupied 08:00-08:30 and 13:00-14:00 = 1.5 h;
- 1.1 kWh, 1.0 at 0.30 and 0.1 (18:00-19:00) at 0.20 = 0.32; vacant 08:30-13:00
  and 14:00-19:00 -> 0.95 kWh; baseline 30 W (configured) x 10 h = 0.3 kWh (0.09):
  saved -0.8 kWh, -0.23.

vega (annex, meeting room for 6; a people counter): 2 people 10:00-11:00 -> 1 h,
oversized. A key scoped to hq never sees it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.cli.assembly import build_app
from gateway.cli.server import ServerThread
from gateway.clock import ManualClock
from gateway.config import settings_from_dict
from simulators.broker import BrokerProcess, free_port
from tests.support import Publisher, SimLight, unique_prefix, wait_until

BERLIN = ZoneInfo("Europe/Berlin")
DAY = "2025-03-04"
ADMIN_KEY, HQ_KEY = "admin-key-for-the-report-test", "hq-viewer-key-for-the-report-test"


def local(hhmm: str, day: str = DAY) -> float:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=BERLIN).timestamp()


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def config(prefix: str, broker: BrokerProcess, storage: Path) -> dict[str, Any]:
    return {
        "gateway": {"id": f"reports-{prefix}"},
        "mqtt": {"url": broker.url, "topic_prefix": prefix, "reconnect_max_delay": 2},
        "api": {
            "keys": [
                {"name": "admin", "sha256": digest(ADMIN_KEY), "role": "admin"},
                {"name": "hq-viewer", "sha256": digest(HQ_KEY), "role": "viewer", "buildings": ["hq"]},
            ]
        },
        # Retention runs on the real clock; the day is in the past.
        "storage": {"path": str(storage), "retention": {"readings": 36_500, "events": 36_500}},
        # The counters only speak when the count changes: they must not go offline.
        "availability": {"mains_timeout": 86_400, "battery_timeout": 86_400},
        "site": {
            "timezone": "Europe/Berlin",
            "rooms": [
                {
                    "id": "orion",
                    "building": "hq",
                    "floor": 2,
                    "type": "meeting",
                    "capacity": 8,
                    "bookable": True,
                },
                {
                    "id": "lyra",
                    "building": "hq",
                    "floor": 3,
                    "type": "office",
                    "capacity": 2,
                    "vacancy_timeout": 600,
                },
                {"id": "vega", "building": "annex", "floor": 1, "type": "meeting", "capacity": 6},
            ],
            "devices": [
                {"id": "orion-light", "room": "orion", "kind": "light", "rated_watts": 40},
                {"id": "orion-counter", "room": "orion"},
                {"id": "orion-env", "room": "orion"},
                {"id": "lyra-pir", "room": "lyra"},
                {"id": "lyra-plug", "room": "lyra", "kind": "switch"},
                {"id": "vega-counter", "room": "vega"},
            ],
        },
        "reports": {
            "tariff": {
                "currency": "EUR",
                "price_per_kwh": 0.20,
                "bands": [
                    {
                        "start": "08:00",
                        "end": "18:00",
                        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                        "price_per_kwh": 0.30,
                    }
                ],
            },
            "baseline_w": {"rooms": {"lyra": 30}},
        },
    }


class Day:
    """The gateway under test and the devices of the day."""

    def __init__(
        self, broker: BrokerProcess, publisher: Publisher, storage: Path, clock: ManualClock
    ) -> None:
        self.prefix = unique_prefix()
        self.broker, self.publisher, self.storage, self.clock = broker, publisher, storage, clock
        self.settings = settings_from_dict(config(self.prefix, broker, storage))
        self.server: ServerThread | None = None
        self.http = httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        self.published = 0
        self.start()
        self.light = SimLight(broker, self.topic("hq", 2, "orion", "orion-light"), watts=40.0)

    def start(self) -> None:
        self.server = ServerThread(
            build_app(self.settings, clock=self.clock), "127.0.0.1", free_port()
        ).start()
        self.http.base_url = httpx.URL(self.server.url)
        wait_until(lambda: self.http.get("/readyz").status_code == 200, 10.0, "gateway ready")
        self.published = int(self.metric("officegw_messages_received"))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def close(self) -> None:
        self.light.close()
        self.stop()
        self.http.close()

    def topic(self, building: str, floor: int, room: str, device: str) -> str:
        return f"{self.prefix}/{building}/{floor}/{room}/{device}"

    def metric(self, name: str) -> float:
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no metric {name}")

    def at(self, hhmm: str) -> None:
        self.clock.advance(local(hhmm) - self.clock.now())

    def send(self, room: str, device: str, **fields: Any) -> None:
        building, floor = {"orion": ("hq", 2), "lyra": ("hq", 3), "vega": ("annex", 1)}[room]
        self.publisher.publish(self.topic(building, floor, room, device), {**fields, "ts": self.clock.now()})
        self.heard(1)

    def heard(self, messages: int) -> None:
        """Waits until the gateway has received `messages` more messages."""
        self.published += messages
        wait_until(
            lambda: self.metric("officegw_messages_received") >= self.published,
            10.0,
            f"{self.published} messages received",
        )

    def wall_switch(self, state: str) -> None:
        self.light.switch_at_the_wall(state)
        self.heard(1)

    def wait_for_event(self, kind: str, room: str, **data: Any) -> None:
        """Waits for the event, dated now."""

        def seen() -> bool:
            events = self.http.get("/v1/events", params={"kind": kind, "room": room, "limit": 1000}).json()
            return any(
                datetime.fromisoformat(e["at"]).timestamp() == self.clock.now()
                and all(e["data"].get(k) == v for k, v in data.items())
                for e in events["events"]
            )

        wait_until(seen, 10.0, f"{kind} event in {room} with {data} at {self.clock.now()}")

    def wait_committed(self, room: str, metric: str, readings: int) -> None:
        def stored() -> int:
            params = {"metric": metric, "start": f"{DAY}T00:00:00+01:00", "end": "2025-03-05T00:00:00+01:00"}
            return len(self.http.get(f"/v1/rooms/{room}/history", params=params).json()["points"])

        wait_until(lambda: stored() >= readings, 10.0, f"{readings} {metric} readings of {room} stored")

    def wait_light(self, on: bool) -> None:
        wait_until(
            lambda: self.http.get("/v1/rooms/orion").json()["lighting"]["on"] is on, 10.0, f"light {on}"
        )

    def booking_status(self, booking_id: str, status: str) -> None:
        wait_until(
            lambda: self.http.get(f"/v1/bookings/{booking_id}").json()["status"] == status,
            10.0,
            f"booking {booking_id} {status}",
        )

    def report(self, name: str, key: str = ADMIN_KEY, **params: str) -> httpx.Response:
        query = {"start": f"{DAY}T00:00:00+01:00", "end": "2025-03-05T00:00:00+01:00", **params}
        return self.http.get(f"/v1/reports/{name}", params=query, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def day(mqtt_broker: BrokerProcess, publisher: Publisher) -> Iterator[Day]:
    scratch = Path(tempfile.mkdtemp(prefix="officegw-reports-"))
    clock = ManualClock(local("06:00"))
    running = Day(mqtt_broker, publisher, scratch / "officegw.db", clock)
    try:
        yield running
    finally:
        running.close()
        shutil.rmtree(scratch, ignore_errors=True)


def live_the_day(d: Day) -> None:
    booking = {"room_id": "orion", "title": "standup"}
    kept = d.http.post(
        "/v1/bookings", json={**booking, "start": f"{DAY}T09:00:00+01:00", "end": f"{DAY}T10:00:00+01:00"}
    )
    empty = d.http.post(
        "/v1/bookings", json={**booking, "start": f"{DAY}T11:00:00+01:00", "end": f"{DAY}T12:00:00+01:00"}
    )
    assert (kept.status_code, empty.status_code) == (201, 201), (kept.text, empty.text)

    def hour(hhmm: str, co2: float = 600, temperature: float = 22, plug: float | None = None) -> None:
        d.at(hhmm)
        if hhmm <= "18:00":
            d.send("orion", "orion-env", temperature=temperature, co2=co2)
        if plug is not None:
            d.send("lyra", "lyra-plug", energy=plug, power=100.0 if hhmm < "19:00" else 0.0)

    hour("08:00", plug=10.0)
    d.send("lyra", "lyra-pir", occupancy=True)
    d.at("08:20")
    d.send("lyra", "lyra-pir", occupancy=True)
    d.at("08:30")
    d.wait_for_event("occupancy", "lyra", new="vacant")

    hour("09:00", plug=10.1)
    d.send("orion", "orion-counter", people=4)
    d.wall_switch("ON")
    d.at("09:05")
    d.booking_status(kept.json()["id"], "checked_in")

    hour("10:00", co2=1_100, plug=10.2)
    d.send("vega", "vega-counter", people=2)
    d.at("10:30")
    d.send("orion", "orion-counter", people=0)
    d.wait_light(False)

    hour("11:00", plug=10.3)
    d.send("vega", "vega-counter", people=0)
    d.at("11:10")
    d.booking_status(empty.json()["id"], "released")

    hour("12:00", plug=10.4)
    hour("13:00", plug=10.5)
    d.send("lyra", "lyra-pir", occupancy=True)
    d.at("13:50")
    d.send("lyra", "lyra-pir", occupancy=True)

    hour("14:00", temperature=27, plug=10.6)
    d.wait_for_event("occupancy", "lyra", new="vacant")
    d.send("orion", "orion-counter", people=3)
    d.wall_switch("ON")
    d.wait_light(True)

    hour("15:00", temperature=23, plug=10.7)
    d.send("orion", "orion-counter", people=0)
    d.wait_light(False)

    for hhmm, kwh in (("16:00", 10.8), ("17:00", 10.9), ("18:00", 11.0), ("19:00", 11.1), ("20:00", 11.1)):
        hour(hhmm, plug=kwh)
    # The last reading of the day is stored: everything before it is too (one writer, in order).
    d.wait_committed("lyra", "energy", 13)
    d.clock.advance(local("00:30", "2025-03-05") - d.clock.now())


def figures(body: dict[str, Any], room: str) -> dict[str, Any]:
    (row,) = [r for r in body["rows"] if r.get("room") == room]
    return {name: row[name] for name in body["columns"]}


def test_a_day_of_reports(day: Day) -> None:
    live_the_day(day)

    utilization = day.report("utilization").json()
    assert [r["room"] for r in utilization["rows"]] == ["vega", "orion", "lyra"]  # by building, floor
    assert all(r["bucket_start"] == "2025-03-04T00:00:00+01:00" for r in utilization["rows"])
    assert figures(utilization, "orion") == {
        "occupied_hours": 2.5,
        "business_hours": 10.0,
        "occupied_business_hours": 2.5,
        "utilization": 0.25,
        "booked_hours": 2.0,
        "booked_used_hours": 1.0,
        "booked_vs_used": 0.5,
        "bookings": 2,
        "no_shows": 1,
        "peak_people": 4,
        "capacity": 8,
        "right_sizing": "oversized: peak 4 people, capacity 8",
    }
    lyra = figures(utilization, "lyra")
    assert (lyra["occupied_hours"], lyra["utilization"], lyra["peak_people"], lyra["right_sizing"]) == (
        1.5,
        0.15,
        None,
        None,
    )
    assert utilization["totals"]["occupied_hours"] == 5.0
    assert utilization["totals"]["right_sizing"] == "2 of 3 rooms oversized"

    energy = day.report("energy").json()
    assert figures(energy, "orion") == {
        "kwh": 0.1,
        "kwh_vacant": 0.0,
        "cost": 0.03,
        "baseline_kwh": 0.4,
        "saved_kwh": 0.3,
        "saved_cost": 0.09,
    }
    assert figures(energy, "lyra") == {
        "kwh": 1.1,
        "kwh_vacant": 0.95,
        "cost": 0.32,
        "baseline_kwh": 0.3,
        "saved_kwh": -0.8,
        "saved_cost": -0.23,
    }
    assert energy["meta"]["savings_by_rule"] == [
        {"rule": "lights-off-when-vacant", "commands": 2, "kwh": 0.26, "cost": 0.078}
    ]
    assert energy["meta"]["currency"] == "EUR" and energy["meta"]["commands_unmeasured"] == 0
    assert energy["totals"] == {
        "kwh": 1.2,
        "kwh_vacant": 0.95,
        "cost": 0.35,
        "baseline_kwh": 0.7,
        "saved_kwh": -0.5,
        "saved_cost": -0.14,
    }

    comfort = day.report("comfort").json()
    assert figures(comfort, "orion") == {
        "occupied_minutes": 150.0,
        "temperature_minutes": 150.0,
        "temperature_in_band_pct": 60.0,
        "co2_minutes": 150.0,
        "co2_in_band_pct": 80.0,
    }
    assert figures(comfort, "lyra")["temperature_in_band_pct"] is None

    # CSV says what JSON says, asked for either way.
    for name in ("utilization", "energy", "comfort"):
        body = day.report(name, group_by="floor").json()
        for answer in (
            day.report(name, group_by="floor", format="csv"),
            day.http.get(
                f"/v1/reports/{name}",
                params={
                    "start": f"{DAY}T00:00:00+01:00",
                    "end": "2025-03-05T00:00:00+01:00",
                    "group_by": "floor",
                },
                headers={"Accept": "text/csv"},
            ),
        ):
            assert answer.headers["content-type"].startswith("text/csv")
            lines = list(csv.reader(io.StringIO(answer.text)))
            assert lines[0] == ["building", "floor", "bucket_start", *body["columns"]]
            assert [dict(zip(lines[0], line, strict=True)) for line in lines[1:-1]] == [
                {k: "" if v is None else str(v) for k, v in r.items()} for r in body["rows"]
            ]
            assert lines[-1][3:] == ["" if v is None else str(v) for v in body["totals"].values()]

    # A key scoped to hq sees hq's rooms only, and may not ask for another building.
    scoped = day.report("utilization", key=HQ_KEY).json()
    assert [r["room"] for r in scoped["rows"]] == ["orion", "lyra"]
    assert scoped["totals"]["right_sizing"] == "1 of 2 rooms oversized"
    assert day.report("energy", key=HQ_KEY, building="annex").status_code == 403
    assert day.report("comfort", key=HQ_KEY, room="vega").status_code == 404
    by_building = day.report("energy", key=HQ_KEY, group_by="building").json()
    assert [r["building"] for r in by_building["rows"]] == ["hq"]
    assert by_building["rows"][0]["kwh"] == 1.2

    # The reports come from the store: a restarted gateway gives the same answers.
    before = {name: day.report(name).json() for name in ("utilization", "energy", "comfort")}
    day.stop()
    day.start()
    assert {name: day.report(name).json() for name in ("utilization", "energy", "comfort")} == before


def test_bad_report_requests_get_clear_answers(day: Day) -> None:
    assert day.report("energy", end=f"{DAY}T00:00:00+01:00").status_code == 422
    assert day.report("energy", bucket="fortnight").status_code == 422
    too_long = day.report("utilization", start="2020-01-01T00:00:00Z")
    assert too_long.status_code == 422 and "reports.max_days" in too_long.json()["detail"]
    assert day.report("comfort", room="nowhere").status_code == 404
    assert day.http.get("/v1/reports/energy", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # Without start and end: the site's today so far (06:00 in Berlin).
    today = day.http.get("/v1/reports/utilization").json()
    assert (today["start"], today["end"]) == ("2025-03-03T23:00:00+00:00", "2025-03-04T05:00:00+00:00")
