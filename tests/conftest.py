from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.broker import BrokerProcess, start_mosquitto
from tests.support import Publisher


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
