"""The history writer on a real SQLite file: commit-then-ack order, a failing store
or merge, merging and retention in the background."""

from __future__ import annotations

import sqlite3
import threading
from functools import partial
from pathlib import Path

import orjson

from gateway.codec import dumps
from gateway.storage.history_writer import HistoryWriter
from gateway.storage.postgres_store import PostgresStore
from gateway.storage.records import DeviceState, Reading, StoredEvent
from gateway.storage.shared_sink import SharedSink
from gateway.storage.sqlite_store import Store
from rules.occupancy import Occupancy, OccupancyState
from rules.room_model import RoomState
from tests.postgres import PostgresServer
from tests.support import wait_until

T0 = 1_700_000_000.0


def reading(metric: str, value: float, ts: float, device: str = "env-1", room: str = "orion") -> Reading:
    return Reading(device, room, "hq", "2", metric, value, ts, ts + 0.1, "environment")


def test_the_writer_acknowledges_only_after_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    committed_when_acked: list[int] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01)
    writer.start()
    stopped = False
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
        # A room state whose occupancy did not change waits for a checkpoint (the next,
        # or stop's): how many batches the 100 items took depends on the machine's load.
        writer.stop()
        stopped = True
        assert orjson.loads(dumps(RoomState("orion", updated_at=T0 + 99))) == store.room_states()["orion"]
    finally:
        if not stopped:
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


def test_messages_from_the_broker_are_settled_once_committed(tmp_path: Path) -> None:
    """The back-pressure bound is released by what was committed, message by message
    and byte by byte; what the gateway produced itself never counts."""
    store = Store(tmp_path / "officegw.db")
    settled: list[tuple[int, int, int]] = []
    writer = HistoryWriter(
        store,
        dumps,
        max_delay=0.01,
        settle=lambda messages, size: settled.append((messages, size, store.count_readings())),
    )
    writer.start()
    try:
        for i in range(20):
            writer.submit([reading("co2", i, T0 + i)], message_bytes=100 + i)
        writer.submit([], room=RoomState("orion", updated_at=T0))  # a tick's room state
        assert writer.flush(5)
        assert sum(m for m, _, _ in settled) == 20
        assert sum(b for _, b, _ in settled) == sum(100 + i for i in range(20))
        # Each settle came after its batch was in the file.
        assert all(count >= 1 for _, _, count in settled)
    finally:
        writer.stop()
        store.close()


def test_a_failing_store_still_settles_so_live_state_goes_on(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")

    def commit(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    store.commit = commit  # type: ignore[method-assign]
    settled: list[int] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01, settle=lambda n, size: settled.append(n))
    writer.start()
    try:
        for i in range(5):
            writer.submit([reading("co2", i, T0 + i)], message_bytes=10)
        wait_until(lambda: sum(settled) == 5, 5, "every message settled despite the failure")
    finally:
        writer.stop()
        store.close()


def occupancy(seq: int) -> tuple[int, StoredEvent]:
    return seq, StoredEvent("occupancy", "orion", "hq", "2", T0 + seq, {"new": "occupied"})


def test_with_a_shared_store_a_message_is_acknowledged_after_both_commits(
    tmp_path: Path, postgres_url: str
) -> None:
    store = Store(tmp_path / "officegw.db")
    shared = PostgresStore(postgres_url, "gw-1", pool_size=2)
    # (in the file, in PostgreSQL) when each message was acknowledged.
    seen: list[tuple[int, int]] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01, shared=SharedSink(shared))
    writer.start()
    try:
        for seq in range(1, 21):
            writer.submit(
                [reading("co2", seq, T0 + seq)],
                [occupancy(seq)],
                RoomState("orion", updated_at=T0 + seq),
                ack=lambda: seen.append((store.last_event_seq(), shared.last_event_seq())),
            )
        wait_until(lambda: len(seen) == 20, 5, "every ack")
        assert all(local >= i + 1 and remote >= i + 1 for i, (local, remote) in enumerate(seen))
        assert "orion" in shared.room_states()
        assert store.count_readings() == 20  # the readings stay in the file
    finally:
        writer.stop()
        shared.close()
        store.close()


def test_a_failing_shared_store_is_caught_up_once_it_recovers(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database("writer_shared_outage")
    store = Store(tmp_path / "officegw.db")
    shared = PostgresStore(url, "gw-1", pool_size=2)
    acked: list[int] = []
    writer = HistoryWriter(store, dumps, max_delay=0.01, shared=SharedSink(shared))
    with postgres_server.connect("writer_shared_outage") as db:
        # PostgreSQL refuses the events for a while (a full disk, a revoked grant).
        db.execute("ALTER TABLE events ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID")
        db.commit()
        writer.start()
        try:
            for seq in range(1, 6):
                ack = partial(acked.append, seq)
                writer.submit([reading("co2", seq, T0 + seq)], [occupancy(seq)], ack=ack)
            wait_until(lambda: not writer.stats.healthy, 5, "the failure noticed")
            # Committed to the file, so acknowledged; PostgreSQL gets them later.
            wait_until(lambda: len(acked) == 5, 5, "acks despite the failure")
            assert store.last_event_seq() == 5 and shared.last_event_seq() == 0
            assert (writer.stats.last_error or "").startswith("shared store: ")
            db.execute("ALTER TABLE events DROP CONSTRAINT refuse")
            db.commit()
            wait_until(lambda: writer.stats.healthy, 10, "recovery without new messages")
            assert [seq for seq, *_ in shared.recent_events(10)] == [1, 2, 3, 4, 5]
        finally:
            writer.stop()
            shared.close()
            store.close()


def test_quiet_after_a_burst_the_store_gives_back_its_cache(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    released = threading.Event()
    writer = HistoryWriter(
        store,
        dumps,
        max_delay=0.01,
        merge_interval=0.05,
        after_release=released.set,
        release_after_rows=100,
    )
    writer.start()
    try:
        writer.submit([reading("co2", i, T0 + i) for i in range(99)])
        assert writer.flush(5)
        assert not released.wait(1.0)  # not enough for a burst
        assert writer.stats.memory_releases == 0
        writer.submit([reading("co2", 99, T0 + 99)])
        assert released.wait(5)
        wait_until(lambda: writer.stats.memory_releases == 1, 5, "the release counted")
        # The store goes on as before, its cache filling again.
        writer.submit([reading("co2", 100, T0 + 100)])
        assert writer.flush(5)
        assert store.count_readings() == 101
    finally:
        writer.stop()
        store.close()
