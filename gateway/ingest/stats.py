"""Counters of the ingest path.

The hot path bumps plain ints (no lock, no label lookup); the Prometheus
collector (gateway.runtime.metrics) reads them when /metrics is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.fields import RejectReason


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    # Received and done with (applied, rejected, ignored or throttled; recorded): a
    # simulator waits for this to reach what it published.
    processed: int = 0
    accepted: int = 0
    # Our own commands echoed back on `.../set`: neither accepted nor bad input.
    ignored: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RejectReason.ALL, 0))
    handler_errors: int = 0
    # Exact repeats (same device time, same bytes) of a reading already applied, and
    # retained messages without `ts` replaying what the device's last state holds.
    duplicates: int = 0
    # Older (by device time) than a reading already applied: recorded in the
    # history, not applied to the live state.
    late: int = 0
    # Over a device's rate budget (flood protection); the newest is applied later.
    throttled: int = 0

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())
