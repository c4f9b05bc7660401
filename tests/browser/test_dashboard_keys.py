"""The dashboard on a gateway with API keys: it asks for a key, keeps it for the browser
session, shows only the key's buildings and refuses what the key's role may not do;
the building KPIs and alerts, the devices page, and the stream's event parser."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

VIEWER_KEY = "lobby-panel-key-0123456789"
OPERATOR_KEY = "facilities-key-0123456789"


def key_entry(name: str, key: str, role: str, buildings: list[str] | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"name": name, "sha256": digest, "role": role, "buildings": buildings or []}


@dataclass
class Keyed:
    gateway: RunningGateway
    mine: str
    other: str

    @property
    def url(self) -> str:
        return f"{self.gateway.server.url}/"

    def topic(self, room: str, device: str, floor: str = "1") -> str:
        return f"{self.gateway.prefix}/{self.mine}/{floor}/{room}/{device}"

    def api(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        return httpx.get(f"{self.gateway.server.url}{path}", params=params, headers=headers, timeout=5)


@pytest.fixture(scope="module")
def keyed(mqtt_broker: BrokerProcess) -> Iterator[Keyed]:
    mine, other = f"hq-{uuid.uuid4().hex[:4]}", f"annex-{uuid.uuid4().hex[:4]}"
    config = {
        "site": {
            "rooms": [
                {"id": "orion", "name": "Orion", "building": mine, "floor": 1, "bookable": True},
                {"id": "lyra", "name": "Lyra", "building": mine, "floor": 1},
                {"id": "vega", "name": "Vega", "building": mine, "floor": 2},
                {"id": "theirs", "name": "Theirs", "building": other, "floor": 1},
            ],
            "devices": [
                {"id": "orion-pir", "room": "orion"},
                {"id": "orion-env", "room": "orion"},
                {"id": "orion-door", "room": "orion"},
                {"id": "lyra-light", "room": "lyra", "kind": "light"},
                {"id": "theirs-pir", "room": "theirs"},
            ],
        },
        # A baseline, so the energy report has savings to show.
        "reports": {"baseline_w": {"rooms": {"lyra": 40}}},
        "api": {
            "keys": [
                key_entry("lobby", VIEWER_KEY, "viewer", [mine]),
                key_entry("ops", OPERATOR_KEY, "operator"),
            ]
        },
    }
    gw = start_gateway(mqtt_broker, config)
    try:
        yield Keyed(gw, mine, other)
    finally:
        gw.stop()


def enter_key(page: Page, key: str) -> None:
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Key", exact=True).fill(key)
    dialog.get_by_role("button", name="Use key").click()


def test_it_asks_for_a_key_keeps_it_for_the_session_and_shows_only_its_buildings(
    page: Page, keyed: Keyed
) -> None:
    page.goto(keyed.url)
    enter_key(page, "not-a-key-of-this-gateway")
    expect(page.locator("#key-error")).to_contain_text("the key was refused")
    page.get_by_label("Key", exact=True).fill(VIEWER_KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.get_by_role("dialog", name="API key")).to_be_hidden()
    expect(page.locator("#connection")).to_have_text("Live", timeout=10_000)
    # Only the key's building, both of its floors; the other building's room nowhere.
    assert page.locator("#building-picker option").all_inner_texts() == [keyed.mine]
    expect(page.locator("#floor-picker button")).to_have_text(["Floor 1", "Floor 2"])
    expect(page.locator(".tile")).to_have_count(2)
    page.get_by_role("button", name="Floor 2").click()
    expect(page.locator(".tile")).to_have_count(1)
    expect(page.locator('.tile[data-room="vega"]')).to_be_visible()
    assert page.locator('.tile[data-room="theirs"]').count() == 0
    assert page.evaluate("sessionStorage.getItem('officegw.apiKey')") == VIEWER_KEY
    assert page.evaluate("localStorage.length") == 0

    # Kept for the session: a reload asks nothing and comes back to the same floor.
    page.reload()
    expect(page.locator("#connection")).to_have_text("Live", timeout=10_000)
    expect(page.get_by_role("dialog", name="API key")).to_be_hidden()
    expect(page.locator('.tile[data-room="vega"]')).to_be_visible()

    # A viewer may look, not switch.
    page.get_by_role("button", name="Floor 1").click()
    page.locator('.tile[data-room="lyra"]').click()
    drawer = page.locator("#drawer")
    drawer.get_by_role("button", name="Turn off").click()
    expect(drawer).to_contain_text("Not sent: switching lights needs an operator key.")

    # Forgetting the key asks for one again.
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_role("dialog", name="API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('officegw.apiKey')") is None


def test_building_figures_and_alerts(page: Page, keyed: Keyed, publisher: Publisher) -> None:
    publisher.publish(keyed.topic("orion", "orion-env"), {"co2": 1320})
    wait_until(lambda: keyed.api("/v1/alerts").json()["events"], 5.0, "the CO2 alert")
    page.goto(keyed.url)
    enter_key(page, OPERATOR_KEY)
    expect(page.locator("#connection")).to_have_text("Live", timeout=10_000)
    page.locator("#building-picker").select_option(keyed.mine)
    alerts = page.locator("#alerts-list")
    expect(alerts).to_contain_text("CO2 in orion is 1320 ppm")
    expect(page.locator('.tile[data-room="orion"]')).to_contain_text("CO2 1,320 ppm, high")

    utilization = keyed.api(
        "/v1/reports/utilization", group_by="building", bucket="none", building=keyed.mine
    )
    kpi = page.locator('[data-kpi="utilization"]')
    if utilization.status_code == 404:
        # Before the reports API: said plainly, and the live energy figures stand in.
        for name in ("utilization", "no_shows", "saved"):
            expect(page.locator(f'[data-kpi="{name}"]')).to_contain_text("not available")
        expect(page.locator('[data-kpi="kwh"]')).to_contain_text("Wh")
        expect(page.locator('[data-kpi="kwh"]')).to_contain_text("live")
    else:
        totals = utilization.json()["totals"]
        shown = "\N{EN DASH}" if totals["utilization"] is None else f"{round(totals['utilization'] * 100)} %"
        expect(kpi.locator(".kpi-value")).to_have_text(shown)
        energy = keyed.api("/v1/reports/energy", group_by="building", bucket="none", building=keyed.mine)
        assert energy.status_code == 200
        expect(page.locator('[data-kpi="saved"]')).to_contain_text("Wh")

    alert = keyed.api("/v1/alerts").json()["events"][-1]
    if "state" not in alert:
        # Before the alert lifecycle: listed, and acknowledging is said to be missing.
        expect(page.locator("#alerts-note")).to_contain_text("acknowledging is not available")
        expect(alerts.get_by_role("button")).to_have_count(0)
    else:
        expect(page.locator('[data-kpi="alerts"] .kpi-value')).to_have_text("1")
        alerts.get_by_role("button", name="Acknowledge: CO2 in orion").click()
        expect(alerts).not_to_contain_text("CO2 in orion", timeout=5_000)
        acked = keyed.api("/v1/alerts").json()["events"][-1]
        assert (acked["state"], acked["acked_by"]) == ("acknowledged", "ops")


def test_devices_page_filters_and_sorts(page: Page, keyed: Keyed, publisher: Publisher) -> None:
    publisher.publish(keyed.topic("orion", "orion-pir"), {"occupancy": False, "battery": 80})
    publisher.publish(keyed.topic("orion", "orion-env"), {"co2": 600, "battery": 9})
    publisher.publish(keyed.topic("orion", "orion-door"), {"contact": True, "battery": 55})
    publisher.publish(keyed.topic("orion", "orion-door") + "/availability", "offline")
    publisher.publish(keyed.topic("orion", "orion-env"), b"{not json")
    wait_until(
        lambda: (
            keyed.api("/v1/dead-letters").json()["dead_letters"]
            and keyed.api("/v1/devices/orion-door").json()["online"] is False
        ),
        5.0,
        "the dead letter and the offline door",
    )
    page.goto(f"{keyed.url}#/devices")
    enter_key(page, VIEWER_KEY)
    table = page.locator("#device-table")
    rows = table.locator("tbody tr")
    # The key's building only: theirs-pir is another building's.
    expect(rows).to_have_count(4)
    assert table.locator('tr[data-device="theirs-pir"]').count() == 0
    expect(table.locator('tr[data-device="orion-door"]')).to_contain_text("offline")
    expect(table.locator('tr[data-device="orion-env"]')).to_contain_text("battery low")

    show = page.get_by_label("Show", exact=True)
    for choice, devices in (
        ("offline", ["orion-door"]),
        ("battery", ["orion-env"]),
        ("dead", ["orion-env"]),
    ):
        show.select_option(choice)
        expect(rows).to_have_count(len(devices))
        assert [row.get_attribute("data-device") for row in rows.all()] == devices, choice
    show.select_option("all")
    page.get_by_label("Search", exact=True).fill("door")
    expect(rows).to_have_count(1)
    page.get_by_label("Search", exact=True).fill("")

    battery = table.get_by_role("button", name="Battery")
    battery.click()
    expect(table.locator('th[data-column="battery"]')).to_have_attribute("aria-sort", "ascending")
    order = [row.get_attribute("data-device") for row in rows.all()]
    assert order[-3:] == ["orion-env", "orion-door", "orion-pir"], order
    battery.click()
    expect(table.locator('th[data-column="battery"]')).to_have_attribute("aria-sort", "descending")
    order = [row.get_attribute("data-device") for row in rows.all()]
    assert order[:3] == ["orion-pir", "orion-door", "orion-env"], order

    # The floor says which room has a device offline.
    page.get_by_role("link", name="Floor").click()
    expect(page.locator('.tile[data-room="orion"]')).to_contain_text("1 device offline")


def test_the_stream_parser_takes_events_split_anywhere(page: Page, keyed: Keyed) -> None:
    page.goto(keyed.url)
    # Every way of cutting the text into chunks of 1 to 8 characters gives the same events.
    runs = page.evaluate(
        """async () => {
            const { SseParser } = await import("./static/dashboard/js/stream.js");
            const text = ": ping\\r\\nid: 7\\r\\nevent: occupancy\\r\\n"
                + "data: {\\"a\\":\\r\\ndata: 1}\\r\\n\\r\\n"
                + "event: room\\ndata: x\\n\\ndata: no event name\\r\\r: ping\\n";
            const runs = [];
            for (let size = 1; size <= 8; size += 1) {
                const seen = [];
                const parser = new SseParser((event) => seen.push(event));
                for (let at = 0; at < text.length; at += size) parser.push(text.slice(at, at + size));
                runs.push(seen);
            }
            return runs;
        }"""
    )
    expected = [
        {"event": "occupancy", "data": '{"a":\n1}', "id": "7"},
        {"event": "room", "data": "x", "id": None},
        {"event": "message", "data": "no event name", "id": None},
    ]
    assert runs == [expected] * 8
