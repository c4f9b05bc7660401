"""The gateway process: MQTT transport, ingest pipeline, live state and the ticker, wired once."""

from __future__ import annotations

import logging
import secrets
import threading

from devices.pseudonym import Pseudonymizer
from gateway.clock import Clock, SystemClock
from gateway.config import Settings
from gateway.ingest import IngestPipeline
from gateway.live_state import LiveState
from gateway.logs import kv
from gateway.metrics import IngestStats
from gateway.paho_transport import MqttOptions, PahoTransport

log = logging.getLogger("officegw.gateway")


def status_topic(gateway_id: str) -> str:
    """Where the gateway says `online`/`offline` (retained, LWT); outside the device prefix."""
    return f"officegw/gateway/{gateway_id}/availability"


def subscriptions(settings: Settings) -> tuple[str, ...]:
    prefix = settings.mqtt.topic_prefix
    if settings.gateway.buildings:
        return tuple(f"{prefix}/{building}/#" for building in settings.gateway.buildings)
    return (f"{prefix}/#",)


class Ticker:
    """Moves every room forward in time (vacancy timeouts) at a fixed interval."""

    def __init__(self, live: LiveState, clock: Clock, interval: float) -> None:
        self._live = live
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="officegw-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def tick(self) -> None:
        with self._live.lock:
            self._live.expire(self._clock.now())

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:
                log.exception(kv("ticker failed"))


class Gateway:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.stats = IngestStats()
        self.live = LiveState(settings)
        key = settings.gateway.pseudonym_key or secrets.token_hex(32)
        self.pipeline = IngestPipeline(
            topic_prefix=settings.mqtt.topic_prefix,
            live=self.live,
            stats=self.stats,
            clock=self.clock,
            pseudonymizer=Pseudonymizer(key.encode()),
        )
        mqtt = settings.mqtt
        self.transport = PahoTransport(
            MqttOptions(
                host=mqtt.host,
                port=mqtt.port,
                client_id=f"officegw-{settings.gateway.id}",
                subscriptions=subscriptions(settings),
                status_topic=status_topic(settings.gateway.id),
                mqtt5=mqtt.protocol == "5",
                username=mqtt.username,
                password=mqtt.password,
                keepalive=mqtt.keepalive,
                session_expiry=mqtt.session_expiry,
                reconnect_min_delay=mqtt.reconnect_min_delay,
                reconnect_max_delay=mqtt.reconnect_max_delay,
            ),
            on_message=self.pipeline.handle,
        )
        # A tenth of the shortest vacancy timeout keeps "vacant" within 10 % of its
        # deadline; never busier than 20 ticks a second nor lazier than one.
        interval = min(1.0, max(0.05, self.live.min_vacancy_timeout() / 10))
        self.ticker = Ticker(self.live, self.clock, interval)

    @property
    def ready(self) -> bool:
        return self.transport.connected

    def start(self) -> None:
        log.info(
            kv(
                "gateway starting",
                id=self.settings.gateway.id,
                rooms=len(self.settings.site.rooms),
                devices=len(self.settings.site.devices),
            )
        )
        self.ticker.start()
        self.transport.start()

    def stop(self) -> None:
        self.transport.stop()
        self.ticker.stop()
        log.info(kv("gateway stopped", received=self.stats.received, accepted=self.stats.accepted))
