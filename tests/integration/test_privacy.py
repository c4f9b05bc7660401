"""Issue 11 point 7: a badge id never appears in clear, whatever form it comes in.

Every form below goes through mosquitto into a real gateway; then the store's
files (bytes of the database, its WAL and shared memory, and every row of every
table), the captured logs and the JSON of every GET endpoint of the API are
searched for each clear badge id.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from simulators.broker import BrokerProcess
from tests.support import Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

# Native device name -> payload exactly as published. Badge ids are `PRIV-...` or
# ten-digit numbers: nothing else the gateway writes contains either.
ACCEPTED: dict[str, bytes] = {
    "plain": b'{"access": "granted", "credential": "PRIV-A1-7Q4Z"}',
    "number": b'{"access": "granted", "credential": 4820917365}',
    "object": b'{"access": "granted", "credential": {"id": "PRIV-A3-7Q4Z", "site": 12}}',
    "array": b'{"access": "granted", "credential": ["PRIV-A4-7Q4Z"]}',
    "capitalised": b'{"access": "granted", "Credential": "PRIV-A5-7Q4Z"}',
    "upper-number": b'{"access": "denied", "CREDENTIAL": 5930418276}',
    "escaped-key": b'{"access": "granted", "cred\\u0065ntial": "PRIV-A7-7Q4Z"}',
    "escaped-capital": b'{"access": "granted", "\\u0043redential": "PRIV-A8-7Q4Z"}',
    "alias-nested": b'{"access": "granted", "card_id": "PRIV-A9-7Q4Z", '
    b'"reader": {"last": {"uid": "PRIV-B9-7Q4Z"}}}',
    "two-of-them": b'{"access": "granted", "credential": "PRIV-A10-7Q4Z", "Badge-ID": "PRIV-B10-7Q4Z"}',
}
# Through the Zigbee2MQTT dialect (`zigbee2mqtt/<prefix>-reader`).
ZIGBEE = b'{"access": "granted", "Card_ID": 7305918264, "linkquality": 90}'
REJECTED: dict[str, bytes] = {
    "r-escaped-key": b'{"cred\\u0065ntial": "PRIV-R1-7Q4Z", "battery": 500}',
    "r-number": b'{"credential": 6041529387, "battery": 500}',
    "r-object": b'{"Credential": {"id": "PRIV-R3-7Q4Z"}, "co2": -1}',
    "r-too-long": b'{"credential": "PRIV-R4-7Q4Z' + b"0" * 300 + b'"}',
    "r-wrong-type": b'{"CARD_NUMBER": "PRIV-R5-7Q4Z", "occupancy": "yes"}',
    "r-bare-keys": b"{credential: PRIV-R6-7Q4Z, access: granted",
    "r-form": b"credential=PRIV-R7-7Q4Z&access=granted",
    "r-truncated": b'{"access": "granted", "credential": "PRIV-R8-7Q4Z',
    "r-oversized": b'{"credential": "PRIV-R9-7Q4Z", "pad": "' + b"x" * 70_000 + b'"}',
    "r-array": b'[{"credential": "PRIV-R10-7Q4Z"}]',
    "r-json-in-a-string": b'"{\\"credential\\": \\"PRIV-R11-7Q4Z\\"}"',
    "r-escaped-non-json": b"{cred\\u0065ntial: PRIV-R12-7Q4Z",
}
BADGES = [
    *(f"PRIV-{form}-7Q4Z" for form in ("A1", "A3", "A4", "A5", "A7", "A8", "A9", "B9", "A10", "B10")),
    *(f"PRIV-R{n}-7Q4Z" for n in range(1, 13)),
    "4820917365",
    "5930418276",
    "6041529387",
    "7305918264",
]


def leaks_in(where: str, text: str) -> list[str]:
    return [f"{badge} in {where}" for badge in BADGES if badge in text]


def leaks_in_store(db: Path) -> list[str]:
    found: list[str] = []
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            data = path.read_bytes()
            found += [f"{badge} in {path.name}" for badge in BADGES if badge.encode() in data]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    if isinstance(value, float) and value.is_integer():
                        text = str(int(value))  # a badge number stored as a number
                    found += leaks_in(f"table {table}", text)
    return found


def leaks_in_api(gw: RunningGateway) -> list[str]:
    """Every GET route of the API (from its OpenAPI document), for every room and device."""
    rooms = [room["id"] for room in gw.get("/v1/rooms").json()["rooms"]]
    devices = [device["id"] for device in gw.get("/v1/devices").json()["devices"]]
    metrics = {"credential", "Credential", "CREDENTIAL", "card_id", "Card_ID", "Badge-ID", "reader", "access"}
    for device in devices:
        metrics |= set(gw.get(f"/v1/devices/{device}").json()["last_state"])
    found: list[str] = []
    routes = {
        path: ops["get"] for path, ops in gw.get("/openapi.json").json()["paths"].items() if "get" in ops
    }
    assert "/v1/dead-letters" in routes and "/v1/devices/{device_id}" in routes
    for path in [*routes, "/"]:
        if path.endswith("/stream"):
            continue  # Server-Sent Events: never ends
        urls = [path]
        if "{room_id}" in path:
            urls = [path.replace("{room_id}", room) for room in rooms]
        if "{device_id}" in path:
            urls = [path.replace("{device_id}", device) for device in devices]
        for url in urls:
            params = {p["name"] for p in routes.get(path, {}).get("parameters", [])}
            if "metric" in params:
                responses = [gw.get(url, metric=metric) for metric in sorted(metrics)]
            else:
                responses = [gw.get(url, limit=1000) if "limit" in params else gw.get(url)]
            for response in responses:
                assert response.status_code < 500, (url, response.text)
                found += leaks_in(f"GET {url}", response.text)
    return found


def start(mqtt_broker: BrokerProcess, db: Path) -> RunningGateway:
    prefix = unique_prefix()
    reader = {
        "id": "lobby-reader",
        "room": "lobby",
        "dialect": "zigbee2mqtt",
        "topic": f"zigbee2mqtt/{prefix}-reader",
    }
    site = {"rooms": [{"id": "lobby", "building": "hq", "floor": 1, "type": "office"}], "devices": [reader]}
    return start_gateway(mqtt_broker, {"site": site, "mqtt": {"topic_prefix": prefix}}, storage=db)


def test_no_badge_id_in_clear_anywhere(
    mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "officegw.db"
    gw = start(mqtt_broker, db)
    running = True
    try:
        for device, payload in [*ACCEPTED.items(), *REJECTED.items()]:
            publisher.publish(f"{gw.prefix}/hq/1/lobby/{device}", payload)
        publisher.publish(f"zigbee2mqtt/{gw.prefix}-reader", ZIGBEE)
        total = len(ACCEPTED) + 1 + len(REJECTED)
        wait_until(
            lambda: (
                gw.metric("officegw_messages_accepted_total")
                + len(gw.get("/v1/dead-letters", limit=1000).json()["dead_letters"])
                == total
            ),
            10,
            "every message handled",
        )
        # Device states are committed with the room states (at the latest at the
        # next 5 s checkpoint): wait until they are in the file too.
        accepted = int(gw.metric("officegw_messages_accepted_total"))
        wait_until(
            lambda: (
                _count(db, "SELECT count(*) FROM device_states") >= accepted
                or _count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'device_states'") == 0
            ),
            10,
            "device states",
        )
        leaks = leaks_in_api(gw) + leaks_in_store(db) + leaks_in("the logs", caplog.text)
        assert not leaks, "\n".join(sorted(set(leaks)))

        # Every accepted form was taken as a badge read: pseudonyms, under `credential`.
        assert accepted == len(ACCEPTED) + 1
        # Auto-registered devices are named within their room: `lobby.<name>`.
        for device in [*(f"lobby.{name}" for name in ACCEPTED), "lobby-reader"]:
            state = gw.get(f"/v1/devices/{device}").json()["last_state"]
            assert state["credential"].startswith("cred-"), (device, state)
        same = gw.get("/v1/devices/lobby.two-of-them").json()["last_state"]
        assert same["Badge-ID"].startswith("cred-") and same["Badge-ID"] != same["credential"]
        nested = gw.get("/v1/devices/lobby.alias-nested").json()["last_state"]
        assert nested["reader"]["last"]["uid"].startswith("cred-")
        # The same badge as a number or as a string: the same pseudonym.
        publisher.publish(f"{gw.prefix}/hq/1/lobby/as-text", b'{"credential": "4820917365"}')
        wait_until(lambda: gw.get("/v1/devices/lobby.as-text").status_code == 200, 5, "as-text")
        as_text = gw.get("/v1/devices/lobby.as-text").json()["last_state"]["credential"]
        assert as_text == gw.get("/v1/devices/lobby.number").json()["last_state"]["credential"]

        gw.stop()  # the final checkpoint and snapshot: the files once more
        running = False
        leaks = leaks_in_store(db) + leaks_in("the logs", caplog.text)
        assert not leaks, "\n".join(sorted(set(leaks)))
    finally:
        if running:
            gw.stop()
    # Each rejection was still logged, with its (redacted) preview.
    assert caplog.text.count("message rejected") == len(REJECTED)


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # not created yet
