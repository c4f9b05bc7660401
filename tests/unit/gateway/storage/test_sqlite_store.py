"""The embedded store on a real SQLite file: migrations, idempotent readings,
history downsampling and retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from gateway.storage import sqlite_store
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.sqlite_store import SCHEMA_VERSION, Store, StoreError

T0 = 1_700_000_000.0


def reading(metric: str, value: float, ts: float, device: str = "env-1", room: str = "orion") -> Reading:
    return Reading(device, room, "hq", "2", metric, value, ts, ts + 0.1, "environment")


def test_a_schema_1_file_is_migrated_and_keeps_its_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "officegw.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE snapshot (key TEXT PRIMARY KEY, value BLOB NOT NULL, saved_at REAL NOT NULL)")
    old.execute("INSERT INTO snapshot VALUES ('rule_memory', ?, 1.0)", (orjson.dumps({"a": 1}),))
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()

    store = Store(path)
    assert store.version == SCHEMA_VERSION
    assert store.load_snapshot() == {"rule_memory": {"a": 1}}
    store.commit([reading("co2", 500, T0)], [], [], T0)
    assert store.merge_recent() == (1, 0)
    store.close()


def test_a_file_from_a_newer_officegw_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "officegw.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer officegw"):
        Store(path)


def test_each_reading_is_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    batch = [reading("co2", 500, T0), reading("temperature", 21.5, T0), reading("co2", 510, T0 + 60)]
    store.commit(batch, [], [], T0)
    # A redelivered message (same device, metric and device time) before the merge...
    store.commit(batch[:2], [], [], T0 + 61)
    assert store.count_readings() == 3
    assert store.merge_recent() == (3, 2)
    # ... and after it.
    store.commit(batch[2:], [], [], T0 + 62)
    assert store.count_readings() == 3
    assert store.merge_recent() == (0, 1)
    assert store.count_readings() == 3
    store.close()


@pytest.mark.parametrize("count", [1, 5, 1023, 1024, 1365, 3001])
def test_a_batch_of_any_size_is_appended_row_for_row(tmp_path: Path, count: int) -> None:
    """Readings go in multi-row chunks (1,024, then smaller): every size comes out whole."""
    store = Store(tmp_path / "officegw.db")
    batch = [
        Reading(
            f"dev-{i % 7}",
            f"room-{i % 3}",
            "hq",
            "2",
            ("co2", "power")[i % 2],
            i * 0.5,
            T0 + i,
            T0 + i + 0.25,
            "x",
        )
        for i in range(count)
    ]
    store.commit(batch, [], [], T0)
    expected = sorted((r.device_id, r.room_id, r.metric, r.value, r.ts, r.received_at) for r in batch)
    db = sqlite3.connect(tmp_path / "officegw.db")
    query = "SELECT device, room, metric, value, ts, received_at FROM {} ORDER BY device, room, metric, ts"
    assert db.execute(query.format("readings_recent")).fetchall() == expected
    assert store.merge_recent() == (count, 0)
    assert db.execute(query.format("readings")).fetchall() == expected
    assert store.metrics("room-0") == (["co2", "power"] if count > 3 else ["co2"])
    db.close()
    store.close()


def test_readings_a_crash_left_unmerged_are_merged_on_open(tmp_path: Path) -> None:
    path = tmp_path / "officegw.db"
    store = Store(path)
    store.commit([reading("co2", 500, T0), reading("co2", 501, T0 + 1)], [], [], T0)
    store.close()  # no merge_recent(): as after a SIGKILL

    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM readings").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM readings_recent").fetchone()[0] == 0
    db.close()


@pytest.mark.parametrize("merged", [False, True], ids=["before the merge", "after the merge"])
def test_history_is_downsampled_per_step(tmp_path: Path, merged: bool) -> None:
    store = Store(tmp_path / "officegw.db")
    rows = [reading("co2", 400 + i, T0 + i * 10) for i in range(60)]  # 10 min, one every 10 s
    rows += [reading("co2", 1000, T0 + 5, device="env-2")]  # another sensor of the room
    rows += [reading("co2", 9999, T0 + 5, room="lyra")]  # another room
    # Half of them merged already, the other half (and a redelivery) not yet.
    store.commit(rows[:30], [], [], T0)
    store.merge_recent()
    store.commit(rows[30:] + rows[:5], [], [], T0)
    if merged:
        store.merge_recent()
    points = store.history("orion", "co2", T0, T0 + 600, 200)  # T0 is a multiple of 200
    assert [(t, n) for t, _, _, _, n in points] == [(T0, 21), (T0 + 200, 20), (T0 + 400, 20)]
    _, mean, low, high, _ = points[0]
    assert (low, high) == (400, 1000)
    assert mean == pytest.approx((sum(400 + i for i in range(20)) + 1000) / 21)
    assert store.history("orion", "humidity", T0, T0 + 600, 200) == []
    store.close()


def test_buckets_are_aligned_to_multiples_of_the_step_whatever_the_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    store.commit([reading("co2", 400 + i, T0 + i * 10) for i in range(60)], [], [], T0)
    # T0 = 5,666,666 * 300 + 200: buckets of 300 s start 200 s before it.
    aligned = T0 - 200
    points = store.history("orion", "co2", T0, T0 + 600, 300)
    assert [(t, n) for t, _, _, _, n in points] == [(aligned, 10), (aligned + 300, 30), (aligned + 600, 20)]
    # Windows a few seconds apart: the same boundaries; only the edge buckets' counts move.
    later = store.history("orion", "co2", T0 + 7, T0 + 607, 300)
    assert [t for t, *_ in later] == [t for t, *_ in points]
    assert [n for *_, n in later] == [9, 30, 20]
    assert all(t % 300 == 0 for t, *_ in later)
    # Fractional steps, and a time before the epoch, are floored too.
    assert [t for t, *_ in store.history("orion", "co2", T0, T0 + 1, 0.25)] == [T0]
    store.commit([reading("co2", 1, -10.5)], [], [], T0)
    assert store.history("orion", "co2", -100, 0, 4) == [(-12.0, 1.0, 1.0, 1.0, 1)]
    store.close()


@pytest.mark.parametrize("merged", [False, True], ids=["before the merge", "after the merge"])
def test_raw_readings_are_paged_by_time_and_device(tmp_path: Path, merged: bool) -> None:
    store = Store(tmp_path / "officegw.db")
    # Two sensors reporting at the same instants, so pages end between them.
    rows = [reading("co2", 400 + i, T0 + i, device=d) for i in range(10) for d in ("env-a", "env-b")]
    rows += [reading("co2", 9999, T0 + 5, room="lyra"), reading("temperature", 21, T0 + 5)]
    store.commit(rows[:7], [], [], T0)
    store.merge_recent()
    store.commit(rows[7:] + rows[:3], [], [], T0)  # the rest, and a redelivery
    if merged:
        store.merge_recent()
    expected = sorted((r.ts, r.device_id, r.value) for r in rows[:20])
    assert store.readings("orion", "co2", T0, T0 + 10, limit=100) == expected
    got: list[tuple[float, str, float]] = []
    after = None
    while True:
        page = store.readings("orion", "co2", T0, T0 + 10, after=after, limit=3)
        got += page
        if len(page) < 3:
            break
        after = (page[-1][0], page[-1][1])
    assert got == expected
    assert store.readings("orion", "co2", T0 + 2, T0 + 4, limit=100) == expected[4:8]
    assert store.readings("orion", "co2", T0, T0 + 10, after=(T0 + 9, "env-b"), limit=100) == []
    store.close()


def test_the_metrics_of_a_room_with_their_first_and_last_reading(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    store.commit(
        [reading("co2", 1, T0), reading("co2", 2, T0 + 100), reading("humidity", 40, T0 + 50)], [], [], T0
    )
    store.merge_recent()
    store.commit(
        [
            reading("co2", 3, T0 + 200),
            reading("temperature", 21, T0 + 10),
            reading("co2", 9, T0, room="lyra"),
        ],
        [],
        [],
        T0,
    )
    assert store.metrics("orion") == ["co2", "humidity", "temperature"]
    spans = [("co2", T0, T0 + 200), ("humidity", T0 + 50, T0 + 50), ("temperature", T0 + 10, T0 + 10)]
    assert store.series_spans("orion") == spans
    store.merge_recent()
    assert store.series_spans("orion") == spans
    # A series retention emptied is still a known metric, with no span.
    store.prune(T0 + 60, None)
    assert store.metrics("orion") == ["co2", "humidity", "temperature"]
    assert store.series_spans("orion") == [("co2", T0 + 100, T0 + 200)]
    assert store.series_spans("nowhere") == []
    store.close()


def test_retention_deletes_only_what_is_older(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    store.commit(
        [reading("co2", 1, T0), reading("co2", 2, T0 + 100)],
        [
            (1, StoredEvent("alert", "orion", "hq", "2", T0, {})),
            (2, StoredEvent("alert", "orion", "hq", "2", T0 + 100, {})),
        ],
        [],
        T0,
    )
    store.merge_recent()
    assert store.prune(T0 + 50, T0 + 50) == (1, 1)
    assert store.count_readings() == 1
    assert [seq for seq, *_ in store.recent_events(10)] == [2]
    store.close()


def test_a_long_retention_run_reports_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The history writer's liveness (a long DELETE is not a hang) rests on it."""
    monkeypatch.setattr(sqlite_store, "PROGRESS_STEPS", 100_000)  # a few ms apart
    store = Store(tmp_path / "officegw.db")
    store.commit([reading("co2", n, T0 + n) for n in range(60_000)], [], [], T0)
    store.merge_recent()
    calls: list[int] = []
    assert store.prune(T0 + 50_000, None, lambda: calls.append(1)) == (50_000, 0)
    assert len(calls) >= 3
    # Only while pruning: later statements call nothing.
    store.commit([reading("co2", 1, T0 + 70_000)], [], [], T0)
    store.merge_recent()
    assert store.count_readings() == 10_001 and len(calls) >= 3
    before = len(calls)
    store.prune(T0, None)
    assert len(calls) == before
    store.close()


def test_device_states_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    state = orjson.dumps({"ts": T0, "digest": 7, "last_state": {"occupancy": True}})
    store.commit([], [], [], T0, [("orion-pir", "orion", state)])
    store.commit([], [], [], T0 + 1, [("orion-pir", "orion", state.replace(b"true", b"false"))])
    assert store.device_states() == {
        "orion-pir": ("orion", {"ts": T0, "digest": 7, "last_state": {"occupancy": False}})
    }
    store.close()


def test_a_reader_sees_one_snapshot_while_commits_go_on(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    event = StoredEvent("alert", "orion", "hq", "2", T0, {"rule": "co2"})
    store.commit([], [(1, event)], [], T0)
    with store.reader() as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (1,)
        # Not held up by the report's reads, and not seen by them.
        store.commit([], [(2, event)], [], T0 + 1)
        assert db.execute("SELECT count(*) FROM events").fetchone() == (1,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("DELETE FROM events")
    with store.reader() as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (2,)
    store.close()
