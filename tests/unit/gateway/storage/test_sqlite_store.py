"""The embedded store on a real SQLite file: migrations, idempotent readings,
history downsampling, retention, and the history writer's commit-then-ack order."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson
import pytest

from gateway.codec import dumps
from gateway.storage.history_writer import HistoryWriter
from gateway.storage.records import DeviceState, Reading, StoredEvent, readings_from
from gateway.storage.sqlite_store import SCHEMA_VERSION, Store, StoreError
from rules.occupancy import Occupancy, OccupancyState
from rules.room_model import RoomState
from tests.support import wait_until

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


def test_readings_from_a_message() -> None:
    fields = {"co2": 612, "occupancy": True, "state": "ON", "action": "single", "mode": "heat"}
    got = readings_from(
        fields, device_id="d", room_id="r", building="hq", floor="2", ts=T0, received_at=T0 + 1
    )
    assert {(r.metric, r.value, r.kind) for r in got} == {
        ("co2", 612.0, "environment"),
        ("occupancy", 1.0, "occupancy"),
        ("on", 1.0, "lighting"),
    }


def test_the_writer_acknowledges_only_after_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    committed_when_acked: list[int] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01)
    writer.start()
    try:
        for i in range(100):
            writer.submit(
                [reading("co2", i, T0 + i)],
                [],
                RoomState("orion", updated_at=T0 + i),
                ack=lambda: committed_when_acked.append(store.count_readings()),
            )
        assert writer.flush(5)
        wait_until(lambda: len(committed_when_acked) == 100, 5, "every ack")
        # Each ack ran after its reading was in the file (batches commit several at once).
        assert all(count >= i + 1 for i, count in enumerate(committed_when_acked))
        assert orjson.loads(dumps(RoomState("orion", updated_at=T0 + 99))) == store.room_states()["orion"]
    finally:
        writer.stop()
        store.close()


def test_a_failing_store_keeps_rows_in_memory_and_recovers(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    fail = threading.Event()
    fail.set()
    real_commit = store.commit

    def commit(*args: object, **kwargs: object) -> None:
        if fail.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        real_commit(*args, **kwargs)  # type: ignore[arg-type]

    store.commit = commit  # type: ignore[method-assign]
    acked: list[int] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01)
    writer.start()
    try:
        for i in range(10):
            writer.submit([reading("co2", i, T0 + i)], ack=lambda i=i: acked.append(i))  # type: ignore[misc]
        wait_until(lambda: not writer.stats.healthy, 5, "the failure noticed")
        # Live state goes on: the messages are acknowledged, the rows wait in memory.
        wait_until(lambda: len(acked) == 10, 5, "acks despite the failure")
        assert store.count_readings() == 0
        fail.clear()
        wait_until(lambda: writer.stats.healthy, 10, "recovery")
        wait_until(lambda: store.count_readings() == 10, 5, "the kept rows written")
        assert writer.stats.readings_dropped == 0
    finally:
        writer.stop()
        store.close()


def test_the_writer_merges_readings_into_their_series_and_counts_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "officegw.db"
    store = Store(path)
    writer = HistoryWriter(store, dumps, max_delay=0.01, merge_interval=0.1)
    writer.start()
    try:
        writer.submit([reading("co2", 1, T0), reading("co2", 2, T0 + 1)])
        writer.submit([reading("co2", 1, T0)])  # a redelivery
        wait_until(lambda: writer.stats.readings_written == 2, 5, "the readings merged")
        assert writer.stats.readings_duplicate == 1
        db = sqlite3.connect(path)
        assert db.execute("SELECT count(*) FROM readings").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM readings_recent").fetchone()[0] == 0
        db.close()
    finally:
        writer.stop()
        store.close()


def test_a_failing_merge_keeps_the_readings_readable_and_is_retried(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    fail = threading.Event()
    fail.set()
    real_merge = store.merge_recent

    def merge_recent() -> tuple[int, int]:
        if fail.is_set():
            raise sqlite3.OperationalError("database or disk is full")
        return real_merge()

    store.merge_recent = merge_recent  # type: ignore[method-assign]
    writer = HistoryWriter(store, dumps, max_delay=0.01, merge_interval=0.05)
    writer.start()
    try:
        writer.submit([reading("co2", i, T0 + i) for i in range(5)])
        assert writer.flush(5)
        assert writer.stats.merge_failures >= 1
        assert writer.stats.readings_written == 0
        assert store.count_readings() == 5
        assert [n for *_, n in store.history("orion", "co2", T0, T0 + 10, 10)] == [5]
        fail.clear()
        wait_until(lambda: writer.stats.readings_written == 5, 5, "the merge retried")
        assert store.count_readings() == 5
    finally:
        writer.stop()
        store.close()


def test_the_writer_applies_retention_in_the_background(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    now = T0 + 100 * 86_400
    writer = HistoryWriter(
        store,
        dumps,
        max_delay=0.01,
        retention=(30 * 86_400, 60 * 86_400),
        prune_interval=0.05,
        clock=lambda: now,
    )
    writer.start()
    try:
        writer.submit([reading("co2", 1, now - 31 * 86_400), reading("co2", 2, now - 29 * 86_400)])
        writer.submit([], [(1, StoredEvent("alert", None, None, None, now - 61 * 86_400, {}))])
        writer.submit([], [(2, StoredEvent("alert", None, None, None, now - 59 * 86_400, {}))])
        wait_until(lambda: store.count_readings() == 1, 5, "the old reading pruned")
        wait_until(lambda: [seq for seq, *_ in store.recent_events(10)] == [2], 5, "the old event pruned")
        assert writer.stats.pruned_readings == 1
        assert writer.stats.pruned_events == 1
    finally:
        writer.stop()
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


def test_a_device_state_is_written_with_its_room_state(tmp_path: Path) -> None:
    """With the batch that changed the room's occupancy, else at the checkpoint; never
    ahead of the room (what a restart resumes from is one moment)."""
    store = Store(tmp_path / "officegw.db")
    writer = HistoryWriter(store, dumps, max_delay=0.01, checkpoint_interval=3600)
    occupied = RoomState("orion", OccupancyState(Occupancy.OCCUPIED, since=T0))
    writer.start()
    try:
        writer.submit([], room=occupied, device=DeviceState("orion-pir", "orion", T0, 1, {"occupancy": True}))
        assert writer.flush(5)
        assert store.device_states()["orion-pir"][1]["ts"] == T0
        # No occupancy change: room and device wait for the checkpoint, together.
        later = RoomState("orion", occupied.occupancy, updated_at=T0 + 1)
        writer.submit([], room=later, device=DeviceState("orion-pir", "orion", T0 + 1, 2, {"co2": 500}))
        assert writer.flush(5)
        assert store.device_states()["orion-pir"][1]["ts"] == T0
    finally:
        writer.stop()
    assert store.device_states()["orion-pir"][1] == {"ts": T0 + 1, "digest": 2, "last_state": {"co2": 500}}
    assert store.room_states()["orion"]["updated_at"] == T0 + 1
    store.close()
