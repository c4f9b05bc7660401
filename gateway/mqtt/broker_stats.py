"""The broker's own counters (`$SYS`), followed so that messages it drops are seen.

A broker drops what it cannot queue for a session (mosquitto: past
`max_queued_messages`, 1,000 by default, or `max_queued_bytes`) and the
subscriber gets no sign of it: the messages never arrive. A burst of 20,000 device
messages lost 59 % that way (PERFORMANCE.md). mosquitto counts those drops in
`$SYS/broker/publish/messages/dropped`, so the gateway follows that topic:

- mosquitto (2.0.11) looks at its `$SYS` values every `sys_interval` seconds (10
  by default; 0 turns them off) and publishes each one that changed, at QoS 0,
  retained for 60 s (message expiry). A new subscription therefore gets the
  drop count at once only if it changed in the last minute; a count that has not
  moved for longer (a healthy broker) arrives with its next change.
- The count is broker-wide (any client's session, not only the gateway's) and
  starts again from 0 when the broker restarts. A restart shows as the uptime or
  the count going back; drops counted by the new broker then add up from its 0,
  so `BrokerStats.drops_seen` only grows.
- A first value that comes retained (on subscribing) is the baseline: those drops
  happened before the gateway watched (some perhaps of its own session, while it
  was away); they are in the broker's value and warned about once, not counted as
  seen. A first value that comes live is a change made while the gateway watched,
  from a value it never saw (expired): it counts in full, as drops since the
  broker started. That may include older drops, but never misses the first rise
  after a long quiet spell, which is the one that matters.

Pure and clock-injected; `PahoTransport` feeds it the messages of `TOPICS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gateway.logs import kv

log = logging.getLogger("officegw.mqtt")

UPTIME_TOPIC = "$SYS/broker/uptime"
DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
STORED_TOPIC = "$SYS/broker/store/messages/count"
# Uptime first: mosquitto sends the retained values of one SUBSCRIBE in this order
# (and publishes uptime first in every round), so a restart is known before the
# count of the new broker arrives.
TOPICS = (UPTIME_TOPIC, DROPPED_TOPIC, STORED_TOPIC)

# At most one warning line this often; the next says how many drops it covers.
WARNING_INTERVAL = 60.0
FIX = (
    "raise max_queued_messages and max_queued_bytes in mosquitto.conf "
    "(README: Broker settings a deployment needs)"
)


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """What the broker said last (None: not seen yet) and what the gateway saw."""

    # Messages the broker dropped since it started, all clients.
    dropped: int | None = None
    # Messages the broker holds (queued for sessions, in flight and retained).
    stored: int | None = None
    uptime: int | None = None
    # Increases of `dropped` seen by this gateway; survives broker restarts.
    drops_seen: int = 0
    restarts_seen: int = 0


def parse_count(payload: bytes) -> int | None:
    """The leading number of a `$SYS` value (`"1234"`, `"86 seconds"`); None if it has none."""
    head = payload.split(maxsplit=1)[:1]
    if not head or not head[0].isdigit():
        return None
    return int(head[0])


class BrokerCounters:
    """Follows the broker's `$SYS` counters; `observe` on the network thread,
    `stats` from any thread."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        warning_interval: float = WARNING_INTERVAL,
    ) -> None:
        self._clock = clock
        self._warning_interval = warning_interval
        self._lock = threading.Lock()
        self._stats = BrokerStats()
        # The uptime went back since the last count: the next count is all new.
        self._restarted = False
        self._unreported = 0
        self._last_warning: float | None = None
        self._unparsable_logged = False
        self._followed_logged = False

    def stats(self) -> BrokerStats:
        return self._stats

    def observe(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """One `$SYS` message; `retained`: sent on subscribing, not as it changed."""
        value = parse_count(payload)
        if value is None:
            if not self._unparsable_logged:
                self._unparsable_logged = True
                log.info(kv("broker stats: value not a count, ignored", topic=topic, payload=payload[:40]))
            return
        if not self._followed_logged:
            self._followed_logged = True
            log.info(kv("broker stats followed", topic=topic, value=value))
        with self._lock:
            if topic == UPTIME_TOPIC:
                self._observe_uptime(value)
            elif topic == DROPPED_TOPIC:
                self._observe_dropped(value, retained)
            elif topic == STORED_TOPIC:
                self._stats = replace(self._stats, stored=value)
            # Every round of $SYS (uptime changes each time) may release a held warning.
            self._warn_if_due()

    def _observe_uptime(self, uptime: int) -> None:
        s = self._stats
        restarted = s.uptime is not None and uptime < s.uptime
        if restarted:
            self._restarted = True
            log.info(kv("broker restarted", uptime=uptime, previous_uptime=s.uptime))
        self._stats = replace(s, uptime=uptime, restarts_seen=s.restarts_seen + restarted)

    def _observe_dropped(self, dropped: int, retained: bool) -> None:
        s = self._stats
        if s.dropped is None and retained and not self._restarted:
            self._stats = replace(s, dropped=dropped)
            if dropped:
                log.warning(
                    kv(
                        "broker had dropped messages before this gateway watched",
                        broker_dropped=dropped,
                        broker_uptime=s.uptime,
                        scope="all clients since the broker started, ours too if we were away",
                        fix=FIX,
                    )
                )
            return
        restarts = s.restarts_seen
        if s.dropped is None or self._restarted or dropped < s.dropped:
            # No earlier value of this broker's count: a first one that came live
            # (see above), a new broker, or a count that went back (a restart the
            # uptime did not show). All of it is new to us.
            if s.dropped is not None and not self._restarted:
                restarts += 1
            self._restarted = False
            increase = dropped
        else:
            increase = dropped - s.dropped
        self._stats = replace(s, dropped=dropped, drops_seen=s.drops_seen + increase, restarts_seen=restarts)
        self._unreported += increase

    def _warn_if_due(self) -> None:
        if not self._unreported:
            return
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._warning_interval:
            return
        since = (
            {} if self._last_warning is None else {"since_last_warning_s": round(now - self._last_warning)}
        )
        log.warning(
            kv(
                "broker dropped messages",
                dropped=self._unreported,
                **since,
                broker_dropped=self._stats.dropped,
                scope="all clients of the broker: a session's queue was full (subscriber away or slow)",
                fix=FIX,
            )
        )
        self._last_warning = now
        self._unreported = 0
