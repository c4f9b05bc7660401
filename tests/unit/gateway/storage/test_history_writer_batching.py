"""The history writer's group commit on a real SQLite file: when a batch is committed."""

from __future__ import annotations

import threading
from pathlib import Path

from gateway.codec import dumps
from gateway.storage.history_writer import HistoryWriter
from gateway.storage.records import Reading
from gateway.storage.sqlite_store import Store
from tests.support import wait_until

T0 = 1_700_000_000.0


def reading(metric: str, value: float, ts: float) -> Reading:
    return Reading("env-1", "orion", "hq", "2", metric, value, ts, ts + 0.1, "environment")


def test_a_message_after_a_quiet_spell_is_committed_at_once(tmp_path: Path) -> None:
    """Group commit: nothing waits for the commit interval when no commit ran within it."""
    store = Store(tmp_path / "officegw.db")
    acked = threading.Event()
    writer = HistoryWriter(store, dumps, max_delay=60)
    writer.start()
    try:
        writer.submit([reading("co2", 1, T0)], ack=acked.set)
        assert acked.wait(5)
        assert store.count_readings() == 1
    finally:
        writer.stop()
        store.close()


def test_messages_within_a_commit_interval_go_in_one_commit(tmp_path: Path) -> None:
    """Under light load commits are spaced by the interval, not one per message."""
    store = Store(tmp_path / "officegw.db")
    writer = HistoryWriter(store, dumps, max_delay=1.0)
    writer.start()
    try:
        writer.submit([reading("co2", 0, T0)])
        wait_until(lambda: writer.stats.committed_batches == 1, 5, "the first commit")
        for i in range(1, 50):
            writer.submit([reading("co2", i, T0 + i)])
        assert writer.flush(5)
        assert writer.stats.committed_batches == 2
        assert writer.stats.readings_committed == 50
    finally:
        writer.stop()
        store.close()


def test_a_full_batch_is_committed_without_waiting_for_the_interval(tmp_path: Path) -> None:
    store = Store(tmp_path / "officegw.db")
    writer = HistoryWriter(store, dumps, max_delay=60, batch_rows=10)
    writer.start()
    try:
        writer.submit([reading("co2", 0, T0)])
        wait_until(lambda: writer.stats.committed_batches == 1, 5, "the first commit")
        for i in range(1, 41):
            writer.submit([reading("co2", i, T0 + i)])
        # Four full batches of ten, each as soon as it is full: none waits for the interval.
        wait_until(lambda: writer.stats.readings_committed == 41, 5, "the full batches")
        assert writer.stats.committed_batches == 5
    finally:
        writer.stop()
        store.close()
