"""What a gateway did for API replicas, for Prometheus (read at scrape time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class ReplicaCommandsCollector(Collector):
    def __init__(self, outcomes: Callable[[], dict[str, int]], notices: Callable[[], int]) -> None:
        self._outcomes = outcomes
        self._notices = notices

    def collect(self) -> Iterator[CounterMetricFamily]:
        commands = CounterMetricFamily(
            "officegw_replica_commands",
            "API replicas' commands for this gateway's buildings, by outcome (ok, or why not), since start",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._outcomes().items()):
            commands.add_metric([outcome], count)
        yield commands
        yield CounterMetricFamily(
            "officegw_bookings_notices",
            "officegw/bookings/<building>/changed notices published for API replicas, since start",
            value=self._notices(),
        )
