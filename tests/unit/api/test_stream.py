"""The event stream's generator over a real gateway on a FakeTransport: a client that
cannot keep up is told (`overflow`) and dropped while the producer never waits, and
it resumes from its last id without a gap; events produced on another thread wake it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sse_starlette import ServerSentEvent

from api.gateway_stream import GatewayStream
from api.routes.stream import event_stream
from gateway.push.fanout import StreamFilter
from tests.fakes import GatewayOnFakes, running_gateway

SITE = {
    "mqtt": {"topic_prefix": "office"},
    "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2}]},
    "push": {"stream": {"queue_size": 10}},
}
AUDIT = StreamFilter(kinds=frozenset({"audit"}))


@pytest.fixture
def g(tmp_path: Path) -> Iterator[GatewayOnFakes]:
    with running_gateway(tmp_path, SITE) as gateway:
        yield gateway


def seqs(events: list[ServerSentEvent]) -> list[int]:
    return [int(e.id) for e in events if e.id is not None]


def test_a_client_that_falls_behind_is_told_dropped_and_resumes_without_a_gap(g: GatewayOnFakes) -> None:
    async def scenario() -> None:
        stream = event_stream(GatewayStream(g.gateway), AUDIT, None, "gw")
        ready = await anext(stream)
        assert ready.event == "ready"
        # 30 events while the client reads nothing: the producer does not wait.
        for n in range(30):
            g.gateway.audit("tester", "poke", None, n=n)
        received = [await anext(stream) for _ in range(10)]
        assert [e.event for e in received] == ["audit"] * 10
        first = seqs(received)
        overflow = await anext(stream)
        assert overflow.event == "overflow" and overflow.id is None
        last_id = orjson.loads(str(overflow.data))["last_id"]
        assert last_id == first[-1]
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert g.gateway._fanout.clients == 0 and g.gateway._fanout.overflowed == 1

        # Reconnecting with its last id: the other 20, then live.
        again = event_stream(GatewayStream(g.gateway), AUDIT, last_id, "gw")
        caught_up = [await anext(again) for _ in range(21)]
        assert caught_up[-1].event == "ready"
        assert seqs(caught_up) == list(range(first[0] + 10, first[0] + 30))
        assert [orjson.loads(str(e.data))["data"]["n"] for e in caught_up[:-1]] == list(range(10, 30))
        await again.aclose()
        assert g.gateway._fanout.clients == 0

    asyncio.run(scenario())


def test_an_event_from_another_thread_wakes_a_waiting_client(g: GatewayOnFakes) -> None:
    async def scenario() -> None:
        stream = event_stream(GatewayStream(g.gateway), StreamFilter(), None, "gw")
        burst = [await anext(stream) for _ in range(2)]
        assert [e.event for e in burst] == ["room", "ready"]
        assert orjson.loads(str(burst[0].data))["id"] == "orion"
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        producer = threading.Thread(
            target=g.transport.deliver, args=("office/hq/2/orion/orion-pir", {"occupancy": True})
        )
        producer.start()
        event = await asyncio.wait_for(waiting, 2.0)
        producer.join()
        assert event.event == "occupancy"
        document = orjson.loads(str(event.data))
        assert (document["room_id"], document["building"], document["floor"]) == ("orion", "hq", "2")
        assert document["id"] == f"gw:{event.id}"
        # The gateway shutting down ends the stream.
        g.gateway.end_streams()
        with pytest.raises(StopAsyncIteration):
            while True:
                await asyncio.wait_for(anext(stream), 2.0)

    asyncio.run(scenario())
