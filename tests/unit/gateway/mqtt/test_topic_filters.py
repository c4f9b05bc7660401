"""Trailing-wildcard filters: the second routing step, after exact topics."""

from __future__ import annotations

import pytest

from gateway.mqtt.topic_filters import TrailingWildcards, is_filter


def test_matches_trailing_plus_levels_only_at_their_depth() -> None:
    filters = TrailingWildcards({"homie/5/lamp/+/+": "lamp", "homie/5/pir/+/+": "pir", "a/+": "a"})
    assert filters.match("homie/5/lamp/light/on") == "lamp"
    assert filters.match("homie/5/pir/pir/motion") == "pir"
    assert filters.match("a/b") == "a"
    for topic in (
        "homie/5/lamp/light",  # too short
        "homie/5/lamp/light/on/set",  # too long: commands are not routed
        "homie/5/other/light/on",
        "homie/5/lamp",
        "a",
        "a/b/c",
    ):
        assert filters.match(topic) is None, topic
    assert len(filters) == 3


@pytest.mark.parametrize("topic_filter", ["a/+/b", "a/#", "a/b"])
def test_other_filters_are_refused(topic_filter: str) -> None:
    with pytest.raises(ValueError, match="trailing"):
        TrailingWildcards({topic_filter: 1})


def test_is_filter() -> None:
    assert is_filter("homie/5/x/+/+")
    assert is_filter("a/#")
    assert not is_filter("zigbee2mqtt/Orion radar")
