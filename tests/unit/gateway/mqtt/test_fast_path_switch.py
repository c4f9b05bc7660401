"""Which MQTT client the gateway builds: FastPathClient only with `mqtt.fast_path` on
and the paho-mqtt series it was written for (2.2.x); otherwise plain paho, with one
warning line when the installed version is the reason."""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt
import pytest

from gateway.config import load_settings, settings_from_dict
from gateway.mqtt.paho_transport import (
    MqttOptions,
    PahoTransport,
    client_class,
    fast_path_supported,
    installed_paho_version,
)
from gateway.runtime.topics import mqtt_options


@pytest.mark.parametrize("version", ["2.2.0", "2.2.1", "2.2", "2.2.1.post1", "2.2.0rc1"])
def test_the_2_2_series_gets_the_fast_path(version: str, caplog: pytest.LogCaptureFixture) -> None:
    from gateway.mqtt.fast_path import FastPathClient

    assert fast_path_supported(version)
    with caplog.at_level(logging.DEBUG, logger="officegw.mqtt"):
        assert client_class(True, version) is FastPathClient
    assert caplog.records == []


@pytest.mark.parametrize("version", ["2.1.0", "2.3.0", "3.0.0", "2.20.0", "12.2.0", "unknown"])
def test_other_versions_fall_back_to_plain_paho_with_one_warning(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not fast_path_supported(version)
    with caplog.at_level(logging.DEBUG, logger="officegw.mqtt"):
        chosen = client_class(True, version)
    assert chosen is mqtt.Client
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    line = caplog.records[0].getMessage()
    assert f"found={version}" in line
    assert "expected=2.2.x" in line
    assert "plain paho" in line


def test_switched_off_is_plain_paho_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="officegw.mqtt"):
        assert client_class(False, "2.2.0") is mqtt.Client
        assert client_class(False, "3.0.0") is mqtt.Client
    assert caplog.records == []


def options(*, fast_path: bool, mqtt5: bool = True) -> MqttOptions:
    return MqttOptions(
        host="127.0.0.1",
        port=1883,
        client_id="officegw-test",
        subscriptions=("office/#",),
        status_topic="officegw/gateway/test/availability",
        mqtt5=mqtt5,
        manual_ack=True,
        fast_path=fast_path,
    )


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
def test_the_transport_follows_the_switch(mqtt5: bool) -> None:
    # Built, never started: no connection is made.
    assert PahoTransport(options(fast_path=False, mqtt5=mqtt5)).fast_path is False
    on = PahoTransport(options(fast_path=True, mqtt5=mqtt5))
    assert on.fast_path is fast_path_supported(installed_paho_version())


def test_the_config_switch_reaches_the_transport_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFICEGW_MQTT__FAST_PATH", raising=False)
    assert mqtt_options(settings_from_dict({})).fast_path is True
    assert mqtt_options(settings_from_dict({"mqtt": {"fast_path": False}})).fast_path is False
    monkeypatch.setenv("OFFICEGW_MQTT__FAST_PATH", "false")
    assert mqtt_options(load_settings(None)).fast_path is False
