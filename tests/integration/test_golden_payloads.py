"""Golden payloads: real device messages through the real broker into the gateway.

Every line of tests/fixtures/payloads/*.jsonl (but homie5.jsonl, which test_homie.py
drives) is published byte for byte on its topic, for a device mapped with the line's
dialect; the device's state must then hold what the line expects (or the message must
be rejected and counted, or ignored: counted as saying nothing to the device). Adding
a line adds a case; the folder's README says where each file comes from.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.fields import RejectReason
from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
# What follows a Shelly's topic prefix (which may hold slashes: `shellies/plus1pm`).
SHELLY_TAIL = re.compile(r"(/status/[a-z]+:\d+|/events/rpc|/online)$")


def golden() -> list[dict[str, Any]]:
    # Homie's file has lines that are deliberately ignored ($state init, $description)
    # and a device spread over many topics: tests/integration/test_homie.py drives it.
    files = sorted(path for path in FIXTURES.glob("*.jsonl") if path.name != "homie5.jsonl")
    return [
        {**json.loads(line), "file": path.name}
        for path in files
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def split(line: dict[str, Any]) -> tuple[str, str, str]:
    """(head, device topic, tail) of the line's topic, the device topic being what the
    site config maps: `zigbee2mqtt/<name>`, Tasmota's `<t>`, Shelly's `<prefix>`."""
    topic, dialect = line["topic"], line["dialect"]
    if dialect == "tasmota":  # <prefix>/<t>/<command>; <t> may hold slashes (FullTopic)
        head, _, rest = topic.partition("/")
        device, _, tail = rest.rpartition("/")
        return head + "/", device, "/" + tail
    if dialect == "shelly":
        tail = SHELLY_TAIL.search(topic)
        assert tail is not None, f"not a Shelly topic: {topic}"
        return "", topic[: tail.start()], tail.group(1)
    device = topic.removesuffix("/availability")
    return "", device, topic[len(device) :]


@pytest.fixture(scope="module")
def golden_gateway(mqtt_broker: BrokerProcess) -> Iterator[tuple[RunningGateway, str]]:
    # Device topics of our own, so no other test's retained messages leak in.
    tag = uuid.uuid4().hex[:8]
    devices = {(line["dialect"], split(line)[1], line.get("channel", 0)) for line in golden()}
    gw = start_gateway(
        mqtt_broker,
        {
            "site": {
                "rooms": [{"id": "lab", "building": "hq", "floor": 1}],
                "devices": [
                    {
                        "id": device_id(dialect, t, channel),
                        "room": "lab",
                        "dialect": dialect,
                        "topic": f"{tag}-{t}",
                        # The channel of a Shelly this entry stands for (`channel` of the line).
                        **({"channel": channel} if channel else {}),
                    }
                    for dialect, t, channel in sorted(devices)
                ],
            }
        },
    )
    try:
        yield gw, tag
    finally:
        gw.stop()


def rejections(gw: RunningGateway) -> float:
    return sum(gw.metric("officegw_messages_rejected_total", f'reason="{r}"') for r in RejectReason.ALL)


def device_id(dialect: str, topic: str, channel: int = 0) -> str:
    name = topic if not channel else f"{topic}#{channel}"
    return f"{dialect}-{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:12]}"


@pytest.mark.parametrize("line", golden(), ids=lambda line: f"{line['file']}:{line['device'][:40]}")
def test_golden_payload(
    golden_gateway: tuple[RunningGateway, str], publisher: Publisher, line: dict[str, Any]
) -> None:
    gw, tag = golden_gateway
    head, device_topic, tail = split(line)
    topic = f"{head}{tag}-{device_topic}{tail}"
    device = device_id(line["dialect"], device_topic, line.get("channel", 0))
    expect = line["expect"]
    assert line.get("source"), "every golden payload names where it was published"

    if "rejected" in expect:
        label = f'reason="{expect["rejected"]}"'
        before = gw.metric("officegw_messages_rejected_total", label)
        publisher.publish(topic, line["payload"].encode())
        wait_until(
            lambda: gw.metric("officegw_messages_rejected_total", label) == before + 1,
            2.0,
            "rejection counted",
        )
        return

    if "ignored" in expect:  # nothing in it for the device: neither applied nor rejected
        ignored, rejected = gw.metric("officegw_messages_ignored_total"), rejections(gw)
        publisher.publish(topic, line["payload"].encode())
        wait_until(
            lambda: gw.metric("officegw_messages_ignored_total") == ignored + 1, 2.0, "message ignored"
        )
        assert rejections(gw) == rejected
        return

    if "availability" in expect:
        publisher.publish(topic, line["payload"].encode())
        online = expect["availability"] == "online"
        wait_until(lambda: gw.get(f"/v1/devices/{device}").json()["online"] is online, 2.0, "availability")
        return

    before = gw.metric("officegw_messages_accepted_total")
    publisher.publish(topic, line["payload"].encode())
    wait_until(lambda: gw.metric("officegw_messages_accepted_total") > before, 2.0, "message accepted")

    def state() -> dict[str, Any]:
        found: dict[str, Any] = gw.get(f"/v1/devices/{device}").json()["last_state"]
        return found

    wait_until(lambda: all(state().get(k) == v for k, v in expect.items()), 2.0, f"{device} state {expect}")
