"""What a gateway's state needs of its store (events, room and device states, the
snapshot), the same on the SQLite file and on PostgreSQL; then what only the shared
store does: migrations by `schema_version`, shards that never touch each other's
rows, the building registry, and catching up from the SQLite file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.config import ConfigError, settings_from_dict
from gateway.storage import postgres_schema
from gateway.storage.bookings_store import SqlBookingStore
from gateway.storage.open_stores import event_building, open_stores
from gateway.storage.postgres_store import PostgresStore, ShardConflict, StoreError
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.report_queries import BookingRow, SqliteReportSource
from gateway.storage.shared_sink import SharedSink
from gateway.storage.sqlite_store import Store
from gateway.storage.webhook_store import WebhookStore
from rules.bookings import Booking
from simulators.broker import free_port
from tests.postgres import PostgresServer
from tests.unit.gateway.storage.conftest import Backend

T0 = 1_700_000_000.0


def event(kind: str, room: str | None = "orion", at: float = T0, **data: object) -> StoredEvent:
    return StoredEvent(kind, room, "hq" if room else None, "2" if room else None, at, dict(data))


def state(n: int) -> bytes:
    return orjson.dumps({"room_id": "orion", "n": n})


def test_events_states_and_the_snapshot_round_trip(backend: Backend) -> None:
    store = backend.open()
    assert store.last_event_seq() == 0 and store.load_snapshot() == {} and store.room_states() == {}
    store.commit(
        [],
        [(1, event("occupancy", to="occupied")), (2, event("rules", room=None, at=T0 + 1, n=2))],
        [("orion", state(1))],
        T0,
        [("env-1", "orion", b'{"ts": 5.0}')],
    )
    # A redelivered batch (same sequence numbers) is stored once; states are overwritten.
    store.commit([], [(2, event("rules", room=None, at=T0 + 1, n=2))], [("orion", state(2))], T0 + 2)
    store.save_snapshot({"rule_memory": {"a": [1, 2]}, "auto_rooms": []}, T0)
    store.save_snapshot({"auto_rooms": [{"id": "x"}]}, T0 + 1)
    backend.close()

    store = backend.open()
    assert store.last_event_seq() == 2
    assert store.recent_events(10) == [
        (1, T0, "occupancy", "orion", {"to": "occupied"}),
        (2, T0 + 1, "rules", None, {"n": 2}),
    ]
    assert store.recent_events(1) == [(2, T0 + 1, "rules", None, {"n": 2})]
    assert store.event(1) == (1, T0, "occupancy", "orion", {"to": "occupied"})
    assert store.event(3) is None
    assert store.events_after(0, 2, 10) == [(1, T0, "occupancy", "orion", {"to": "occupied"})]
    assert store.room_states() == {"orion": {"room_id": "orion", "n": 2}}
    assert store.device_states() == {"env-1": ("orion", {"ts": 5.0})}
    assert store.load_snapshot() == {"rule_memory": {"a": [1, 2]}, "auto_rooms": [{"id": "x"}]}
    assert store.snapshot_entry("auto_rooms") == [{"id": "x"}] and store.snapshot_entry("nope") is None
    assert store.prune(None, T0 + 0.5) == (0, 1)
    assert [seq for seq, *_ in store.recent_events(10)] == [2]


def test_the_shared_store_keeps_no_readings(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, "gw-1")
    try:
        with pytest.raises(ValueError, match="no readings"):
            store.commit([Reading("d", "orion", "hq", "2", "co2", 1.0, T0, T0, "environment")], [], [], T0)
    finally:
        store.close()


def test_a_fresh_database_is_migrated_once_and_a_newer_one_refused(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("migrations_fresh")
    first, second = PostgresStore(url, "gw-a"), PostgresStore(url, "gw-b")
    try:
        assert first.version == second.version == postgres_schema.SCHEMA_VERSION
        with postgres_server.connect("migrations_fresh") as db:
            versions = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
            assert versions == [(v,) for v in range(1, postgres_schema.SCHEMA_VERSION + 1)]
            newer = postgres_schema.SCHEMA_VERSION + 1
            db.execute("INSERT INTO schema_version (version) VALUES (%s)", (newer,))
            db.commit()
    finally:
        first.close()
        second.close()
    with pytest.raises(StoreError, match="newer officegw"):
        PostgresStore(url, "gw-a")


def test_a_database_is_upgraded_in_place_keeping_its_rows(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresStore(postgres_url, "gw-a")
    store.commit([], [(1, event("occupancy"))], [], T0)
    store.close()
    upgrade = "ALTER TABLE events ADD COLUMN note TEXT;"
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*postgres_schema.MIGRATIONS, upgrade))
    monkeypatch.setattr(postgres_schema, "SCHEMA_VERSION", len(postgres_schema.MIGRATIONS))
    store = PostgresStore(postgres_url, "gw-a")
    try:
        assert store.version == postgres_schema.SCHEMA_VERSION
        assert store.last_event_seq() == 1
    finally:
        store.close()


def test_two_shards_never_read_overwrite_or_prune_each_others_rows(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url, "gw-a"), PostgresStore(postgres_url, "gw-b")
    try:
        a.commit([], [(1, event("occupancy", at=T0))], [("orion", state(1))], T0, [("d", "orion", b"{}")])
        b.commit([], [(1, event("alert", room="vega", at=T0 + 10))], [("vega", state(2))], T0)
        a.save_snapshot({"rule_memory": {"a": 1}}, T0)
        b.save_snapshot({"rule_memory": {"b": 1}}, T0)
        # The same room id from the other shard (a misconfiguration) lands in its own row.
        b.commit([], [], [("orion", state(9))], T0)
        assert a.room_states() == {"orion": {"room_id": "orion", "n": 1}}
        assert a.recent_events(10) == [(1, T0, "occupancy", "orion", {})]
        assert b.recent_events(10) == [(1, T0 + 10, "alert", "vega", {})]
        assert a.load_snapshot() == {"rule_memory": {"a": 1}} and list(a.device_states()) == ["d"]
        assert b.device_states() == {}
        # Retention: a's cut-off deletes a's old event, not b's older one.
        assert a.prune(None, T0 + 20) == (0, 1)
        assert a.last_event_seq() == 0 and b.last_event_seq() == 1
    finally:
        a.close()
        b.close()


def test_each_building_belongs_to_one_shard(postgres_url: str) -> None:
    a, b, standby = (PostgresStore(postgres_url, shard) for shard in ("gw-a", "gw-b", "gw-a"))
    try:
        a.claim(["hq", "annex"], T0)
        with pytest.raises(ShardConflict) as refused:
            b.claim(["annex", "lab"], T0)
        assert refused.value.claimed == {"annex": "gw-a"}
        # Refused: nothing of b's claimed.
        assert a.shards() == {"hq": "gw-a", "annex": "gw-a"}
        standby.claim(["hq", "annex"], T0 + 1)  # the same shard: the same claim
        # A shard restarted without a building releases it for another.
        a.claim(["hq"], T0 + 2)
        b.claim(["annex", "lab"], T0 + 3)
        assert a.shards() == {"hq": "gw-a", "annex": "gw-b", "lab": "gw-b"}
    finally:
        for store in (a, b, standby):
            store.close()


def test_the_shared_store_catches_up_from_the_file(tmp_path: Path, postgres_url: str) -> None:
    local = Store(tmp_path / "officegw.db")
    shared = PostgresStore(postgres_url, "gw-a")
    try:
        local.commit([], [(1, event("occupancy")), (2, event("alert"))], [("orion", state(1))], T0)
        local.save_snapshot({"auto_rooms": [{"id": "x"}]}, T0)
        shared.commit([], [(1, event("occupancy"))], [("orion", state(0))], T0 - 5)
        hooks = WebhookStore(shared)
        everything = hooks.create("http://a.example/", [], [], "s" * 16, created_by="t", at=T0)
        hq_only = hooks.create("http://b.example/", [], ["hq"], "s" * 16, created_by="t", at=T0)
        annex_only = hooks.create("http://c.example/", [], ["annex"], "s" * 16, created_by="t", at=T0)
        # The file keeps no building of an event: the gateway says it (its site config).
        assert shared.catch_up(local, lambda room, data: {"orion": "hq"}.get(room or "")) == (1, 1, 0)
        assert [seq for seq, *_ in shared.recent_events(10)] == [1, 2]
        # The copied event waits for the webhooks it would have gone to live, and only those.
        assert [w.seq for w in hooks.waiting(everything.id, 10)] == [2]
        assert [w.seq for w in hooks.waiting(hq_only.id, 10)] == [2]
        assert hooks.waiting(annex_only.id, 10) == []
        assert shared.room_states() == {"orion": {"room_id": "orion", "n": 1}}
        assert shared.load_snapshot() == {"auto_rooms": [{"id": "x"}]}
        # Newer in the shared store (another process of the shard wrote since): kept.
        shared.commit([], [], [("orion", state(7))], T0 + 60)
        assert shared.catch_up(local) == (0, 0, 0)
        assert shared.room_states() == {"orion": {"room_id": "orion", "n": 7}}
    finally:
        shared.close()
        local.close()


def test_the_sink_keeps_what_failed_for_the_next_batch(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("sink_outage")
    shared = PostgresStore(url, "gw-a", connect_timeout=2)
    sink = SharedSink(shared, max_events=2)
    try:
        with postgres_server.connect("sink_outage") as db:
            # The shared store refuses writes for a while (a full disk, a lost grant).
            db.execute("ALTER TABLE events ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID")
            db.commit()
            for seq in (1, 2, 3):
                with pytest.raises(Exception, match="refuse"):
                    sink.write([(seq, event("occupancy"))], [("orion", state(seq))], [], T0)
            assert sink.behind and sink.dropped == 1  # the oldest waits in the file only
            db.execute("ALTER TABLE events DROP CONSTRAINT refuse")
            db.commit()
        sink.write([], [], [], T0 + 1)
        assert not sink.behind
        assert [seq for seq, *_ in shared.recent_events(10)] == [2, 3]
        assert shared.room_states() == {"orion": {"room_id": "orion", "n": 3}}
    finally:
        shared.close()


def test_reports_read_the_bookings_of_the_shared_store(tmp_path: Path, postgres_url: str) -> None:
    local = Store(tmp_path / "officegw.db")
    shared = PostgresStore(postgres_url, "gw-a")
    try:
        SqlBookingStore(shared).insert(Booking("a", "orion", T0, T0 + 3600, created_at=T0, updated_at=T0))
        with SqliteReportSource(local.path, bookings=shared).read() as report:
            found = report.bookings(["orion"], T0, T0 + 7200, 86_400)
        assert found == {"orion": [BookingRow("orion", T0, T0 + 3600, "booked")]}
    finally:
        shared.close()
        local.close()


def test_a_database_that_cannot_be_used_is_a_config_error_naming_storage_url(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    closed = f"postgresql://gw:secret@127.0.0.1:{free_port('127.0.0.1')}/officegw"
    missing = postgres_server.url_for("no_such_database")
    for url, reason in ((closed, "refused"), (missing, 'database "no_such_database" does not exist')):
        settings = settings_from_dict({"storage": {"path": str(tmp_path / "gw.db"), "url": url}})
        with pytest.raises(ConfigError) as refused:
            open_stores(settings)
        (problem,) = refused.value.problems
        assert problem.startswith("storage.url: cannot connect to ") and reason in problem
        assert "secret" not in problem and "secret" not in refused.value.source


def test_the_building_of_an_event_caught_up_is_the_one_the_gateway_gives_live() -> None:
    rooms = [
        {"id": "orion", "building": "hq", "floor": 2},
        {"id": "vega", "building": "annex", "floor": 1},
    ]
    building_of = event_building(settings_from_dict({"site": {"rooms": rooms}}))
    assert building_of("orion", {}) == "hq" and building_of("vega", {}) == "annex"
    # A room registered from its topic at run time, on a gateway of the whole site: unknown.
    assert building_of("lyra", {}) is None
    # No room: a report archived for a building says which.
    assert building_of(None, {"building": "annex"}) == "annex" and building_of(None, {}) is None
    # A shard of one building subscribes to its topics only: its rooms are in it.
    shard = event_building(settings_from_dict({"gateway": {"buildings": ["hq"]}, "site": {"rooms": rooms}}))
    assert shard("lyra", {}) == "hq" and shard("vega", {}) == "annex"
