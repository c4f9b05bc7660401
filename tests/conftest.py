from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.broker import BrokerProcess, start_mosquitto
from tests.support import Publisher
from tests.victoria import VictoriaMetrics


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[BrokerProcess]:
    """One private mosquitto on a random port for the whole session."""
    broker = start_mosquitto()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def publisher(mqtt_broker: BrokerProcess) -> Iterator[Publisher]:
    client = Publisher(mqtt_broker)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def victoria() -> Iterator[VictoriaMetrics]:
    """One private VictoriaMetrics (InfluxDB v2 write API) for the session; tests
    that stop it start their own (`tests.victoria.VictoriaMetrics`)."""
    server = VictoriaMetrics().start()
    try:
        yield server
    finally:
        server.close()
