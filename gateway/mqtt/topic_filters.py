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
        # Literal depth -> how many filters have it (filters come and go at run time).
        self._depth_count: dict[int, int] = {}
        self._depths: tuple[int, ...] = ()
        for topic_filter, value in filters.items():
            self.put(topic_filter, value)

    def __len__(self) -> int:
        return len(self._by_prefix)

    @staticmethod
    def _key(topic_filter: str) -> tuple[tuple[str, int], int]:
        levels = topic_filter.split("/")
        literal = levels.index("+") if "+" in levels else len(levels)
        if "#" in topic_filter or literal == len(levels) or any(lv != "+" for lv in levels[literal:]):
            raise ValueError(f"{topic_filter!r}: only trailing '+' levels are supported")
        return ("/".join(levels[:literal]), len(levels)), literal

    def put(self, topic_filter: str, value: T) -> None:
        key, depth = self._key(topic_filter)
        if key not in self._by_prefix:
            self._depth_count[depth] = self._depth_count.get(depth, 0) + 1
            self._depths = tuple(sorted(self._depth_count))
        self._by_prefix[key] = value

    def remove(self, topic_filter: str) -> None:
        key, depth = self._key(topic_filter)
        if self._by_prefix.pop(key, None) is None:
            return
        self._depth_count[depth] -= 1
        if not self._depth_count[depth]:
            del self._depth_count[depth]
        self._depths = tuple(sorted(self._depth_count))

    def match(self, topic: str) -> T | None:
        levels = topic.split("/")
        for depth in self._depths:
            found = self._by_prefix.get(("/".join(levels[:depth]), len(levels)))
            if found is not None:
                return found
        return None
