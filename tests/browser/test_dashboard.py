"""The dashboard in headless chromium against a real gateway on the private mosquitto,
fed by the floor simulator: every configured room is on the plan, a motion message
turns its tile occupied within 2 s without a reload, a room drawer draws its history,
the light buttons reach the device over MQTT, and the "connection lost" state comes
when the gateway stops and goes when it is back.

The tests of this module share one gateway and run in order: the last one restarts it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Page, expect

from gateway.cli.assembly import build_app
from gateway.cli.demo import plan_cells
from gateway.cli.server import ServerThread
from simulators.broker import BrokerProcess
from simulators.floor import VirtualFloor
from simulators.publisher import run_floor
from tests.browser.conftest import screenshot
from tests.support import Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

FLOOR = "2"
TIME_SCALE = 300.0
# The focus room's past day: a reading every 15 minutes.
DAY_READINGS = 96


def publish_a_day(publisher: Publisher, room_topic: str, now: float) -> None:
    """A working day of the focus room, timed over the last 24 h: people twice (6-10 h
    and 13-19 h into the day), CO2 and warmth rising while they are in, the light on
    with them. It ends vacant, lights off, 15 minutes ago."""
    co2, temperature = 430.0, 20.6
    for i in range(DAY_READINGS):
        ts = now - 86_400 + i * 900
        hour = i / 4
        occupied = 6 <= hour < 10 or 13 <= hour < 19
        co2 += ((1150.0 if occupied else 430.0) - co2) * 0.25
        temperature += ((22.4 if occupied else 20.6) - temperature) * 0.2
        env = {"co2": round(co2), "temperature": round(temperature, 2), "ts": ts}
        publisher.publish(f"{room_topic}/focus-env", env)
        publisher.publish(f"{room_topic}/focus-pir", {"occupancy": occupied, "ts": ts})
        light = (
            {"state": "ON", "brightness": 203, "power": 12.0} if occupied else {"state": "OFF", "power": 0.0}
        )
        publisher.publish(f"{room_topic}/focus-light", {**light, "ts": ts})


@dataclass
class Site:
    gateway: RunningGateway
    building: str
    floor: VirtualFloor
    broker: BrokerProcess

    @property
    def url(self) -> str:
        return f"{self.gateway.server.url}/"

    def topic(self, room: str, device: str) -> str:
        return f"{self.gateway.prefix}/{self.building}/{FLOOR}/{room}/{device}"


def site_config(floor: VirtualFloor, building: str, prefix: str) -> dict[str, Any]:
    plan = plan_cells(floor.site_rooms())
    return {
        "mqtt": {"topic_prefix": prefix},
        # The simulated people leave quickly at this pace; the test's own room holds.
        "occupancy": {"vacancy_timeout": 600.0 / TIME_SCALE},
        "site": {
            "rooms": [
                *({**room, **plan[room["id"]]} for room in floor.site_rooms()),
                # Placed by the dashboard: one driven by the tests, one nothing reports to.
                {"id": "focus", "name": "Focus room", "building": building, "floor": FLOOR, "type": "office",
                 "capacity": 2, "vacancy_timeout": 3600},
                {"id": "store", "name": "Store", "building": building, "floor": FLOOR, "type": "other"},
            ],
            "devices": [
                *floor.site_devices(),
                {"id": "focus-pir", "room": "focus", "kind": "sensor"},
                {"id": "focus-env", "room": "focus", "kind": "sensor"},
                {"id": "focus-light", "room": "focus", "kind": "light"},
            ],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def site(mqtt_broker: BrokerProcess) -> Iterator[Site]:
    # Room state topics (officegw/state/...) have no per-test prefix: a building of our own.
    building, prefix = f"hq-{uuid.uuid4().hex[:4]}", unique_prefix()
    floor = VirtualFloor(
        building=building, floor=FLOOR, rooms=6, seed=3, time_scale=TIME_SCALE, prefix=prefix
    )
    running = start_gateway(mqtt_broker, site_config(floor, building, prefix))
    publisher = Publisher(mqtt_broker)
    try:
        publish_a_day(publisher, f"{prefix}/{building}/{FLOOR}/focus", time.time())
    finally:
        publisher.close()
    wait_until(
        lambda: running.metric("officegw_history_readings_written_total") >= 3 * DAY_READINGS,
        10.0,
        "the focus room's day stored",
    )
    stop = threading.Event()
    simulator = threading.Thread(
        target=run_floor,
        args=(floor, mqtt_broker.host, mqtt_broker.port),
        kwargs={"mqtt5": mqtt_broker.mqtt5, "stop": stop},
        daemon=True,
    )
    simulator.start()
    try:
        yield Site(running, building, floor, mqtt_broker)
    finally:
        stop.set()
        simulator.join(10)
        running.stop()


def open_floor(page: Page, site: Site) -> None:
    page.goto(site.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=10_000)


def tile(page: Page, room: str) -> Any:
    return page.locator(f'.tile[data-room="{room}"]')


def test_every_configured_room_is_on_the_plan(page: Page, site: Site) -> None:
    open_floor(page, site)
    configured = [room.id for room in site.gateway.settings.site.rooms]
    expect(page.locator(".tile")).to_have_count(len(configured))
    for room in site.gateway.settings.site.rooms:
        shown = tile(page, room.id)
        expect(shown).to_contain_text(room.name or room.id)
        if room.plan_cell is not None:
            x, y, w, h = room.plan_cell
            assert shown.evaluate("t => [t.style.gridColumn, t.style.gridRow]") == [
                f"{x + 1} / span {w}",
                f"{y + 1} / span {h}",
            ]
    # A room nothing reports to says so in words, not only in grey.
    expect(tile(page, "store")).to_have_attribute("data-occupancy", "unknown")
    expect(tile(page, "store")).to_contain_text("No data")
    expect(page.locator("#floor-title")).to_contain_text(f"{site.building}, floor {FLOOR}")
    # The simulated people have come in and the rules have acted: the floor as it looks in use.
    expect(page.locator('.tile[data-occupancy="occupied"]').first).to_be_visible(timeout=15_000)
    expect(page.locator("#actions-list li[data-rule]").first).to_contain_text("rule ", timeout=15_000)
    screenshot(page, "dashboard-floor.png")
    # A tablet held upright: everything still there, nothing wider than the screen.
    page.set_viewport_size({"width": 768, "height": 1024})
    expect(page.locator(".tile")).to_have_count(len(configured))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator(".alerts").bounding_box()["y"] > page.locator("#plan").bounding_box()["y"]  # type: ignore[index]


def test_motion_turns_a_tile_occupied_within_two_seconds(
    page: Page, site: Site, publisher: Publisher
) -> None:
    open_floor(page, site)
    store = tile(page, "store")
    expect(store).to_have_attribute("data-occupancy", "unknown")
    page.evaluate("window.sameDocument = true")
    sent = time.monotonic()
    # A sensor nobody configured, in a room that never reported: it counts at once.
    publisher.publish(site.topic("store", "store-pir"), {"occupancy": True})
    expect(store).to_have_attribute("data-occupancy", "occupied", timeout=2_000)
    took = time.monotonic() - sent
    assert took < 2.0, f"the tile turned occupied {took:.2f} s after the message"
    expect(store).to_contain_text("Occupied")
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"


def test_a_room_drawer_shows_its_day(page: Page, site: Site) -> None:
    open_floor(page, site)
    focus = tile(page, "focus")
    focus.focus()
    page.keyboard.press("Enter")
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible()
    expect(page.locator("#drawer-title")).to_have_text("Focus room")
    expect(drawer).to_contain_text("The last 24 hours")
    for chart in ("occupancy", "co2", "temperature", "power"):
        svg = drawer.locator(f'figure[data-chart="{chart}"] svg')
        expect(svg).to_be_visible(timeout=5_000)
        # A reading every 15 minutes, in buckets of 12: nearly every reading its own point.
        assert int(svg.get_attribute("data-points") or 0) >= DAY_READINGS - 4, chart
        assert svg.locator("polyline.mean").count() >= 1, chart
    co2 = drawer.locator('figure[data-chart="co2"]')
    expect(co2.locator("line.threshold")).to_have_count(1)
    latest = round(site.gateway.room("focus")["environment"]["co2_ppm"])
    expect(co2).to_contain_text(f"latest {latest:,} ppm")
    # The explanation and the room's events come from their own endpoints.
    why = site.gateway.get("/v1/rooms/focus/occupancy/explain").json()["why"]
    expect(drawer.locator(".why")).to_contain_text(why.split()[0].rstrip(":"))
    expect(drawer.locator('li[data-kind="occupancy"]').first).to_contain_text("→ occupied")
    # Tall enough for the charts under the facts.
    page.set_viewport_size({"width": 1280, "height": 1500})
    screenshot(page, "dashboard-drawer.png")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(focus).to_be_focused()


def test_the_light_buttons_reach_the_device(page: Page, site: Site) -> None:
    received: list[dict[str, Any]] = []
    subscribed = threading.Event()
    device = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if site.broker.mqtt5 else mqtt.MQTTv311
    )
    device.on_subscribe = lambda *args: subscribed.set()
    device.on_message = lambda client, userdata, message: received.append(orjson.loads(message.payload))
    device.connect(site.broker.host, site.broker.port)
    device.subscribe(site.topic("focus", "focus-light") + "/set", qos=1)
    device.loop_start()
    try:
        assert subscribed.wait(5), "no SUBACK"
        open_floor(page, site)
        tile(page, "focus").click()
        drawer = page.locator("#drawer")
        drawer.get_by_role("button", name="Turn on").click()
        wait_until(lambda: any(c.get("state") == "ON" for c in received), 5.0, "the ON command on the broker")
        expect(drawer.get_by_role("status").filter(has_text="focus-light")).to_contain_text(
            "focus-light: sent"
        )
    finally:
        device.disconnect()
        device.loop_stop()


def test_connection_lost_shows_and_clears_when_the_gateway_returns(
    page: Page, site: Site, publisher: Publisher
) -> None:
    open_floor(page, site)
    banner = page.locator("#banner")
    expect(banner).to_be_hidden()
    port = site.gateway.server.port
    site.gateway.server.stop()
    expect(page.locator("#connection")).to_have_text("Connection lost, retrying", timeout=5_000)
    expect(banner).to_contain_text("Connection lost, retrying")
    # The same gateway again, on the same port and store.
    site.gateway.server = ServerThread(build_app(site.gateway.settings), "127.0.0.1", port).start()
    expect(page.locator("#connection")).to_have_text("Live", timeout=15_000)
    expect(banner).to_be_hidden()
    # Live again: a change after the restart reaches the tile.
    publisher.publish(site.topic("focus", "focus-env"), {"co2": 1450})
    expect(tile(page, "focus")).to_contain_text("CO2 1,450 ppm, high", timeout=5_000)
