"""Where device topics lead: the exact topics of mapped devices and the filters of
those whose topics cannot be listed (Homie), changed at run time as discovered
devices join, leave and are renamed.

The ingest pipeline reads `exact` and `filters` directly on its hot path (a dict
lookup); only the ingest thread changes them (discovery runs on it), and other
threads only look topics up, which a dict allows while it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from gateway.mqtt.topic_filters import TrailingWildcards, is_filter

T = TypeVar("T")


class RouteTable(Generic[T]):
    def __init__(self, routes: Mapping[str, T] | None = None) -> None:
        self.exact: dict[str, T] = {}
        self.filters: TrailingWildcards[T] = TrailingWildcards({})
        for topic, route in (routes or {}).items():
            self.put(topic, route)

    def get(self, topic: str) -> T | None:
        """The route of a topic: its exact route, else a filter's."""
        found = self.exact.get(topic)
        return found if found is not None else (self.filters.match(topic) if self.filters else None)

    def __contains__(self, topic: str) -> bool:
        return topic in self.exact

    def put(self, topic: str, route: T) -> None:
        if is_filter(topic):
            self.filters.put(topic, route)
        else:
            self.exact[topic] = route

    def remove(self, topics: Iterable[str]) -> None:
        for topic in topics:
            if is_filter(topic):
                self.filters.remove(topic)
            else:
                self.exact.pop(topic, None)
