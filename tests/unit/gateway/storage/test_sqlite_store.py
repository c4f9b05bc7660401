"""The embedded store on a real SQLite file: migrations, idempotent readings,
history downsampling and retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

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
    points = store.history("orion", "co2", T0, T0 + 600, 300)
    assert [(t, n) for t, _, _, _, n in points] == [(T0, 31), (T0 + 300, 30)]
    _, mean, low, high, _ = points[0]
    assert (low, high) == (400, 1000)
    assert mean == pytest.approx((sum(400 + i for i in range(30)) + 1000) / 31)
    assert store.history("orion", "humidity", T0, T0 + 600, 300) == []
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
