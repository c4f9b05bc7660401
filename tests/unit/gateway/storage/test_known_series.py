"""The store's memory of which (room, metric) series exist."""

from __future__ import annotations

from gateway.storage.records import Reading
from gateway.storage.sqlite_store import KnownSeries


def reading(room: str, metric: str) -> Reading:
    return Reading(f"{room}-d", room, "hq", "1", metric, 1.0, 1.0, 1.0, "environment")


def test_only_pairs_not_known_are_new() -> None:
    known = KnownSeries([("orion", "co2")])
    batch = [reading("orion", "co2"), reading("orion", "temperature"), reading("vega", "co2")]
    assert known.new(batch) == {("orion", "temperature"), ("vega", "co2")}
    known.add(known.new(batch))
    assert known.new(batch) == set()
    assert ("vega", "co2") in known and ("vega", "temperature") not in known


def test_rooms_with_the_same_metrics_share_one_set() -> None:
    known = KnownSeries([("orion", "co2"), ("vega", "co2"), ("orion", "lux"), ("vega", "lux")])
    rooms = known._rooms  # the sharing is the point
    assert rooms["orion"] is rooms["vega"]
