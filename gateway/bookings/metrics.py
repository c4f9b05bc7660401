"""The bookings' Prometheus metrics, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.bookings.service import Bookings
from rules.bookings import BookingStatus


class BookingsCollector(Collector):
    def __init__(self, bookings: Bookings) -> None:
        self._bookings = bookings

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "officegw_bookings_active", "Bookings holding their room, by status", labels=["status"]
        )
        for status, count in sorted(self._bookings.counts().items()):
            active.add_metric([status.value], count)
        yield active
        transitions = CounterMetricFamily(
            "officegw_booking_transitions",
            "Bookings checked in, released (no-shows) or ended by presence evidence and time, since start",
            labels=["status"],
        )
        made = self._bookings.transitions
        for status in (BookingStatus.CHECKED_IN, BookingStatus.RELEASED, BookingStatus.ENDED):
            transitions.add_metric([status.value], made[status])
        yield transitions
