"""Site config: every problem reported with its path, env overrides applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings, settings_from_dict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.problems


def test_design_example_is_valid(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
gateway: {id: gw-hq}
mqtt:    {url: "mqtt://127.0.0.1:1883", topic_prefix: office}
api:     {host: 127.0.0.1, port: 8000}
storage: {path: var/officegw.db}
site:
  rooms:
    - {id: orion, name: Orion, building: hq, floor: 2, type: meeting,
       capacity: 8, features: [display, vc], bookable: true, vacancy_timeout: 600}
  devices:
    - {id: orion-pir, room: orion}
bookings: {checkin_window: 600, release_when_vacant: 900}
""",
    )
    settings = load_settings(path)
    assert settings.site.rooms[0].floor == "2"
    assert settings.vacancy_timeout_for(settings.site.rooms[0]) == 600
    assert settings.mqtt.port == 1883


def test_every_error_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms:
    - {id: orion, building: hq, floor: 2}
    - {id: lyra, building: hq, floor: 2, type: meating}
    - {id: vega, building: hq, floor: 2, capacity: -1}
mqtt: {url: "http://broker", colour: blue}
""",
    )
    assert problems(path) == [
        "mqtt.url: must look like mqtt://host:port",
        "mqtt.colour: unknown key",
        "site.rooms[1].type: input should be 'meeting', 'office', 'open', 'restroom', 'kitchen', "
        "'phone_booth', 'lobby', 'other' or 'unknown'",
        "site.rooms[2].capacity: must be >= 0",
    ]


def test_unknown_dialects_are_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms: [{id: orion, building: hq, floor: 2}]
  devices: [{id: co2, room: orion, dialect: smoke-signals}]
""",
    )
    assert problems(path) == [
        "site.devices[0].dialect: unknown dialect 'smoke-signals'; "
        "known: homie, native, shelly, tasmota, zigbee2mqtt"
    ]


def test_mapped_devices_need_a_topic(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms: [{id: orion, building: hq, floor: 2}]
  devices:
    - {id: co2, room: orion, dialect: zigbee2mqtt}
    - {id: pir, room: orion, dialect: zigbee2mqtt, topic: "zigbee2mqtt/#"}
""",
    )
    assert problems(path) == [
        "site.devices[0]: topic: required for dialect 'zigbee2mqtt' (e.g. zigbee2mqtt/<friendly name>)",
        "site.devices[1]: topic: must not contain MQTT wildcards (+ or #)",
    ]


def test_shelly_channels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms: [{id: orion, building: hq, floor: 2}, {id: lyra, building: hq, floor: 2}]
  devices:
    - {id: orion-light, room: orion, dialect: shelly, topic: shellies/pro2pm}
    - {id: lyra-light, room: lyra, dialect: shelly, topic: shellies/pro2pm, channel: 1}
""",
    )
    devices = load_settings(path).site.devices
    assert [(d.id, d.channel) for d in devices] == [("orion-light", None), ("lyra-light", 1)]


def test_channels_are_shelly_only_and_never_shared(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms: [{id: orion, building: hq, floor: 2}]
  devices:
    - {id: bulb, room: orion, dialect: zigbee2mqtt, topic: zigbee2mqtt/bulb, channel: 1}
    - {id: relay-a, room: orion, dialect: shelly, topic: shelly1}
    - {id: relay-b, room: orion, dialect: shelly, topic: shelly1, channel: 0}
    - {id: relay-c, room: orion, dialect: shelly, topic: shelly1, channel: -1}
    - {id: plug, room: orion, dialect: tasmota, topic: plug}
    - {id: plug-again, room: orion, dialect: tasmota, topic: plug}
""",
    )
    assert problems(path) == [
        "site.devices[0]: channel: dialect 'zigbee2mqtt' has no channels (only shelly)",
        "site.devices[2].topic: topic and channel 0 already mapped by device 'relay-a'",
        "site.devices[3].channel: must be >= 0",
        "site.devices[5].topic: topic already mapped by device 'plug'",
    ]


def test_duplicates_and_unknown_rooms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms:
    - {id: orion, building: hq, floor: 2}
    - {id: orion, building: hq, floor: 3}
  devices:
    - {id: pir, room: nowhere}
""",
    )
    assert problems(path) == [
        "site.rooms[1].id: duplicate room id 'orion'",
        "site.devices[0].room: unknown room 'nowhere'",
    ]


def test_public_api_needs_keys(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "api: {host: 0.0.0.0}\n"))[0].startswith(
        "api.host: '0.0.0.0' is not loopback"
    )


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    assert problems(tmp_path / "missing.yaml") == ["cannot read file: No such file or directory"]
    assert problems(write(tmp_path, "site: [\n"))[0].startswith("line 2, column 1: invalid YAML")
    assert problems(write(tmp_path, "- just\n- a list\n")) == [
        "top level must be a mapping of sections (gateway, mqtt, site, ...)"
    ]


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "mqtt: {url: 'mqtt://127.0.0.1:1883', topic_prefix: office}\n")
    monkeypatch.setenv("OFFICEGW_MQTT__URL", "mqtt://broker.internal:8883")
    monkeypatch.setenv("OFFICEGW_GATEWAY__ID", "gw-env")
    settings = load_settings(path)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.topic_prefix) == (
        "broker.internal",
        8883,
        "office",
    )
    assert settings.gateway.id == "gw-env"


def test_bad_environment_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICEGW_API__PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert caught.value.problems[0].startswith("api.port: ")


def test_device_kinds_match_what_rules_may_command() -> None:
    from typing import get_args

    from gateway.config import DeviceKind
    from rules.spec import DEVICE_KINDS

    assert set(get_args(DeviceKind)) == set(DEVICE_KINDS)


def test_influxdb_section_needs_org_and_bucket_and_an_http_url(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "influxdb: {url: 'http://db:8086'}")) == [
        "influxdb: org and bucket required when url is set"
    ]
    assert problems(write(tmp_path, "influxdb: {url: 'db:8086', org: o, bucket: b}")) == [
        "influxdb.url: must look like http://host:8086"
    ]
    assert problems(
        write(
            tmp_path,
            "influxdb: {url: 'http://db', org: o, bucket: b, retry_min_delay: 9, retry_max_delay: 2}",
        )
    ) == ["influxdb: retry_max_delay must be >= retry_min_delay"]


def test_storage_url_must_be_a_postgresql_database(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "storage: {url: 'mysql://db/officegw'}")) == [
        "storage.url: must look like postgresql://user:password@host:5432/database"
    ]
    assert problems(write(tmp_path, "storage: {url: 'postgresql://db:5432'}")) == [
        "storage.url: must name a database: postgresql://host:5432/<database>"
    ]
    assert problems(write(tmp_path, "storage: {url: 'postgres://db:99999/officegw'}")) == [
        "storage.url: port must be a number from 1 to 65535"
    ]
    settings = load_settings(write(tmp_path, "storage: {url: 'postgresql://gw:pw@db:5432/officegw'}"))
    assert settings.storage.shared and settings.storage.url == "postgresql://gw:pw@db:5432/officegw"
    assert not load_settings(write(tmp_path, "storage: {path: x.db}")).storage.shared
    for url in ("postgresql://officegw@db/campus", "postgres://db:5432/campus"):
        assert load_settings(write(tmp_path, f"storage: {{url: '{url}'}}")).storage.url == url


def test_influxdb_buffer_sits_next_to_the_database_unless_configured(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            "storage: {path: /var/lib/officegw/officegw.db}\n"
            "influxdb: {url: 'http://db:8086', org: o, bucket: b}",
        )
    )
    assert settings.influxdb is not None and settings.influxdb.enabled
    assert (
        str(settings.influxdb.buffer_file(settings.storage.path))
        == "/var/lib/officegw/officegw.db.influx-buffer"
    )
    assert load_settings(write(tmp_path, "influxdb: {}")).influxdb.enabled is False  # type: ignore[union-attr]


def test_influxdb_token_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICEGW_INFLUXDB__TOKEN", "s3cret")
    settings = load_settings(write(tmp_path, "influxdb: {url: 'http://db:8086', org: o, bucket: b}"))
    assert settings.influxdb is not None and settings.influxdb.token == "s3cret"


def test_cross_references_are_checked_beside_schema_errors(tmp_path: Path) -> None:
    """A room with a bad field still defines its id; a device in no room is reported in the same pass."""
    path = write(
        tmp_path,
        """
site:
  rooms:
    - {id: orion, building: hq, floor: 2, capacity: -1}
    - {id: lyra}
    - {id: orion, building: hq, floor: 3}
  devices:
    - {id: pir, room: nowhere}
    - {id: co2, room: lyra, dialect: zigbee2mqtt, rated_watts: 0}
    - {id: pir, room: orion}
quality: {max_rate: 0}
""",
    )
    assert problems(path) == [
        "site.rooms[0].capacity: must be >= 0",
        "site.rooms[1].building: is required",
        "site.rooms[1].floor: is required",
        "site.rooms[2].id: duplicate room id 'orion'",
        "site.devices[0].room: unknown room 'nowhere'",
        "site.devices[1].rated_watts: must be > 0",
        "site.devices[1]: topic: required for dialect 'zigbee2mqtt' (e.g. zigbee2mqtt/<friendly name>)",
        "site.devices[2].id: duplicate device id 'pir'",
        "quality.max_rate: must be > 0",
    ]


def test_unreadable_rooms_make_no_device_an_unknown_room(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  rooms: 3\n  devices: [{id: pir, room: orion}]\n")
    assert problems(path) == ["site.rooms: input should be a valid list"]


def test_api_exposure_and_influxdb_completeness_are_checked_beside_schema_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "api: {host: 0.0.0.0, port: -1}\n"
        "influxdb: {url: 'http://db:8086', batch_size: 0, retry_min_delay: 9, retry_max_delay: 2}\n",
    )
    found = problems(path)
    assert found[0] == "api.port: must be >= 0"
    assert found[1].startswith("api.host: '0.0.0.0' is not loopback")
    assert found[2:] == [
        "influxdb.batch_size: must be >= 1",
        "influxdb: org and bucket required when url is set",
        "influxdb: retry_max_delay must be >= retry_min_delay",
    ]


def test_unknown_keys_suggest_the_closest_known_one(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "mqtt: {keepalve: 30}\nsite: {romos: []}\n")) == [
        "mqtt.keepalve: unknown key (did you mean 'keepalive'?)",
        "site.romos: unknown key (did you mean 'rooms'?)",
    ]


def test_identifiers_say_what_they_may_hold(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "gateway: {id: 'gw hq'}\nmqtt: {topic_prefix: 'a/#'}\n")) == [
        "gateway.id: only letters, digits, '-', '_', '.' and ':' (starting with a letter or digit)",
        "mqtt.topic_prefix: must not contain the MQTT wildcards + or #",
    ]


def test_problems_name_the_environment_variable_they_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "mqtt: {keepalive: 30}\nsite:\n  rooms: [{id: orion, building: hq, floor: 2}]\n")
    monkeypatch.setenv("OFFICEGW_MQTT__KEEPALIVE", "abc")
    monkeypatch.setenv("OFFICEGW_SITE__DEVICES", '[{"id": "pir", "room": "nowhere"}]')
    monkeypatch.setenv("OFFICEGW_STORAGE", '{"commit_interval": 0}')
    assert problems(path) == [
        "mqtt.keepalive: input should be a valid integer, unable to parse string as an integer "
        "(from environment variable OFFICEGW_MQTT__KEEPALIVE)",
        "storage.commit_interval: must be > 0 (from environment variable OFFICEGW_STORAGE)",
        "site.devices[0].room: unknown room 'nowhere' (from environment variable OFFICEGW_SITE__DEVICES)",
    ]


def test_a_value_from_the_file_names_no_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICEGW_MQTT__URL", "mqtt://broker:1883")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "mqtt: {keepalive: 1}\n"))
    assert caught.value.problems == ["mqtt.keepalive: must be >= 5"]
    assert caught.value.render().splitlines()[0] == f"invalid config {tmp_path / 'site.yaml'}:"


def test_environment_json_that_is_not_json_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICEGW_SITE__ROOMS", "[{id: orion}]")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    (problem,) = caught.value.problems
    assert problem.startswith("site: not valid JSON")
    assert problem.endswith("(from environment variable OFFICEGW_SITE__ROOMS)")


def test_bad_overrides_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"api": {"port": 70000}})
    assert caught.value.problems == ["api.port: must be <= 65535 (from the command line)"]
    monkeypatch.setenv("OFFICEGW_API__PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"api": {"port": 8002}})
    assert caught.value.problems == [
        "api.port: input should be a valid integer, unable to parse string as an integer "
        "(from environment variable OFFICEGW_API__PORT)"
    ]


def test_config_and_rules_errors_share_one_family(tmp_path: Path) -> None:
    from rules.engine import RulesError
    from rules.problems import ProblemsError

    with pytest.raises(ProblemsError) as caught:
        load_settings(tmp_path / "missing.yaml")
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)
    assert issubclass(RulesError, ProblemsError)
    assert caught.value.render() == (
        f"invalid config {tmp_path / 'missing.yaml'}:\n  cannot read file: No such file or directory"
    )


def test_push_settings_are_checked_with_their_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(
            {
                "push": {
                    "webhooks": {"retry_min_delay": 10, "retry_max_delay": 1},
                    "stream": {"queue_size": 1},
                    "state": {"nope": 1},
                }
            }
        )
    assert caught.value.problems == [
        "push.state.nope: unknown key",
        "push.stream.queue_size: must be >= 10",
        "push.webhooks: retry_max_delay must be >= retry_min_delay",
    ]


def test_plan_cells_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
site:
  rooms:
    - {id: orion, building: hq, floor: 2, x: 0, y: 0, w: 3}
    - {id: lyra, building: hq, floor: 2, x: 2, y: 0}
    - {id: vega, building: hq, floor: 2, x: 3}
    - {id: draco, building: hq, floor: 2, w: 2}
    - {id: cygnus, building: hq, floor: 2, x: 5, y: 0, h: 0}
    - {id: auriga, building: hq, floor: 2, x: 1.5, y: 0}
""",
    )
    assert problems(path) == [
        "site.rooms[1]: overlaps room 'orion' on the plan of floor 2 of hq",
        "site.rooms[2]: x and y: give both (the room's column and row on its floor plan) or neither",
        "site.rooms[3]: w and h: need x and y (where the room starts on its floor plan)",
        "site.rooms[4].h: must be >= 1",
        "site.rooms[5].x: input should be a valid integer, got a number with a fractional part",
    ]


def test_rooms_side_by_side_and_on_other_floors_do_not_overlap() -> None:
    settings = settings_from_dict(
        {
            "site": {
                "rooms": [
                    {"id": "orion", "building": "hq", "floor": 2, "x": 0, "y": 0, "w": 2, "h": 2},
                    {"id": "lyra", "building": "hq", "floor": 2, "x": 2, "y": 0},
                    {"id": "vega", "building": "hq", "floor": 2, "x": 0, "y": 2},
                    {"id": "draco", "building": "hq", "floor": 3, "x": 0, "y": 0},
                    {"id": "cygnus", "building": "annex", "floor": 2, "x": 1, "y": 1},
                    {"id": "auriga", "building": "hq", "floor": 2},
                ]
            }
        }
    )
    cells = {room.id: room.plan_cell for room in settings.site.rooms}
    assert cells == {
        "orion": (0, 0, 2, 2),
        "lyra": (2, 0, 1, 1),
        "vega": (0, 2, 1, 1),
        "draco": (0, 0, 1, 1),
        "cygnus": (1, 1, 1, 1),
        "auriga": None,
    }


def test_the_gil_switch_interval_is_bounded(tmp_path: Path) -> None:
    assert load_settings(None).gateway.gil_switch_interval == 0.005
    found = problems(write(tmp_path, "gateway:\n  gil_switch_interval: 0\n"))
    assert found[0].startswith("gateway.gil_switch_interval: ")
