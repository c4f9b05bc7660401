"""Span arithmetic: the operations every report's figures are made of."""

from __future__ import annotations

from rules.reporting.spans import bucket_of, clip, intersect, per_bucket, total, union


def test_union_joins_overlapping_and_touching_spans() -> None:
    assert union([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]


def test_intersect_keeps_the_common_time() -> None:
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert intersect([(0, 10)], []) == []


def test_per_bucket_cuts_spans_at_the_edges() -> None:
    edges = [0.0, 10.0, 15.0, 30.0]
    assert per_bucket([(5, 12), (14, 29)], edges) == [5.0, 3.0, 14.0]
    assert per_bucket(clip([(-5, 40)], 0, 30), edges) == [10.0, 5.0, 15.0]
    assert total([(0, 1.5), (2, 3)]) == 2.5


def test_bucket_of() -> None:
    edges = [0.0, 10.0, 20.0]
    assert [bucket_of(t, edges) for t in (-1, 0, 9.9, 10, 19.9, 20)] == [None, 0, 0, 1, 1, None]
