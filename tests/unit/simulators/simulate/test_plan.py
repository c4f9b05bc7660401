"""A scenario made concrete: names, topics, and a site config the gateway accepts."""

from __future__ import annotations

import pytest
import yaml

from gateway.config import settings_from_dict
from simulators.simulate.cli import main
from simulators.simulate.library import load_scenario, shipped
from simulators.simulate.plan import SitePlan


def topic_matches(pattern: str, topic: str) -> bool:
    pattern_levels, topic_levels = pattern.split("/"), topic.split("/")
    if len(pattern_levels) != len(topic_levels):
        return False
    return all(p in ("+", t) for p, t in zip(pattern_levels, topic_levels, strict=True))


@pytest.mark.parametrize("name", ["small-office", "faults"])
def test_the_printed_site_config_is_one_the_gateway_accepts(name: str) -> None:
    plan = SitePlan(load_scenario(name))
    settings = settings_from_dict(plan.site_config())
    assert settings.clock.mode == "device"
    assert {room.id for room in settings.site.rooms} == set(plan.rooms)
    mapped = {device.id for device in settings.site.devices}
    assert mapped == {d.config_id for d in plan.devices.values() if d.dialect != "native"}
    assert all(room.bookable == (room.type == "meeting") for room in settings.site.rooms)


def test_campus_is_two_thousand_rooms_and_about_twenty_thousand_devices() -> None:
    plan = SitePlan(load_scenario("campus"))
    assert len(plan.rooms) == 2000
    assert 19_900 <= len(plan.devices) <= 20_100
    assert set(plan.buildings) == {"north", "south", "east"}
    assert {d.dialect for d in plan.devices.values()} == {
        "native",
        "zigbee2mqtt",
        "tasmota",
        "shelly",
        "homie",
    }
    assert any("max_auto_rooms" in reason for reason in plan.needs_site_config())


def test_small_office_runs_against_a_gateway_with_no_rooms() -> None:
    assert SitePlan(load_scenario("small-office")).needs_site_config() == []


def test_every_command_topic_is_under_a_subscribed_filter() -> None:
    for name in shipped():
        plan = SitePlan(load_scenario(name))
        filters = plan.command_topics()
        for device in plan.devices.values():
            for topic in device.speaker.command_topics():
                assert any(topic_matches(f, topic) for f in filters), (name, topic)


def test_device_names_and_gateway_ids() -> None:
    plan = SitePlan(load_scenario("small-office"))
    light = plan.devices["open-north/light-2"]
    assert light.speaker.topic == "office/hq/2/open-north/light-2"
    assert plan.gateway_ids(light)[0] == "open-north.light-2"
    faults = SitePlan(load_scenario("faults"))
    relay = faults.devices["galley/light-1"]
    assert (relay.dialect, relay.speaker.topic, faults.gateway_ids(relay)) == (
        "shelly", "shellyplus1pm-galley-light-1", ("galley-light-1",)
    )  # fmt: skip


def test_print_config_and_list_and_a_bad_scenario(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    assert main(["--scenario", "faults", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert settings_from_dict(printed).clock.mode == "device"
    assert main(["--list"]) == 0
    assert "small-office" in capsys.readouterr().out
    assert main(["--scenario", "no-such-scenario"]) == 2
    assert "no shipped scenario of that name" in capsys.readouterr().err
