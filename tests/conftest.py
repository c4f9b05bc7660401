from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from simulators.broker import BrokerProcess, start_mosquitto
from tests.postgres import PostgresServer
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL (initdb + pg_ctl, random port) for the session; tests that
    stop it start their own (`tests.postgres.PostgresServer`)."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.close()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL, one per test."""
    return postgres_server.create_database(f"test_{next(_database_numbers)}")
