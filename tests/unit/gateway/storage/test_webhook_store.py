"""The webhook tables on a real SQLite file and a real PostgreSQL: the outbox is filled in the transaction
that commits the events, by kind and building; delivered and failed attempts move the
subscription's state and log; deleting takes everything of a subscription along."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.storage.postgres_store import PostgresStore
from gateway.storage.records import Reading, StoredEvent
from gateway.storage.sqlite_store import Store
from gateway.storage.webhook_store import WebhookStore
from tests.unit.gateway.storage.conftest import Backend

T0 = 1_700_000_000.0


@pytest.fixture
def store(backend: Backend) -> Store | PostgresStore:
    return backend.open()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "officegw.db")
    try:
        yield s
    finally:
        s.close()


def stored(kind: str, room: str | None, building: str | None, at: float = T0) -> StoredEvent:
    return StoredEvent(kind, room, building, "2" if building else None, at, {"n": 1})


def test_committed_events_are_enqueued_by_kind_and_building(store: Store | PostgresStore) -> None:
    hooks = WebhookStore(store)
    everything = hooks.create("http://a.example/", [], [], "x" * 16, created_by="t", at=T0)
    occupancy = hooks.create("http://b.example/", ["occupancy"], [], "x" * 16, created_by="t", at=T0)
    hq = hooks.create("http://c.example/", [], ["hq"], "x" * 16, created_by="t", at=T0)
    store.commit(
        [],
        [
            (1, stored("occupancy", "orion", "hq")),
            (2, stored("alert", "vega", "annex")),
            (3, stored("rules", None, None)),
        ],
        [],
        T0,
    )
    assert [w.seq for w in hooks.waiting(everything.id, 10)] == [1, 2, 3]
    assert [w.seq for w in hooks.waiting(occupancy.id, 10)] == [1]
    # A building filter never matches an event of no room.
    assert [w.seq for w in hooks.waiting(hq.id, 10)] == [1]
    first = hooks.waiting(everything.id, 1)[0]
    assert (first.kind, first.room_id, first.data, first.attempts) == ("occupancy", "orion", {"n": 1}, 0)
    assert hooks.counts() == (3, 0, 5)
    assert {s.id: s.pending for s in hooks.all()} == {everything.id: 3, occupancy.id: 1, hq.id: 1}


def test_events_committed_before_a_subscription_are_not_its(store: Store | PostgresStore) -> None:
    hooks = WebhookStore(store)
    store.commit([], [(1, stored("occupancy", "orion", "hq"))], [], T0)
    late = hooks.create("http://a.example/", [], [], "x" * 16, created_by="t", at=T0 + 1)
    store.commit([], [(2, stored("occupancy", "orion", "hq"))], [], T0 + 2)
    assert [w.seq for w in hooks.waiting(late.id, 10)] == [2]


def test_a_failed_commit_enqueues_nothing(sqlite_store: Store) -> None:
    store = sqlite_store
    hooks = WebhookStore(store)
    hook = hooks.create("http://a.example/", [], [], "x" * 16, created_by="t", at=T0)
    broken = Reading("env", "orion", "hq", "2", "co2", None, T0, T0, "environment")  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        # A reading the store refuses (value NOT NULL) rolls back the whole batch, outbox too.
        store.commit([broken], [(1, stored("occupancy", "orion", "hq"))], [], T0)
    assert hooks.waiting(hook.id, 10) == []
    assert store.last_event_seq() == 0


def test_delivery_outcomes_move_the_state_and_the_log(store: Store | PostgresStore) -> None:
    hooks = WebhookStore(store)
    hook = hooks.create("http://a.example/", [], [], "s" * 16, created_by="ops", at=T0)
    store.commit([], [(seq, stored("occupancy", "orion", "hq")) for seq in (1, 2, 3)], [], T0)
    (target,) = hooks.targets_due(T0)
    assert (target.url, target.secret, target.failures) == ("http://a.example/", "s" * 16, 0)

    hooks.delivered(hook.id, 1, 1, T0 + 1, 200, 0.01)
    hooks.failed(hook.id, 2, 1, T0 + 2, 503, "HTTP 503", 0.02, retry_at=T0 + 3, pause=False)
    state = hooks.get(hook.id)
    assert state is not None
    assert (state.delivered, state.pending, state.failures, state.failing_since) == (1, 2, 1, T0 + 2)
    assert (state.status, state.last_error, state.next_attempt_at) == ("active", "HTTP 503", T0 + 3)
    assert hooks.targets_due(T0 + 2.5) == [] and hooks.next_due() == T0 + 3
    assert hooks.waiting(hook.id, 1)[0].attempts == 1

    hooks.failed(hook.id, 2, 2, T0 + 4, None, "ConnectError", 0.0, retry_at=T0 + 6, pause=True)
    state = hooks.get(hook.id)
    assert state is not None
    assert (state.status, state.paused_at, state.pause_reason, state.failures) == (
        "paused",
        T0 + 4,
        "ConnectError",
        2,
    )
    assert state.failing_since == T0 + 2
    assert hooks.targets_due(T0 + 100) == [] and hooks.next_due() is None
    # Paused, it still collects what is committed.
    store.commit([], [(4, stored("occupancy", "orion", "hq"))], [], T0 + 5)
    assert [w.seq for w in hooks.waiting(hook.id, 10)] == [2, 3, 4]

    resumed = hooks.resume(hook.id)
    assert resumed is not None and (resumed.status, resumed.failures, resumed.paused_at) == (
        "active",
        0,
        None,
    )
    assert [t.id for t in hooks.targets_due(T0 + 5)] == [hook.id]
    log = hooks.deliveries(hook.id, 10)
    assert [(d.seq, d.attempt, d.outcome, d.status) for d in log] == [
        (2, 2, "failed", None),
        (2, 1, "failed", 503),
        (1, 1, "delivered", 200),
    ]


def test_an_event_gone_before_delivery_is_logged_expired(store: Store | PostgresStore) -> None:
    hooks = WebhookStore(store)
    hook = hooks.create("http://a.example/", [], [], "s" * 16, created_by="ops", at=T0)
    store.commit([], [(1, stored("occupancy", "orion", "hq", at=T0 - 400 * 86_400))], [], T0)
    store.prune(None, T0 - 365 * 86_400)
    (gone,) = hooks.waiting(hook.id, 10)
    assert gone.kind is None and gone.at is None
    hooks.delivered(hook.id, gone.seq, 1, T0, None, 0.0)
    assert [d.outcome for d in hooks.deliveries(hook.id, 10)] == ["expired"]
    state = hooks.get(hook.id)
    assert state is not None and (state.delivered, state.pending) == (0, 0)


def test_the_log_is_trimmed_and_delete_takes_everything(store: Store | PostgresStore) -> None:
    hooks = WebhookStore(store)
    hook = hooks.create("http://a.example/", [], [], "s" * 16, created_by="ops", at=T0)
    other = hooks.create("http://b.example/", [], [], "s" * 16, created_by="ops", at=T0)
    store.commit([], [(seq, stored("occupancy", "orion", "hq")) for seq in range(1, 21)], [], T0)
    for seq in range(1, 16):
        hooks.delivered(hook.id, seq, 1, T0 + seq, 200, 0.0)
        hooks.delivered(other.id, seq, 1, T0 + seq, 200, 0.0)
    hooks.trim_deliveries(hook.id, 10)
    assert [d.seq for d in hooks.deliveries(hook.id, 100)] == list(range(15, 5, -1))
    assert len(hooks.deliveries(other.id, 100)) == 15

    assert hooks.delete(hook.id)
    assert not hooks.delete(hook.id)
    assert hooks.get(hook.id) is None
    assert hooks.deliveries(hook.id, 100) == [] and hooks.waiting(hook.id, 100) == []
    assert [s.id for s in hooks.all()] == [other.id]
    assert hooks.counts() == (1, 0, 5)


def test_two_shards_deliver_their_own_events_to_one_subscription(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url, "gw-a"), PostgresStore(postgres_url, "gw-b")
    try:
        hook = WebhookStore(a).create("http://a.example/", [], [], "s" * 16, created_by="t", at=T0)
        # The same sequence numbers in two shards: two events, each its shard's.
        a.commit([], [(1, stored("occupancy", "orion", "hq"))], [], T0)
        b.commit([], [(1, stored("alert", "vega", "annex")), (2, stored("alert", "vega", "annex"))], [], T0)
        hooks_a, hooks_b = WebhookStore(a), WebhookStore(b)
        assert [(w.seq, w.kind) for w in hooks_a.waiting(hook.id, 10)] == [(1, "occupancy")]
        assert [(w.seq, w.kind) for w in hooks_b.waiting(hook.id, 10)] == [(1, "alert"), (2, "alert")]
        hooks_b.delivered(hook.id, 1, 1, T0 + 1, 200, 0.0)
        assert [w.seq for w in hooks_a.waiting(hook.id, 10)] == [1]
        assert hooks_a.counts() == (1, 0, 1) and hooks_b.counts() == (1, 0, 1)
        assert [d.seq for d in hooks_b.deliveries(hook.id, 10)] == [1]
        assert hooks_a.deliveries(hook.id, 10) == []
    finally:
        a.close()
        b.close()
