"""The gateway survives broker restarts and its own, losing no QoS 1 message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.broker import RestartableBroker, start_mosquitto
from tests.rabbitmq import RabbitMQ
from tests.support import Publisher, start_gateway, unique_prefix, wait_until

ROOMS = [{"id": "orion", "building": "hq", "floor": 2, "type": "meeting", "bookable": True}]


@pytest.fixture
def own_broker(restartable_broker: RestartableBroker) -> RestartableBroker:
    """A broker this test may restart without disturbing the others, of each kind."""
    return restartable_broker


@pytest.fixture(
    params=[
        "mosquitto-keeps-sessions",
        "mosquitto-forgets-sessions",
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def broker_to_restart(request: pytest.FixtureRequest) -> Iterator[RestartableBroker]:
    # Without persistence the broker forgets our subscription: only resubscribing
    # on every connect brings messages back. RabbitMQ always keeps durable sessions.
    if request.param == "rabbitmq":
        node: RabbitMQ = request.getfixturevalue("rabbitmq_broker")
        if not node.is_running():
            node.start()
        try:
            yield node
        finally:
            if not node.is_running():
                node.start()
        return
    own = start_mosquitto(persistence=request.param == "mosquitto-keeps-sessions")
    try:
        yield own
    finally:
        own.stop()


def test_broker_restart_is_survived(broker_to_restart: RestartableBroker) -> None:
    own_broker = broker_to_restart
    gw = start_gateway(own_broker, {"site": {"rooms": ROOMS}})
    try:
        env = f"{gw.prefix}/hq/2/orion/orion-env"
        publisher = Publisher(own_broker)
        publisher.publish(env, {"co2": 500})
        wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == 500, 2.0, "before restart")
        publisher.close()

        own_broker.stop()
        wait_until(lambda: gw.get("/readyz").status_code == 503, 5.0, "readyz 503 while the broker is down")
        assert gw.metric("officegw_mqtt_connected") == 0
        own_broker.start()
        wait_until(lambda: gw.get("/readyz").status_code == 200, 15.0, "reconnected")

        publisher = Publisher(own_broker)
        publisher.publish(env, {"co2": 900})
        wait_until(lambda: gw.room("orion")["environment"]["co2_ppm"] == 900, 2.0, "after restart")
        publisher.close()
    finally:
        gw.stop()


def test_messages_published_while_the_gateway_is_down_are_processed(own_broker: RestartableBroker) -> None:
    config = {
        "site": {"rooms": ROOMS},
        "gateway": {"id": "gw-restart"},
        "mqtt": {"topic_prefix": unique_prefix()},
    }
    first = start_gateway(own_broker, config)
    prefix = first.prefix
    first.stop()

    publisher = Publisher(own_broker)
    for co2 in range(600, 650):
        publisher.publish(f"{prefix}/hq/2/orion/orion-env", {"co2": co2})
    publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
    publisher.close()

    # Same gateway id, same persistent session: the broker kept what we missed.
    second = start_gateway(own_broker, config)
    try:
        wait_until(lambda: second.room("orion")["occupancy"]["state"] == "occupied", 5.0, "occupied")
        wait_until(lambda: second.room("orion")["environment"]["co2_ppm"] == 649, 5.0, "last co2")
        assert second.metric("officegw_messages_accepted_total") == 51
    finally:
        second.stop()


def test_gateway_status_is_retained_with_a_last_will(own_broker: RestartableBroker) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    gw = start_gateway(own_broker, {"gateway": {"id": "gw-status"}})
    seen: list[bytes] = []
    watcher = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if own_broker.mqtt5 else mqtt.MQTTv311
    )
    watcher.on_message = lambda client, userdata, message: seen.append(message.payload)
    watcher.connect(own_broker.host, own_broker.port)
    watcher.subscribe("officegw/gateway/gw-status/availability", qos=1)
    watcher.loop_start()
    try:
        wait_until(lambda: seen and seen[-1] == b"online", 3.0, "retained online")
        gw.stop()
        wait_until(lambda: seen[-1] == b"offline", 3.0, "offline on clean stop")
    finally:
        watcher.disconnect()
        watcher.loop_stop()
