"""Channels of one Shelly on one prefix, in the assembled gateway on a FakeTransport:
the device's shared topics (`events/rpc`, `online`) reach every entry, each entry
takes its own channel, and commands go to the entry's channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import GatewayOnFakes, running_gateway

PREFIX = "shellies/pro2pm"
SITE: dict[str, Any] = {
    "mqtt": {"topic_prefix": "office"},
    "site": {
        "rooms": [
            {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
            {"id": "lyra", "building": "hq", "floor": 2, "type": "meeting"},
        ],
        "devices": [
            {"id": "orion-light", "room": "orion", "dialect": "shelly", "topic": PREFIX, "kind": "light"},
            {
                "id": "lyra-light",
                "room": "lyra",
                "dialect": "shelly",
                "topic": PREFIX,
                "channel": 1,
                "kind": "light",
            },
        ],
    },
}


def notify(**components: Any) -> dict[str, Any]:
    return {
        "src": "shellypro2pm-30c6f784e78c",
        "method": "NotifyStatus",
        "params": {"ts": 1.61, **components},
    }


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as running:
        yield running


def last_state(gw: GatewayOnFakes, device: str) -> dict[str, Any]:
    view = gw.live.device_view(device, gw.clock.now())
    assert view is not None
    return view.last_state


def test_one_frame_two_rooms(gw: GatewayOnFakes) -> None:
    ack = gw.transport.deliver(
        f"{PREFIX}/events/rpc",
        notify(
            **{"switch:0": {"id": 0, "output": True, "apower": 40.0}, "switch:1": {"id": 1, "output": False}}
        ),
    )
    assert gw.room("orion").lighting.on is True and gw.room("orion").lighting.power_w == 40.0
    assert gw.room("lyra").lighting.on is False
    stats = gw.gateway.stats
    assert (stats.received, stats.accepted, stats.ignored) == (1, 2, 0)
    gw.flush()
    assert ack is not None and ack.calls == 1  # one message, acknowledged once


def test_a_frame_for_one_channel_leaves_the_other_alone(gw: GatewayOnFakes) -> None:
    gw.transport.deliver(f"{PREFIX}/events/rpc", notify(**{"switch:1": {"id": 1, "output": True}}))
    assert gw.room("lyra").lighting.on is True
    assert gw.room("orion").lighting.on is None
    assert last_state(gw, "orion-light") == {}
    stats = gw.gateway.stats
    assert (stats.accepted, stats.ignored, stats.rejected_total) == (1, 1, 0)
    # A status topic is the channel's own: only that entry is subscribed to it.
    gw.transport.deliver(f"{PREFIX}/status/switch:0", {"id": 0, "output": False, "apower": 0.0})
    assert gw.room("orion").lighting.on is False
    assert last_state(gw, "lyra-light")["state"] == "ON"


def test_the_device_going_offline_takes_every_channel(gw: GatewayOnFakes) -> None:
    gw.transport.deliver(f"{PREFIX}/online", b"true")
    gw.transport.deliver(f"{PREFIX}/online", b"false")
    for device in ("orion-light", "lyra-light"):
        view = gw.live.device_view(device, gw.clock.now())
        assert view is not None and view.online is False


def test_flood_protection_holds_back_each_entry_on_its_own(tmp_path: Path) -> None:
    with running_gateway(tmp_path, {**SITE, "quality": {"max_rate": 1, "burst": 1}}) as gw:
        gw.clock.advance(31)
        for watts in (10.0, 20.0, 30.0):
            gw.transport.deliver(
                f"{PREFIX}/events/rpc",
                notify(
                    **{"switch:0": {"id": 0, "apower": watts}, "switch:1": {"id": 1, "apower": watts + 1}}
                ),
            )
        assert gw.gateway.stats.throttled == 4
        assert (last_state(gw, "orion-light")["power"], last_state(gw, "lyra-light")["power"]) == (10.0, 11.0)
        # Each entry ends on what the device said last, once it is quiet.
        gw.advance(1)
        assert (last_state(gw, "orion-light")["power"], last_state(gw, "lyra-light")["power"]) == (30.0, 31.0)


def test_commands_go_to_the_entry_channel(gw: GatewayOnFakes) -> None:
    gw.gateway.command_device("lyra-light", {"state": "ON"}, actor="test")
    gw.gateway.command_device("orion-light", {"brightness": 127}, actor="test")
    sent = gw.transport.sent(f"{PREFIX}/rpc")
    assert [(f["method"], f["params"]) for f in sent] == [
        ("Switch.Set", {"id": 1, "on": True}),
        ("Light.Set", {"id": 0, "on": True, "brightness": 50}),
    ]
