from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from gateway.runtime.shard_role import ShardCollector, ShardRole


class Clocks:
    def __init__(self) -> None:
        self.monotonic = 100.0
        self.wall = 1_800_000_000.0


def metrics(role: ShardRole) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(ShardCollector(role))
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_a_standby_says_so_and_how_long_it_has_waited() -> None:
    clocks = Clocks()
    role = ShardRole("hq", 42, monotonic=lambda: clocks.monotonic, wall=lambda: clocks.wall)
    clocks.monotonic += 30
    assert metrics(role) == {
        'officegw_shard_active{shard="hq"}': 0.0,
        'officegw_shard_lock_wait_seconds{shard="hq"}': 30.0,
    }
    assert role.session_resumed() is None  # no session before the lock


def test_an_active_tells_when_it_took_the_lock_and_how_fast_it_resumed_the_session() -> None:
    clocks = Clocks()
    role = ShardRole("hq", 42, monotonic=lambda: clocks.monotonic, wall=lambda: clocks.wall)
    clocks.monotonic += 12.5
    assert role.took_lock() == 12.5
    clocks.monotonic += 0.25
    clocks.wall += 100
    assert role.session_resumed() == 0.25
    clocks.monotonic += 60
    assert role.session_resumed() is None  # a reconnect is no takeover
    assert metrics(role) == {
        'officegw_shard_active{shard="hq"}': 1.0,
        'officegw_shard_lock_wait_seconds{shard="hq"}': 12.5,
        'officegw_shard_active_since_seconds{shard="hq"}': 1_800_000_000.0,
        'officegw_shard_takeover_seconds{shard="hq"}': 0.25,
    }
