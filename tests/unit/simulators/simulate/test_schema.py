"""Scenario files: the shipped ones load; every mistake is named with its path."""

from __future__ import annotations

import pytest

from simulators.simulate.library import load_scenario, parse_scenario, shipped
from simulators.simulate.schema import ScenarioError, parse_duration, parse_time_of_day

GOOD = """
name: tiny
buildings:
  - id: hq
    floors:
      - id: 2
        rooms:
          - {id: orion, type: meeting, capacity: 4}
          - {id: office-1, type: office}
fits:
  meeting: [{kind: pir}, {kind: counter}, {kind: light, count: 2}]
  office: [{kind: radar}, {kind: env, dialect: zigbee2mqtt}]
populations: [{name: staff, size: 3}]
faults:
  - {kind: device_offline, device: orion/pir, at: "10:00", for: 30m}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "test.yaml")
    return caught.value.problems


def test_every_shipped_scenario_loads() -> None:
    assert set(shipped()) >= {"small-office", "campus", "faults"}
    for name in shipped():
        assert load_scenario(name).name == name


def test_a_good_file_gives_rooms_devices_and_faults() -> None:
    scenario = parse_scenario(GOOD)
    assert [room.id for _, _, room in scenario.rooms()] == ["orion", "office-1"]
    assert scenario.faults[0].at == 36_000
    assert scenario.faults[0].for_ == 1800  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("orion/pir", "orion/radar"),
            "faults[0].device: room orion has no device 'radar' (it has pir, counter, light-1, light-2)",
        ),
        (
            ("orion/pir", "vega/pir"),
            "faults[0].device: unknown device 'vega/pir' (write room/device, e.g. orion/pir)",
        ),
        (
            ("for: 30m", "for: soon"),
            "faults[0].for: 'soon' is not a duration (seconds, or text like 90s, 30m, 1h30m)",
        ),
        (('at: "10:00"', 'at: "25:00"'), "faults[0].at: '25:00' is not a time of day (00:00 to 24:00)"),
        (("kind: device_offline", "kind: meltdown"), "faults[0]: input tag 'meltdown' found using 'kind'"),
        (
            ("{kind: radar}", "{kind: radar, dialect: tasmota}"),
            "fits.office[0].dialect: tasmota devices here are light, not radar",
        ),
        (
            ("type: office}", "type: office, fit: desk}"),
            "buildings[0].floors[0].rooms[1].fit: no device fit 'desk' in fits",
        ),
        (
            ("populations: [{name: staff, size: 3}]", "populations: [{name: staff, size: 3, sise: 4}]"),
            "populations[0].sise: unknown key (did you mean 'size'?)",
        ),
        (("id: office-1", "id: orion"), "buildings[0].floors[0].rooms[1].id: duplicate room id 'orion'"),
    ],
)
def test_problems_are_named_by_their_path(change: tuple[str, str], expected: str) -> None:
    found = problems(GOOD.replace(*change))
    assert any(problem.startswith(expected) for problem in found), found


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("size: 3", "size: 0").replace("for: 30m", "for: -5")
    found = problems(text)
    assert any(p.startswith("populations[0].size: must be >= 1") for p in found), found
    assert any(p.startswith("faults[0].for: must be >= 0") for p in found), found


def test_faults_must_suit_the_device() -> None:
    stuck = GOOD.replace(
        "kind: device_offline, device: orion/pir", "kind: stuck_sensor, device: orion/counter"
    )
    assert problems(stuck) == [
        "faults[0].device: orion/counter is a counter: a stuck sensor is a pir or a radar"
    ]
    drift = GOOD.replace(
        "kind: device_offline, device: orion/pir", "kind: schema_drift, device: orion/pir, rename: {a: b}"
    ).replace("{kind: pir}", "{kind: pir, dialect: homie}")
    assert "schema drift needs a native or zigbee2mqtt device" in problems(drift)[0]


def test_not_yaml_and_not_a_mapping_are_refused_with_the_source() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("name: [", "broken.yaml")
    assert caught.value.source == "broken.yaml"
    assert caught.value.problems[0].startswith("line ")
    assert problems("- a list") == ["(top level): a mapping of keys (name, buildings, fits, ...)"]
    with pytest.raises(ScenarioError, match="no shipped scenario of that name"):
        load_scenario("no-such-scenario")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2h", 7200), (45, 45)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_times_of_day_also_from_unquoted_yaml() -> None:
    assert parse_time_of_day("08:30") == 8.5 * 3600
    assert parse_time_of_day(510) == 8.5 * 3600  # YAML 1.1 reads 08:30 as 510 (minutes)
    assert parse_scenario(GOOD.replace('at: "10:00"', "at: 10:00")).faults[0].at == 36_000
