"""The webhook dispatcher, one round at a time, on a real store, a manual clock and
httpx's MockTransport as the receiver: order, signatures, back-off doubling to its
cap, pausing after failures over time (or at once on 410), expired events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.clock import ManualClock
from gateway.config import WebhooksSection
from gateway.push.signing import signature
from gateway.push.webhooks import WebhookDispatcher
from gateway.storage.records import StoredEvent
from gateway.storage.sqlite_store import Store
from gateway.storage.webhook_store import WebhookStore

SECRET = "0123456789abcdef-secret"


class Receiver:
    """What the MockTransport answers: `status` (or raises ConnectError when None)."""

    def __init__(self) -> None:
        self.status: int | None = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status, content=b"ok")

    def seqs(self) -> list[int]:
        return [orjson.loads(r.content)["seq"] for r in self.requests]


class Rig:
    def __init__(self, tmp_path: Path, **settings: float) -> None:
        self.store = Store(tmp_path / "officegw.db")
        self.hooks = WebhookStore(self.store)
        self.clock = ManualClock()
        self.receiver = Receiver()
        self.paused: list[tuple[str, int, str]] = []
        self.dispatcher = WebhookDispatcher(
            self.hooks,
            WebhooksSection(**settings),  # type: ignore[arg-type]
            gateway_id="gw-test",
            place=lambda room, data: ("hq", "2") if room else (None, None),
            on_pause=lambda *args: self.paused.append(args),
            clock=self.clock.now,
            client=httpx.Client(transport=httpx.MockTransport(self.receiver)),
        )
        self.seq = 0

    def subscribe(self) -> str:
        return self.hooks.create(
            "http://receiver.test/hook", [], [], SECRET, created_by="t", at=self.clock.now()
        ).id

    def events(self, count: int) -> None:
        batch = []
        for _ in range(count):
            self.seq += 1
            batch.append(
                (self.seq, StoredEvent("occupancy", "orion", "hq", "2", self.clock.now(), {"n": self.seq}))
            )
        self.store.commit([], batch, [], self.clock.now())

    def state(self, hook: str) -> tuple[str, int, float]:
        s = self.hooks.get(hook)
        assert s is not None
        return s.status, s.failures, s.next_attempt_at - self.clock.now()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**settings: float) -> Rig:
        made.append(Rig(tmp_path, **settings))
        return made[-1]

    yield make
    for r in made:
        r.store.close()


def test_events_go_in_order_signed_with_their_ids(rig: Callable[..., Rig]) -> None:
    r = rig()
    hook = r.subscribe()
    r.events(3)
    assert r.dispatcher.run_once()
    assert r.receiver.seqs() == [1, 2, 3]
    request = r.receiver.requests[0]
    body = request.content
    assert request.headers["officegw-event-id"] == "gw-test:1" == orjson.loads(body)["id"]
    assert request.headers["officegw-signature"] == signature(SECRET, body, int(r.clock.now()))
    assert orjson.loads(body)["building"] == "hq"
    assert not r.dispatcher.run_once(), "nothing left"
    s = r.hooks.get(hook)
    assert s is not None and (s.delivered, s.pending) == (3, 0)
    assert r.dispatcher.stats.delivered == 3


def test_a_failure_keeps_the_event_first_and_backs_off_doubling_to_the_cap(rig: Callable[..., Rig]) -> None:
    r = rig(retry_min_delay=1.0, retry_max_delay=8.0, pause_after_failures=100)
    hook = r.subscribe()
    r.events(2)
    r.receiver.status = 503
    delays = []
    for _ in range(6):
        assert r.dispatcher.run_once()
        delay = r.state(hook)[2]
        delays.append(delay)
        assert not r.dispatcher.run_once(), "waits out its back-off"
        r.clock.advance(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert r.receiver.seqs() == [1] * 6, "the first event, again and again; the second waits its turn"
    assert [r.receiver.requests[i].headers["officegw-delivery-attempt"] for i in (0, 5)] == ["1", "6"]
    r.receiver.status = 200
    assert r.dispatcher.run_once()
    assert r.receiver.seqs()[-2:] == [1, 2]
    assert r.state(hook)[:2] == ("active", 0)


def test_pausing_needs_both_the_failures_and_the_time(rig: Callable[..., Rig]) -> None:
    r = rig(retry_min_delay=1.0, retry_max_delay=60.0, pause_after_failures=3, pause_after=600.0)
    hook = r.subscribe()
    r.events(1)
    r.receiver.status = None
    for _ in range(3):
        r.dispatcher.run_once()
        r.clock.advance(r.state(hook)[2])
    # Three failures within 3 s: not long enough yet.
    assert r.state(hook)[0] == "active" and r.paused == []
    while r.state(hook)[0] == "active":
        r.dispatcher.run_once()
        r.clock.advance(60.0)
    assert r.paused and r.paused[0][0] == hook and "ConnectError" in r.paused[0][2]
    s = r.hooks.get(hook)
    assert s is not None and s.failing_since is not None
    assert s.paused_at is not None and s.paused_at - s.failing_since >= 600.0
    assert r.dispatcher.stats.paused == 1
    count = len(r.receiver.requests)
    r.clock.advance(3600)
    assert not r.dispatcher.run_once() and len(r.receiver.requests) == count


def test_410_gone_pauses_at_once(rig: Callable[..., Rig]) -> None:
    r = rig()
    hook = r.subscribe()
    r.events(1)
    r.receiver.status = 410
    r.dispatcher.run_once()
    assert r.state(hook)[0] == "paused"
    assert r.paused == [(hook, 1, "HTTP 410")]


def test_a_success_resets_the_count_within_a_round(rig: Callable[..., Rig]) -> None:
    r = rig(retry_min_delay=1.0, pause_after_failures=2, pause_after=0.0)
    hook = r.subscribe()
    r.events(2)
    r.receiver.status = 500
    r.dispatcher.run_once()  # failure 1
    r.clock.advance(1.0)
    statuses = iter([200, 500])

    def answer(request: httpx.Request) -> httpx.Response:
        r.receiver.requests.append(request)
        return httpx.Response(next(statuses))

    r.dispatcher._client = httpx.Client(transport=httpx.MockTransport(answer))
    r.dispatcher.run_once()  # event 1 delivered, event 2 fails: one failure in a row, not two
    assert r.state(hook)[:2] == ("active", 1)
