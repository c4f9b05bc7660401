from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from simulators.broker import BrokerProcess, MqttBroker, RestartableBroker, start_mosquitto
from tests.postgres import PostgresServer
from tests.rabbitmq import RabbitMQ
from tests.support import Publisher
from tests.victoria import VictoriaMetrics


@pytest.fixture(scope="session")
def mosquitto_broker() -> Iterator[BrokerProcess]:
    """One private mosquitto on a random port for the whole session."""
    broker = start_mosquitto()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def mqtt_broker(mosquitto_broker: BrokerProcess) -> BrokerProcess:
    """The session's mosquitto; a test module may override this name (e.g. with `broker`)
    to run its tests on every broker kind."""
    return mosquitto_broker


@pytest.fixture(scope="session")
def rabbitmq_broker() -> Iterator[RabbitMQ]:
    """One private RabbitMQ node (MQTT 3.1.1 plugin, random ports) for the session, started
    on first use (~9-13 s on 2 cores). Tests may stop, kill and restart it: `broker` and
    `restartable_broker` start it again when a test left it down."""
    node = RabbitMQ()
    try:
        node.start()
        _rabbitmq_start_times.append(node.started_in or 0.0)
        yield node
    finally:
        node.close()


_rabbitmq_start_times: list[float] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Start-up time is most of what RabbitMQ costs the suite: keep it in sight.
    if _rabbitmq_start_times:
        took = ", ".join(f"{t:.1f} s" for t in _rabbitmq_start_times)
        terminalreporter.write_line(f"session RabbitMQ node started in {took}")


# The broker kinds a parametrized test runs on: mosquitto (MQTT 5) and RabbitMQ (3.1.1).
BROKER_KINDS = ("mosquitto", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq))


def _rabbitmq_running(request: pytest.FixtureRequest) -> RabbitMQ:
    node: RabbitMQ = request.getfixturevalue("rabbitmq_broker")
    if not node.is_running():
        node.start()
    return node


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest) -> MqttBroker:
    """The session's broker of each kind in turn (`.host`, `.port`, `.url`, `.mqtt5`)."""
    if request.param == "rabbitmq":
        return _rabbitmq_running(request)
    mosquitto: BrokerProcess = request.getfixturevalue("mosquitto_broker")
    return mosquitto


@pytest.fixture(params=BROKER_KINDS)
def restartable_broker(request: pytest.FixtureRequest) -> Iterator[RestartableBroker]:
    """A broker the test may stop, kill and start again on the same port and data: a
    persistent mosquitto of its own, or the session's RabbitMQ node (whose sessions and
    retained messages are always on disk), running again after the test."""
    if request.param == "rabbitmq":
        node = _rabbitmq_running(request)
        try:
            yield node
        finally:
            if not node.is_running():
                node.start()
        return
    own = start_mosquitto(persistence=True)
    try:
        yield own
    finally:
        own.stop()


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
