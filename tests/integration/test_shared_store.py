"""Issue 16 points 1 and 2: gateways on a shared PostgreSQL (`storage.url`), sharded by
building, through the real broker and a private PostgreSQL.

Room states and events land in PostgreSQL keyed by the shard; a gateway restarted
with an empty SQLite file of its own (another machine) restores them from there; two
shards on one database never touch each other's rows; a building two shards claim
is refused at start with a config error naming `gateway.buildings`; events
acknowledged while PostgreSQL was down reach it once it is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.config import ConfigError
from simulators.broker import BrokerProcess
from tests.postgres import PostgresServer
from tests.support import Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

SITE = {
    "rooms": [
        {"id": "orion", "building": "hq", "floor": 2, "type": "meeting"},
        {"id": "vega", "building": "annex", "floor": 1, "type": "meeting"},
    ],
    "devices": [
        {"id": "orion-pir", "room": "orion"},
        {"id": "vega-pir", "room": "vega"},
    ],
}


def config(prefix: str, url: str, path: Path, shard: str, buildings: list[str] | None) -> dict[str, Any]:
    gateway: dict[str, Any] = {"id": shard}
    if buildings is not None:
        gateway["buildings"] = buildings
    return {
        "site": SITE,
        "occupancy": {"vacancy_timeout": 1.0},
        "mqtt": {"topic_prefix": prefix},
        "gateway": gateway,
        "storage": {"path": str(path), "url": url},
    }


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql, params).fetchall()


def occupancy_events(gw: RunningGateway, room: str) -> list[str]:
    events = gw.get("/v1/events", kind="occupancy", room=room, limit=1000).json()["events"]
    return [e["data"]["new"] for e in events]


def test_room_states_and_events_live_in_postgresql_and_come_back_from_there(
    mqtt_broker: BrokerProcess, publisher: Publisher, postgres_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    first = start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "a.db", "gw-hq", ["hq"]))
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True, "temperature": 22.5})
        wait_until(lambda: first.room("orion").get("occupancy", {}).get("state") == "occupied", 5, "occupied")

        def committed() -> bool:
            found = rows(postgres_url, "SELECT kind, room FROM events WHERE shard = 'gw-hq'")
            return ("occupancy", "orion") in found

        wait_until(committed, 5, "the occupancy event in PostgreSQL")
        assert rows(postgres_url, "SELECT shard, room FROM room_states") == [("gw-hq", "orion")]
        assert rows(postgres_url, "SELECT building, shard FROM shard_buildings") == [("hq", "gw-hq")]
        # Readings stay in the gateway's own file.
        assert first.get("/v1/rooms/orion/history", metric="temperature").status_code == 200
    finally:
        first.stop()
    snapshot = rows(postgres_url, "SELECT count(*) FROM snapshot WHERE shard = 'gw-hq'")[0][0]
    assert snapshot > 0

    # The same shard on another machine: an empty file of its own, the state from PostgreSQL.
    second = start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "b.db", "gw-hq", ["hq"]))
    try:
        assert second.room("orion")["occupancy"]["state"] in ("occupied", "vacant")
        assert occupancy_events(second, "orion")[0] == "occupied"
        wait_until(lambda: second.room("orion")["occupancy"]["state"] == "vacant", 5, "vacant after restart")
        wait_until(lambda: occupancy_events(second, "orion") == ["occupied", "vacant"], 5, "one event each")
        found = rows(postgres_url, "SELECT seq FROM events WHERE shard = 'gw-hq' ORDER BY seq")
        seqs = [seq for (seq,) in found]
        assert seqs == sorted(set(seqs))  # numbering went on from the restored events
    finally:
        second.stop()


def test_two_shards_on_one_database_never_touch_each_others_rows(
    mqtt_broker: BrokerProcess, publisher: Publisher, postgres_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    hq = start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "hq.db", "gw-hq", ["hq"]))
    annex_config = config(prefix, postgres_url, tmp_path / "annex.db", "gw-annex", ["annex"])
    annex = start_gateway(mqtt_broker, annex_config)
    try:
        publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
        publisher.publish(f"{prefix}/annex/1/vega/vega-pir", {"occupancy": True})
        for gw, room in ((hq, "orion"), (annex, "vega")):
            wait_until(lambda gw=gw, room=room: occupancy_events(gw, room) == ["occupied", "vacant"], 8, room)

        def settled() -> bool:
            found = set(rows(postgres_url, "SELECT shard, room FROM events WHERE kind = 'occupancy'"))
            return found == {("gw-hq", "orion"), ("gw-annex", "vega")}

        wait_until(settled, 5, "each shard's occupancy events, its own")
        assert set(rows(postgres_url, "SELECT shard, room FROM room_states")) == {
            ("gw-hq", "orion"),
            ("gw-annex", "vega"),
        }
        assert set(rows(postgres_url, "SELECT shard, room FROM device_states")) <= {
            ("gw-hq", "orion"),
            ("gw-annex", "vega"),
        }
        assert dict(rows(postgres_url, "SELECT building, shard FROM shard_buildings")) == {
            "hq": "gw-hq",
            "annex": "gw-annex",
        }
        # Each serves only its own shard's events, numbered from 1 in each.
        assert occupancy_events(hq, "vega") == [] and occupancy_events(annex, "orion") == []
        firsts = rows(postgres_url, "SELECT shard, min(seq) FROM events GROUP BY shard")
        assert dict(firsts) == {"gw-hq": 1, "gw-annex": 1}
    finally:
        hq.stop()
        annex.stop()


def test_a_building_claimed_by_another_shard_is_refused_at_start(
    mqtt_broker: BrokerProcess, postgres_url: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    hq = start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "hq.db", "gw-hq", ["hq"]))
    try:
        overlapping_config = config(prefix, postgres_url, tmp_path / "x.db", "gw-x", ["annex", "hq"])
        with pytest.raises(ConfigError) as overlapping:
            start_gateway(mqtt_broker, overlapping_config)
        (problem,) = overlapping.value.problems
        assert problem.startswith("gateway.buildings: ") and "'hq' is served by shard 'gw-hq'" in problem
        assert "password" not in overlapping.value.source
        # No gateway.buildings: it claims every building of its site, hq among them.
        unset = r"gateway\.buildings: not set.*'hq' is served by shard 'gw-hq'"
        with pytest.raises(ConfigError, match=unset):
            start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "y.db", "gw-y", None))
        # A standby of the same shard holds the same claim.
        standby = start_gateway(mqtt_broker, config(prefix, postgres_url, tmp_path / "s.db", "gw-hq", ["hq"]))
        standby.stop()
        assert dict(rows(postgres_url, "SELECT building, shard FROM shard_buildings")) == {"hq": "gw-hq"}
    finally:
        hq.stop()


def test_events_acknowledged_while_postgresql_is_down_reach_it_when_it_is_back(
    mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path
) -> None:
    with PostgresServer() as server:
        url = server.url_for("officegw")
        prefix = unique_prefix()
        gw = start_gateway(mqtt_broker, config(prefix, url, tmp_path / "hq.db", "gw-hq", ["hq"]))
        try:
            publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
            wait_until(lambda: occupancy_events(gw, "orion") == ["occupied", "vacant"], 8, "both events")
            server.stop_process("immediate")  # a crash of the database server
            publisher.publish(f"{prefix}/hq/2/orion/orion-pir", {"occupancy": True})
            # Ingest goes on: the file has it all, the messages are acknowledged.
            # The whole list, not its last event: that was already "vacant" before the publish.
            wait_until(
                lambda: occupancy_events(gw, "orion") == ["occupied", "vacant"] * 2,
                8,
                "the second visit",
                progress=lambda: occupancy_events(gw, "orion"),
            )
            wait_until(lambda: gw.metric("officegw_storage_healthy") == 0, 5, "the outage noticed")
            server.start()
            wait_until(lambda: gw.metric("officegw_storage_healthy") == 1, 15, "recovered")

            def caught_up() -> list[str]:
                found = rows(url, "SELECT data ->> 'new' FROM events WHERE kind = 'occupancy' ORDER BY seq")
                return [new for (new,) in found]

            wait_until(
                lambda: caught_up() == ["occupied", "vacant"] * 2,
                15,
                "every event in PostgreSQL",
                progress=caught_up,
            )
        finally:
            gw.stop()
