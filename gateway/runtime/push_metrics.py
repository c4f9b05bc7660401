"""Prometheus metrics of what the gateway pushes out: the event stream, retained room
state and webhooks (a collector of its own beside `metrics.GatewayCollector`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.push.fanout import Fanout
from gateway.push.webhooks import DispatchStats


@dataclass(frozen=True, slots=True)
class PushSources:
    fanout: Fanout
    # Room states published on officegw/state/...
    states_published: Callable[[], int]
    webhooks: DispatchStats
    # (active subscriptions, paused subscriptions, events waiting), read from the store;
    # None when the store cannot be read.
    webhook_counts: Callable[[], tuple[int, int, int] | None]


class PushCollector(Collector):
    def __init__(self, sources: PushSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self._sources
        yield GaugeMetricFamily(
            "officegw_stream_clients", "Clients of GET /v1/stream", value=s.fanout.clients
        )
        yield CounterMetricFamily(
            "officegw_stream_clients_dropped",
            "Stream clients dropped for falling behind (told with an overflow event)",
            value=s.fanout.overflowed,
        )
        yield CounterMetricFamily(
            "officegw_room_states_published",
            "Room states published, retained, on officegw/state/<building>/<floor>/<room>",
            value=s.states_published(),
        )
        deliveries = CounterMetricFamily(
            "officegw_webhook_deliveries", "Webhook delivery attempts, by outcome", labels=["outcome"]
        )
        deliveries.add_metric(["delivered"], s.webhooks.delivered)
        deliveries.add_metric(["failed"], s.webhooks.failed)
        yield deliveries
        yield CounterMetricFamily(
            "officegw_webhook_pauses",
            "Webhook subscriptions paused for failing (each also raised an alert)",
            value=s.webhooks.paused,
        )
        counts = s.webhook_counts()
        if counts is None:
            return
        active, paused, waiting = counts
        subscriptions = GaugeMetricFamily(
            "officegw_webhook_subscriptions", "Webhook subscriptions, by status", labels=["status"]
        )
        subscriptions.add_metric(["active"], active)
        subscriptions.add_metric(["paused"], paused)
        yield subscriptions
        yield GaugeMetricFamily(
            "officegw_webhook_outbox_pending", "Events waiting in webhook outboxes", value=waiting
        )
