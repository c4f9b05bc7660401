"""GET /v1/stream over real HTTP: motion published on mosquitto arrives as an event
within a second; a client that disconnects (or whose gateway restarts) resumes with
Last-Event-ID and gets exactly the events it missed; a key scoped to a building never
sees another building's events or rooms."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from simulators.broker import BrokerProcess, free_port
from tests.sse import Sse, StreamReader, logged
from tests.support import GatewayProcess, Publisher, start_gateway, unique_prefix, wait_until


def events_after(http: httpx.Client, after: int) -> list[dict[str, Any]]:
    response = http.get("/v1/events", params={"after": after, "limit": 1000})
    page: list[dict[str, Any]] = response.json()["events"]
    return page


@pytest.fixture
def building() -> str:
    # Room state topics (officegw/state/...) have no per-test prefix: a building of our own.
    return f"b{uuid.uuid4().hex[:8]}"


def site(building: str, rooms: int = 3) -> dict[str, Any]:
    return {
        "site": {"rooms": [{"id": f"r{i}", "building": building, "floor": 1} for i in range(rooms)]},
        "occupancy": {"vacancy_timeout": 3600},
        "push": {"stream": {"ping_interval": 0.5}},
    }


def test_motion_arrives_within_a_second_and_a_reconnect_gets_exactly_what_was_missed(
    mqtt_broker: BrokerProcess, publisher: Publisher, building: str
) -> None:
    gw = start_gateway(mqtt_broker, site(building))
    topic = f"{gw.prefix}/{building}/1/r{{}}/r{{}}-pir"
    reader = StreamReader(gw.server.url)
    try:
        snapshot = reader.wait_ready()
        # A fresh client gets the rooms as they are, without ids (they never move its cursor).
        assert sorted(sse.json()["id"] for sse in snapshot if sse.event == "room") == ["r0", "r1", "r2"]
        assert all(sse.id is None for sse in snapshot)

        sent = time.monotonic()
        publisher.publish(topic.format(0, 0), {"occupancy": True})

        def occupancy_event() -> tuple[float, Sse] | None:
            for arrived, sse in reader.arrivals():
                if sse.event == "occupancy" and sse.json()["room_id"] == "r0":
                    return arrived, sse
            return None

        arrived, event = wait_until(occupancy_event, 5.0, "the occupancy event on the stream")
        assert arrived - sent < 1.0, f"occupancy event after {arrived - sent:.3f} s"
        body = event.json()
        assert body["data"]["new"] == "occupied"
        assert (body["building"], body["floor"], body["kind"]) == (building, "1", "occupancy")
        assert event.id == str(body["seq"])
        assert body["id"] == f"{gw.settings.gateway.id}:{body['seq']}"
        # The room's new status follows as a room event (the JSON of GET /v1/rooms/r0).
        wait_until(
            lambda: any(
                sse.event == "room" and sse.json()["occupancy"]["state"] == "occupied"
                for sse in reader.events
                if sse.event == "room" and sse.json()["id"] == "r0"
            ),
            3.0,
            "r0's room event",
        )
    finally:
        reader.close()
    last_id = int(logged(reader.events)[-1].id or 0)

    try:
        # Missed while disconnected.
        publisher.publish(topic.format(1, 1), {"occupancy": True})
        publisher.publish(topic.format(2, 2), {"occupancy": True})
        wait_until(
            lambda: (
                {e["room_id"] for e in events_after(gw.http, last_id) if e["kind"] == "occupancy"}
                == {"r1", "r2"}
            ),
            5.0,
            "r1 and r2 occupied in the event log",
        )
        missed = events_after(gw.http, last_id)

        again = StreamReader(gw.server.url, headers={"Last-Event-ID": str(last_id)})
        try:
            caught_up = logged(again.wait_ready())
            assert [int(sse.id or 0) for sse in caught_up] == [e["seq"] for e in missed]
            assert [sse.json()["data"] for sse in caught_up] == [e["data"] for e in missed]
        finally:
            again.close()

        # ?after= does the same for a first connection (EventSource cannot set headers).
        by_query = StreamReader(gw.server.url, path=f"/v1/stream?after={last_id}&kind=occupancy")
        try:
            assert [sse.json()["room_id"] for sse in by_query.wait_ready()] == ["r1", "r2"]
        finally:
            by_query.close()
        lingering = StreamReader(gw.server.url)
        lingering.wait_ready()
    finally:
        started = time.monotonic()
        gw.stop()
    # An open stream neither holds the server up nor outlives it.
    assert time.monotonic() - started < 5.0
    assert lingering.ended.wait(5.0)
    lingering.close()


def test_resume_across_a_gateway_restart(
    mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path
) -> None:
    building = f"b{uuid.uuid4().hex[:8]}"
    prefix, port = unique_prefix(), free_port()
    config = tmp_path / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"stream-{prefix}"},
                "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(tmp_path / "officegw.db")},
                **site(building, rooms=4),
            }
        )
    )
    gateway = GatewayProcess(config, tmp_path / "gateway.log", port)
    url = f"http://127.0.0.1:{port}"
    topic = f"{prefix}/{building}/1/r{{}}/r{{}}-pir"
    try:
        gateway.start()
        reader = StreamReader(url)
        try:
            reader.wait_ready()
            publisher.publish(topic.format(0, 0), {"occupancy": True})
            wait_until(lambda: any(sse.event == "occupancy" for sse in reader.events), 5.0, "r0's event")
        finally:
            reader.close()
        last_id = int(logged(reader.events)[-1].id or 0)

        publisher.publish(topic.format(1, 1), {"occupancy": True})
        wait_until(lambda: len(events_after(gateway.http, last_id)) >= 1, 5.0, "r1's event logged")
        lingering = StreamReader(url)
        lingering.wait_ready()
        gateway.stop()
        # SIGTERM ends open streams: a clean exit, not the kill after 10 s.
        assert gateway.proc is not None and gateway.proc.returncode == 0
        assert lingering.ended.wait(5.0)
        lingering.close()
        # While the gateway is down: the broker keeps it for the gateway's session.
        publisher.publish(topic.format(2, 2), {"occupancy": True})
        gateway.http = httpx.Client(base_url=url, timeout=5)
        gateway.start()
        publisher.publish(topic.format(3, 3), {"occupancy": True})
        wait_until(
            lambda: (
                {e["room_id"] for e in events_after(gateway.http, last_id) if e["kind"] == "occupancy"}
                == {"r1", "r2", "r3"}
            ),
            10.0,
            "r1, r2 and r3 occupied in the event log",
        )
        missed = events_after(gateway.http, last_id)

        again = StreamReader(url, headers={"Last-Event-ID": str(last_id)})
        try:
            caught_up = logged(again.wait_ready())
        finally:
            again.close()
        assert [int(sse.id or 0) for sse in caught_up] == [e["seq"] for e in missed]
        assert len({sse.id for sse in caught_up}) == len(caught_up)
        rooms = [sse.json()["room_id"] for sse in caught_up if sse.event == "occupancy"]
        assert rooms == ["r1", "r2", "r3"]
    finally:
        gateway.stop()
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def key_entry(name: str, key: str, role: str, buildings: list[str] | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"name": name, "sha256": digest, "role": role, "buildings": buildings or []}


@pytest.fixture
def scoped(mqtt_broker: BrokerProcess, building: str) -> Iterator[tuple[Any, str, str]]:
    other = f"{building}x"
    config = {
        "site": {
            "rooms": [
                {"id": "mine", "building": building, "floor": 1},
                {"id": "theirs", "building": other, "floor": 1},
            ]
        },
        "occupancy": {"vacancy_timeout": 3600},
        "push": {"stream": {"ping_interval": 0.5}},
        "api": {
            "keys": [
                key_entry("hq-panel", "hq-key-0123456789", "viewer", [building]),
                key_entry("ops", "admin-key-0123456789", "admin"),
            ]
        },
    }
    gw = start_gateway(mqtt_broker, config)
    try:
        yield gw, building, other
    finally:
        gw.stop()


def test_a_scoped_key_never_receives_another_buildings_events(
    scoped: tuple[Any, str, str], publisher: Publisher
) -> None:
    gw, mine, other = scoped
    hq = {"Authorization": "Bearer hq-key-0123456789"}
    admin = {"Authorization": "Bearer admin-key-0123456789"}
    assert httpx.get(f"{gw.server.url}/v1/stream", timeout=5).status_code == 401
    with httpx.Client(base_url=gw.server.url, headers=hq, timeout=5) as http:
        assert http.get("/v1/stream", params={"building": other}).status_code == 403
        assert http.get("/v1/stream", params={"room": "theirs"}).status_code == 404
        assert http.get("/v1/stream", params={"kind": "nonsense"}).status_code == 422
        assert http.get("/v1/stream", headers={"Last-Event-ID": "x"}).status_code == 422

    reader = StreamReader(gw.server.url, headers=hq)
    everything = StreamReader(gw.server.url, headers=admin)
    try:
        snapshot = reader.wait_ready()
        assert [sse.json()["id"] for sse in snapshot if sse.event == "room"] == ["mine"]
        everything.wait_ready()
        # Theirs first: once the event of mine (a later sequence number) is in, theirs
        # would have been too.
        publisher.publish(f"{gw.prefix}/{other}/1/theirs/theirs-pir", {"occupancy": True})
        publisher.publish(f"{gw.prefix}/{mine}/1/mine/mine-pir", {"occupancy": True})
        for stream in (reader, everything):
            wait_until(
                lambda stream=stream: any(  # type: ignore[misc]
                    sse.event == "occupancy" and sse.json()["room_id"] == "mine" for sse in stream.events
                ),
                5.0,
                "mine's occupancy event",
            )
        wait_until(
            lambda: any(sse.event == "room" and sse.json()["id"] == "mine" for sse in reader.events[1:]),
            3.0,
            "mine's room event",
        )
        # The unscoped stream got theirs' room event: the scoped one has had its chance.
        wait_until(
            lambda: any(
                sse.event == "room" and sse.json()["id"] == "theirs" for sse in everything.events[1:]
            ),
            3.0,
            "theirs' room event on the unscoped stream",
        )
        seen = reader.events
        assert all(sse.json()["building"] == mine for sse in seen if sse.event != "ready")
        assert not [sse for sse in seen if sse.event == "room" and sse.json()["id"] == "theirs"]
        assert not [sse for sse in logged(seen) if sse.json()["room_id"] == "theirs"]
        # The unscoped key saw both, so there was something to withhold.
        assert {sse.json()["room_id"] for sse in logged(everything.events) if sse.event == "occupancy"} == {
            "mine",
            "theirs",
        }
    finally:
        reader.close()
        everything.close()

    # Resuming from the start of the log: still only its own building.
    again = StreamReader(gw.server.url, headers={**hq, "Last-Event-ID": "0"})
    try:
        caught_up = logged(again.wait_ready())
        assert caught_up, "the catch-up is empty"
        assert {sse.json()["building"] for sse in caught_up} == {mine}
    finally:
        again.close()
