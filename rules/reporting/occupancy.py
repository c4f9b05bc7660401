"""A room's occupancy over a window, from the occupancy changes the gateway logged.

The event log holds one `occupancy` event per change of a room's state (occupied,
vacant, unknown). The state at the window's start is the one the last change
before it set (unknown without one); each change holds until the next. Time the
gateway was not running counts as the last state it logged: nothing recorded
says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from rules.reporting.spans import Span

OCCUPIED = "occupied"
VACANT = "vacant"


def spans_in_state(
    state: str, initial: str | None, changes: Sequence[tuple[float, str]], start: float, end: float
) -> list[Span]:
    """The spans within [start, end) when the room was in `state`: `initial` at the
    start, then each change of `changes` ((time, new state), sorted; one before the
    start sets the state at the start)."""
    spans: list[Span] = []
    current, since = initial, start
    for at, new in changes:
        if at < start:
            current = new
            continue
        if at >= end or new == current:
            continue
        if current == state and since < at:
            spans.append((since, at))
        current, since = new, at
    if current == state and since < end:
        spans.append((since, end))
    return spans
