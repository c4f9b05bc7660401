"""What mapping announced devices costs the ingest thread, with no broker in the way.

Feeds the discovery layer (gateway/ingest/discovery.py, on a real LiveState and
route table; subscriptions counted, not sent) a Zigbee2MQTT `bridge/devices` list
of `--devices` lights over `--rooms` rooms: the first time (every device mapped),
again (the broker's retained replay: nothing changes) and with one device renamed;
then `--configs` Home Assistant discovery configs, one device each. Each is the
median of `--runs` fresh runs; one JSON line.

    python benchmarks/discovery.py --devices 1000 --configs 2000 --rooms 100 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import settings_from_dict
from gateway.ingest.discovery import Discovery
from gateway.ingest.routes import RouteTable
from gateway.live_state import LiveState
from gateway.mqtt.transport import InboundMessage

EXPOSES = [
    {
        "type": "light",
        "features": [
            {"name": "state", "property": "state"},
            {"name": "brightness", "property": "brightness"},
        ],
    },
    {"type": "numeric", "property": "power"},
    {"type": "numeric", "property": "linkquality"},
]


def bridge(devices: int, rooms: int) -> bytes:
    return orjson.dumps(
        [
            {
                "ieee_address": f"0x{i:016x}",
                "friendly_name": f"room-{i % rooms}/lamp-{i}",
                "type": "Router",
                "power_source": "Mains (single phase)",
                "definition": {"model": "X", "vendor": "Y", "exposes": EXPOSES},
            }
            for i in range(devices)
        ]
    )


def config(i: int, rooms: int) -> bytes:
    return orjson.dumps(
        {
            "stat_t": f"tele/dev{i}/SENSOR",
            "avty_t": f"tele/dev{i}/LWT",
            "dev_cla": "temperature",
            "unit_of_meas": "°C",
            "val_tpl": "{{value_json['AM2301'].Temperature}}",
            "dev": {"ids": [f"dev{i}"], "sa": f"room-{i % rooms}"},
        }
    )


def run(devices: int, configs: int, rooms: int) -> dict[str, float]:
    settings = settings_from_dict(
        {
            "site": {"rooms": [{"id": f"room-{i}", "building": "hq", "floor": 1} for i in range(rooms)]},
            "discovery": {"zigbee2mqtt": True, "homeassistant": True},
            "registry": {"max_auto_devices": devices + configs},
        }
    )
    subscribed: set[str] = set()

    def subscribe(topics: Collection[str]) -> None:
        subscribed.update(topics)

    def unsubscribe(topics: Collection[str]) -> None:
        subscribed.difference_update(topics)

    live = LiveState(settings)
    discovery = Discovery(
        settings, live=live, routes=RouteTable(), subscribe=subscribe, unsubscribe=unsubscribe
    )
    found: dict[str, float] = {}

    def timed(name: str, topic: str, payload: bytes) -> None:
        start = time.perf_counter()
        discovery.handle(InboundMessage(topic, payload, retained=True), time.time())
        found[name] = (time.perf_counter() - start) * 1000

    listed = bridge(devices, rooms)
    timed("bridge_first_ms", "zigbee2mqtt/bridge/devices", listed)
    timed("bridge_replay_ms", "zigbee2mqtt/bridge/devices", listed)
    renamed = listed.replace(b'"room-1/lamp-1"', b'"room-2/lamp-1"', 1)
    timed("bridge_rename_one_ms", "zigbee2mqtt/bridge/devices", renamed)
    start = time.perf_counter()
    for i in range(configs):
        message = InboundMessage(f"homeassistant/sensor/dev{i}/t/config", config(i, rooms), retained=True)
        discovery.handle(message, time.time())
    found["ha_config_us"] = (time.perf_counter() - start) * 1e6 / max(configs, 1)
    assert len(live.devices) == devices + configs, len(live.devices)
    found["subscriptions"] = len(subscribed)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--configs", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [run(args.devices, args.configs, args.rooms) for _ in range(args.runs)]
    result: dict[str, Any] = {"devices": args.devices, "configs": args.configs, "rooms": args.rooms}
    for key in runs[0]:
        values = [r[key] for r in runs]
        result[key] = round(statistics.median(values), 2)
        result[f"{key}_range"] = [round(min(values), 2), round(max(values), 2)]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
