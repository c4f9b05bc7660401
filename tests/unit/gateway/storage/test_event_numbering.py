"""Event numbers are never given twice (gateway/storage/event_numbering.py): a run
after a crash numbers past a gap, and the shared store's catch-up takes the events a
dead active kept only in its own file, whatever numbers the shard gave out meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import settings_from_dict
from gateway.storage import postgres_store
from gateway.storage.event_numbering import NUMBERING_GAP, first_number_after, mark_clean_end, take_clean_end
from gateway.storage.open_stores import Stores, open_stores
from gateway.storage.postgres_store import PostgresStore
from gateway.storage.records import StoredEvent
from gateway.storage.sqlite_store import Store
from gateway.storage.webhook_store import WebhookStore

T0 = 1_700_000_000.0


def event(n: int, room: str = "orion") -> tuple[int, StoredEvent]:
    """Event number `n`, at a time of its own."""
    return n, StoredEvent("occupancy", room, "hq", "2", T0 + n, {"new": "occupied"})


def test_a_run_numbers_on_only_where_a_clean_stop_left_off() -> None:
    assert first_number_after(41, 41) == 41
    assert first_number_after(0, 0) == 0  # a fresh store
    # A crash (no note), or numbers given out that no store holds.
    assert first_number_after(41, None) == 41 + NUMBERING_GAP
    assert first_number_after(41, 43) == 41 + NUMBERING_GAP


def open_file_stores(path: Path, url: str | None = None) -> Stores:
    storage = {"path": str(path)} | ({"url": url} if url else {})
    return open_stores(settings_from_dict({"gateway": {"id": "gw-a"}, "storage": storage}))


def test_a_gateway_file_notes_a_clean_stop_and_a_crash_leaves_a_gap(tmp_path: Path) -> None:
    stores = open_file_stores(tmp_path / "gw.db")
    try:
        assert stores.take_numbering() == 0  # a fresh file
        stores.history.commit([], [event(1), event(2)], [], T0)
        stores.mark_numbering_end(2)
    finally:
        stores.close()
    stores = open_file_stores(tmp_path / "gw.db")
    try:
        assert stores.take_numbering() == 2
        stores.history.commit([], [event(3)], [], T0)
        # Number 4 went to stream clients; the process died before committing it.
    finally:
        stores.close()
    stores = open_file_stores(tmp_path / "gw.db")
    try:
        assert stores.take_numbering() == 3 + NUMBERING_GAP
        stores.mark_numbering_end(4)  # a clean stop whose last number was not committed
    finally:
        stores.close()
    stores = open_file_stores(tmp_path / "gw.db")
    try:
        assert stores.take_numbering() == 3 + NUMBERING_GAP
    finally:
        stores.close()


def test_a_file_from_before_the_note_counts_as_stopped_cleanly(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.db")
    store.commit([], [event(1), event(7)], [], T0)
    # As schema 8 left it.
    store._db.executescript("DROP TABLE event_numbering; PRAGMA user_version = 8;")
    store.close()
    store = Store(tmp_path / "gw.db")
    try:
        assert take_clean_end(store) == 7
        assert take_clean_end(store) is None  # this run is now under way
    finally:
        store.close()


def test_the_shared_store_notes_each_shards_end_and_falls_back_to_the_files(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url, "gw-a"), PostgresStore(postgres_url, "gw-b")
    try:
        # Never run here: the file's note counts.
        assert take_clean_end(a, unrecorded=12) == 12
        assert take_clean_end(a, unrecorded=12) is None
        mark_clean_end(a, 30)
        assert take_clean_end(b, unrecorded=None) is None
        assert take_clean_end(a, unrecorded=12) == 30
    finally:
        a.close()
        b.close()


def test_a_standby_with_a_file_of_its_own_numbers_past_what_the_dead_active_kept(
    tmp_path: Path, postgres_url: str
) -> None:
    """Host A's gateway committed 1-3 to its file and PostgreSQL, then 4-5 to its file
    only (PostgreSQL away) and died. The standby on host B (its own file) numbers past
    a gap; when A's file is opened again its 4-5 reach PostgreSQL with their numbers."""
    a = open_file_stores(tmp_path / "a.db", postgres_url)
    hooks = WebhookStore(a.shared) if a.shared else None
    assert hooks is not None
    everything = hooks.create("http://a.example/", [], [], "s" * 16, created_by="t", at=T0)
    try:
        assert a.take_numbering() == 0
        a.history.commit([], [event(1), event(2), event(3)], [], T0)
        assert a.shared is not None
        a.shared.commit([], [event(1), event(2), event(3)], [], T0)
        a.history.commit([], [event(4), event(5)], [], T0)
    finally:
        a.close()  # no clean-stop note: a crash
    b = open_file_stores(tmp_path / "b.db", postgres_url)
    try:
        after = b.take_numbering()
        assert after == 3 + NUMBERING_GAP
        b.history.commit([], [event(after + 1), event(after + 2)], [], T0)
        assert b.shared is not None
        b.shared.commit([], [event(after + 1), event(after + 2)], [], T0)
        b.mark_numbering_end(after + 2)
    finally:
        b.close()
    a = open_file_stores(tmp_path / "a.db", postgres_url)
    try:
        assert a.shared is not None
        numbers = [seq for seq, *_ in a.shared.recent_events(10)]
        assert numbers == [1, 2, 3, 4, 5, after + 1, after + 2]
        waiting = [w.seq for w in WebhookStore(a.shared).waiting(everything.id, 20)]
        assert 4 in waiting and 5 in waiting
        # B stopped cleanly where the shared store ends: A numbers on from there.
        assert a.take_numbering() == after + 2
        assert a.shared.catch_up(a.history) == (0, 0, 0)
    finally:
        a.close()


@pytest.mark.parametrize("where", ["file", "shared"])
def test_events_whose_numbers_went_to_others_are_renumbered_not_lost(
    tmp_path: Path, postgres_url: str, where: str
) -> None:
    """As above, but the other host's run gave out 4-6 (a gateway before the gap, or
    more events than the gap): A's 4-5 get new numbers past every one in use."""
    local = Store(tmp_path / "a.db")
    shared = PostgresStore(postgres_url, "gw-a")
    try:
        local.commit([], [event(n) for n in range(1, 6)], [], T0)
        shared.commit([], [event(n) for n in range(1, 4)], [], T0)
        shared.commit([], [event(n, room="vega") for n in range(4, 7)], [], T0)
        assert shared.catch_up(local) == (2, 0, 0)
        store = local if where == "file" else shared
        found = [(seq, at, room) for seq, at, _, room, _ in store.events_after(0, 100, 100)]
        theirs = [(n, T0 + n, "vega") for n in range(4, 7)] if where == "shared" else []
        assert found == [
            *[(n, T0 + n, "orion") for n in range(1, 4)],
            *theirs,
            (7, T0 + 4, "orion"),
            (8, T0 + 5, "orion"),
        ]
        assert shared.catch_up(local) == (0, 0, 0)
    finally:
        shared.close()
        local.close()


def test_events_pruned_from_the_shared_store_are_not_copied_back(tmp_path: Path, postgres_url: str) -> None:
    local = Store(tmp_path / "a.db")
    shared = PostgresStore(postgres_url, "gw-a")
    try:
        local.commit([], [event(n) for n in range(1, 6)], [], T0)
        shared.commit([], [event(n) for n in range(1, 6)], [], T0)
        assert shared.prune(None, T0 + 3) == (0, 2)  # a shorter retention there
        assert shared.catch_up(local) == (0, 0, 0)
        assert [seq for seq, *_ in shared.recent_events(10)] == [3, 4, 5]
    finally:
        shared.close()
        local.close()


def test_retention_deletes_in_chunks_telling_its_progress(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "PRUNE_CHUNK", 3)
    shared = PostgresStore(postgres_url, "gw-a")
    try:
        shared.commit([], [event(n) for n in range(1, 11)], [], T0)
        calls: list[int] = []
        assert shared.prune(None, T0 + 8.5, lambda: calls.append(1)) == (0, 8)
        assert len(calls) == 3  # 3 + 3 + 2
        assert [seq for seq, *_ in shared.recent_events(10)] == [9, 10]
    finally:
        shared.close()
