from __future__ import annotations

import hashlib

import pytest

from gateway.runtime.shard_lock import (
    PROOF_DEADLINE,
    SERVER_GIVES_UP_AFTER,
    _server_options,
    safe_location,
    shard_lock_key,
)

# Golden keys: a change would let an old and a new gateway of one shard both be active.
KEYS = [("hq", -1026977961520758133), ("officegw", 2688553589157966488)]


@pytest.mark.parametrize(("shard", "key"), KEYS, ids=[shard for shard, _ in KEYS])
def test_the_lock_key_of_a_shard_never_changes(shard: str, key: int) -> None:
    assert shard_lock_key(shard) == key
    digest = hashlib.sha256(f"officegw/shard/{shard}".encode()).digest()
    assert key == int.from_bytes(digest[:8], "big", signed=True)


def test_lock_keys_fit_postgres_bigint_and_differ_per_shard() -> None:
    keys = {shard_lock_key(f"building-{n}") for n in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_the_holder_gives_up_before_the_server_would_grant_the_lock_again() -> None:
    assert PROOF_DEADLINE + 1 < SERVER_GIVES_UP_AFTER


def test_server_keepalives_come_after_the_urls_own_options() -> None:
    options = _server_options("postgresql://u@db/campus?options=-c%20statement_timeout%3D5s")
    assert options.startswith("-c statement_timeout=5s -c tcp_keepalives_idle=")
    assert "-c tcp_user_timeout=" in _server_options("postgresql://u@db/campus")


def test_logged_location_has_no_credentials() -> None:
    assert safe_location("postgresql://officegw:s3cret@db.example:6432/campus") == "db.example:6432/campus"
    assert safe_location("postgres://db/campus") == "db:5432/campus"
