"""Alert lifecycles on a real SQLite file and a real PostgreSQL: open -> acknowledged -> resolved, who and
when, kept across reopening, gone with their alert's event."""

from __future__ import annotations

import threading

import pytest

from gateway.storage.alert_store import AlertLifecycle, AlertStore, AlreadyResolved
from gateway.storage.postgres_store import PostgresStore
from gateway.storage.records import StoredEvent
from tests.unit.gateway.storage.conftest import Backend

T0 = 1_700_000_000.0


def alert_event(at: float) -> StoredEvent:
    return StoredEvent(
        "alert", "orion", "hq", "2", at, {"rule": "co2", "severity": "warning", "message": "x"}
    )


def test_acknowledged_then_resolved_keeps_both_with_who_and_when(backend: Backend) -> None:
    store = backend.open()
    alerts = AlertStore(store)
    acked, changed = alerts.acknowledge(7, "ops", "on it", T0 + 60)
    assert changed and acked.state == "acknowledged"
    resolved = alerts.resolve(7, "facilities", "window fixed", T0 + 600)
    assert resolved == AlertLifecycle(7, T0 + 60, "ops", "on it", T0 + 600, "facilities", "window fixed")
    assert resolved.state == "resolved"
    assert AlertStore(backend.open()).all() == {7: resolved}


def test_a_second_acknowledgement_changes_nothing(backend: Backend) -> None:
    alerts = AlertStore(backend.open())
    first, _ = alerts.acknowledge(7, "ops", None, T0)
    again, changed = alerts.acknowledge(7, "someone-else", "me too", T0 + 5)
    assert (again, changed) == (first, False)


def test_resolving_an_open_alert_acknowledges_it_in_the_same_instant(backend: Backend) -> None:
    alerts = AlertStore(backend.open())
    assert alerts.resolve(3, "ops", None, T0) == AlertLifecycle(3, T0, "ops", None, T0, "ops", None)


@pytest.mark.parametrize("step", ["acknowledge", "resolve"])
def test_nothing_happens_to_a_resolved_alert(step: str, backend: Backend) -> None:
    alerts = AlertStore(backend.open())
    resolved = alerts.resolve(3, "ops", None, T0)
    with pytest.raises(AlreadyResolved) as raised:
        getattr(alerts, step)(3, "late", None, T0 + 1)
    assert raised.value.lifecycle == resolved
    assert alerts.all() == {3: resolved}


def test_of_two_resolving_at_once_exactly_one_succeeds(backend: Backend) -> None:
    # On PostgreSQL each resolve runs on a connection of its own (a pool of 8).
    alerts = AlertStore(backend.open() if backend.url is None else backend.open_pool(8))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def resolve(who: str) -> None:
        start.wait()
        try:
            alerts.resolve(9, who, None, T0)
            outcomes.append("resolved")
        except AlreadyResolved:
            outcomes.append("conflict")

    threads = [threading.Thread(target=resolve, args=(f"op{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["resolved"]


def test_retention_drops_lifecycles_of_pruned_alerts(backend: Backend) -> None:
    store = backend.open()
    store.commit([], [(1, alert_event(T0)), (2, alert_event(T0 + 86_400))], [], T0)
    alerts = AlertStore(store)
    alerts.acknowledge(1, "ops", None, T0 + 10)
    alerts.acknowledge(2, "ops", None, T0 + 86_410)
    assert store.prune(None, T0 + 3600) == (0, 1)
    assert set(alerts.all()) == {2}


def test_shards_keep_their_own_alerts_under_the_same_ids(postgres_url: str) -> None:
    a, b = PostgresStore(postgres_url, "gw-a"), PostgresStore(postgres_url, "gw-b")
    try:
        AlertStore(a).resolve(1, "ops", None, T0)
        acked, changed = AlertStore(b).acknowledge(1, "ops", None, T0)
        assert changed and acked.state == "acknowledged"
        assert AlertStore(a).all()[1].state == "resolved"
    finally:
        a.close()
        b.close()
