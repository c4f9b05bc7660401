"""The exporter's durable queue: bounded, ordered, deleted only when told, survives reopening."""

from __future__ import annotations

from pathlib import Path

from gateway.storage.influx.buffer import InfluxBuffer


def test_keeps_order_and_refuses_what_does_not_fit(tmp_path: Path) -> None:
    buffer = InfluxBuffer(tmp_path / "q", max_rows=5)
    assert buffer.append(["a", "b", "c"]) == 0
    assert buffer.append(["d", "e", "f", "g"]) == 2
    assert len(buffer) == 5
    assert [line for _, line in buffer.peek(10)] == ["a", "b", "c", "d", "e"]
    assert buffer.append(["h"]) == 1
    buffer.close()


def test_remove_deletes_exactly_a_run_of_peeked_rows(tmp_path: Path) -> None:
    buffer = InfluxBuffer(tmp_path / "q", max_rows=100)
    buffer.append([str(n) for n in range(10)])
    rows = buffer.peek(6)
    buffer.remove(rows[2:4])
    buffer.append(["late"])
    assert [line for _, line in buffer.peek(100)] == ["0", "1", "4", "5", "6", "7", "8", "9", "late"]
    buffer.remove(buffer.peek(2))
    assert len(buffer) == 7
    buffer.remove([])
    buffer.close()


def test_what_was_queued_is_there_after_reopening(tmp_path: Path) -> None:
    first = InfluxBuffer(tmp_path / "sub" / "q", max_rows=3)
    first.append(["a", "b"])
    first.close()
    second = InfluxBuffer(tmp_path / "sub" / "q", max_rows=3)
    assert len(second) == 2
    assert second.append(["c", "d"]) == 1
    assert [line for _, line in second.peek(10)] == ["a", "b", "c"]
    second.close()
