"""MQTT filters whose wildcards are trailing `+` levels (`homie/5/lamp/+/+`), matched in O(1).

Exact topics are a dict lookup in the ingest pipeline; these filters come second,
for dialects whose device topics cannot be listed in advance. A filter is indexed
by its literal levels and its length, so matching a topic is one dict lookup per
distinct number of literal levels (one, in practice), however many devices there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


def is_filter(topic: str) -> bool:
    return "+" in topic or "#" in topic


class TrailingWildcards(Generic[T]):
    def __init__(self, filters: Mapping[str, T]) -> None:
        self._by_prefix: dict[tuple[str, int], T] = {}
        depths: set[int] = set()
        for topic_filter, value in filters.items():
            levels = topic_filter.split("/")
            literal = levels.index("+") if "+" in levels else len(levels)
            if "#" in topic_filter or literal == len(levels) or any(lv != "+" for lv in levels[literal:]):
                raise ValueError(f"{topic_filter!r}: only trailing '+' levels are supported")
            self._by_prefix["/".join(levels[:literal]), len(levels)] = value
            depths.add(literal)
        self._depths = tuple(sorted(depths))

    def __len__(self) -> int:
        return len(self._by_prefix)

    def match(self, topic: str) -> T | None:
        levels = topic.split("/")
        for depth in self._depths:
            found = self._by_prefix.get(("/".join(levels[:depth]), len(levels)))
            if found is not None:
                return found
        return None
