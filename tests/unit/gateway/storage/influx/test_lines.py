"""Line protocol of readings and events: the schema the InfluxDB export writes."""

from __future__ import annotations

from gateway.storage.influx.lines import event_line, reading_line, reading_point
from gateway.storage.records import Reading, StoredEvent


def reading(**overrides: object) -> Reading:
    fields: dict[str, object] = {
        "device_id": "co2-1",
        "room_id": "orion",
        "building": "hq",
        "floor": "2",
        "metric": "co2",
        "value": 612.0,
        "ts": 1_700_000_000.1234,
        "received_at": 1_700_000_001.0,
        "kind": "environment",
    }
    return Reading(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_reading_is_one_point_of_its_kind_tagged_by_place_and_device_in_ms() -> None:
    assert (
        reading_line(reading())
        == "environment,building=hq,device=co2-1,floor=2,room=orion co2=612 1700000000123"
    )


def test_values_are_always_floats_so_a_field_never_changes_type() -> None:
    assert reading_line(reading(metric="people", value=3, kind="occupancy")) == (
        "occupancy,building=hq,device=co2-1,floor=2,room=orion people=3 1700000000123"
    )
    assert " people=3i " not in (reading_line(reading(metric="people", value=3)) or "")


def test_tag_values_with_spaces_commas_and_equals_are_escaped() -> None:
    line = reading_line(reading(device_id="light 1,a=b", room_id="big room"))
    assert line == (
        r"environment,building=hq,device=light\ 1\,a\=b,floor=2,room=big\ room co2=612 1700000000123"
    )


def test_what_cannot_be_written_is_none() -> None:
    assert reading_line(reading(value=float("nan"))) is None
    assert reading_line(reading(value=float("inf"))) is None
    assert reading_line(reading(kind="#comment")) is None
    assert reading_line(reading(kind="")) is None


def test_an_event_carries_its_data_as_fields_and_a_count() -> None:
    event = StoredEvent(
        "command",
        "orion",
        "hq",
        "2",
        1_700_000_000.5,
        {"device": "light-1", "payload": {"state": "OFF", "brightness": 0}, "attempt": 2, "ok": True},
    )
    assert event_line(event) == (
        "events,building=hq,device=light-1,floor=2,kind=command,room=orion "
        'attempt=2,count=1,ok=true,payload="{\\"brightness\\":0,\\"state\\":\\"OFF\\"}" 1700000000500'
    )


def test_an_event_without_a_room_or_data_still_counts() -> None:
    assert event_line(StoredEvent("rules", None, None, None, 1_700_000_000.0, {})) == (
        "events,kind=rules count=1 1700000000000"
    )


def test_event_data_named_like_a_tag_or_the_count_does_not_shadow_them() -> None:
    line = event_line(StoredEvent("alert", "orion", "hq", "2", 1.0, {"kind": "x", "count": 5, "skip": None}))
    assert (
        line == 'events,building=hq,floor=2,kind=alert,room=orion count=1,count_value=5,kind_value="x" 1000'
    )


def test_strings_are_quoted_and_escaped() -> None:
    line = event_line(StoredEvent("alert", "orion", "hq", "2", 1.0, {"message": 'say "hi"\\now'}))
    assert line is not None and 'message="say \\"hi\\"\\\\now"' in line


def test_the_fast_reading_encoding_is_exactly_influxdb_clients() -> None:
    tricky = [
        reading(),
        reading(value=0.1 + 0.2, ts=1_700_000_000.0005),
        reading(value=1e21, metric="energy", kind="energy"),
        reading(value=-0.0),
        reading(value=7, metric="people"),
        reading(device_id="a b,c=d", room_id="tab\there", building="new\nline", floor="B1"),
        reading(device_id="ends\\", room_id="x"),
        reading(floor=""),
        reading(metric="odd metric,=x"),
        reading(value=float("nan")),
    ]
    for item in tricky:
        assert reading_line(item) == reading_point(item), item
