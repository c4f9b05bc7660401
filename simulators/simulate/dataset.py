"""Labelled datasets replayed over MQTT into a running gateway (`officegw simulate
--replay FORMAT FILE`): each row's readings become the native messages its sensors
would have published, stamped with the row's time, and the gateway's occupancy is
compared with the row's label, as `officegw replay` does for the fusion alone.

The gateway follows the rows' time (`clock.mode: device`), so a week of data runs
in seconds; at `--speed max` each row waits for the gateway to be done with the one
before (as in `runner`). Across a gap in the recording the first sensor sends an
empty message (`{"ts": ...}`) every hour: the gateway refuses device times more
than a day ahead of its clock. The figures come with those of the fusion replayed in
process with the gateway's default parameters (`fusion_defaults`): the live path
(broker, ingest, room model, ticker, event log) should give the same answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from rules.occupancy import FusionParams
from simulators.replay import FORMATS, READERS, Confusion, Row, resolve, score
from simulators.simulate.gateway_http import GatewayHttp, Snapshot
from simulators.simulate.link import Link
from simulators.simulate.runner import TICK_SLACK, SimulationError, clock_problem
from simulators.simulate.score import Timeline

BUILDING, FLOOR = "dataset", "1"
GAP_HEARTBEAT = 3600.0


def replay_over_mqtt(
    format_: str,
    path: Path,
    *,
    broker: str,
    gateway: str,
    speed: float | None,
    room: str | None = None,
    api_key: str | None = None,
    prefix: str = "office",
    progress: Callable[[str], None] | None = None,
    sync_timeout: float = 30.0,
) -> dict[str, Any]:
    if format_ not in FORMATS:
        raise SimulationError(f"unknown dataset format {format_!r} (known: {', '.join(FORMATS)})")
    file = resolve(format_, path)
    rows = list(READERS[format_](file))
    if not rows:
        raise SimulationError(f"{file}: no rows")
    room = room or format_
    http = GatewayHttp(gateway, api_key=api_key)
    try:
        published, wall = _publish(
            rows,
            room,
            http,
            broker=broker,
            speed=speed,
            prefix=prefix,
            progress=progress,
            sync_timeout=sync_timeout,
        )
        timeline = Timeline()
        for event in http.events(0, "occupancy"):
            if event.get("room_id") == room and event["data"].get("new") in ("occupied", "vacant"):
                timeline.add(
                    datetime.fromisoformat(event["at"]).timestamp(), event["data"]["new"] == "occupied"
                )
    finally:
        http.close()
    live = _confusion(rows, timeline)
    fusion = score(rows, FusionParams())["all"]
    return {
        "format": format_,
        "file": str(file),
        "room": room,
        **live.figures(),
        "messages": published,
        "wall_s": wall,
        "fusion_defaults": {
            k: v for k, v in fusion.figures().items() if k in ("accuracy", "precision", "recall")
        },
    }


def _publish(
    rows: list[Row],
    room: str,
    http: GatewayHttp,
    *,
    broker: str,
    speed: float | None,
    prefix: str,
    progress: Callable[[str], None] | None,
    sync_timeout: float,
) -> tuple[int, float]:
    """Publishes the rows (waiting for the gateway after each at --speed max); returns
    (messages, wall seconds)."""
    if not http.wait_ready(10.0):
        raise SimulationError(f"gateway {http.base_url} is not ready (GET /readyz)")
    base = http.snapshot()
    if not base.device_clock and speed != 1:
        raise SimulationError("the gateway runs on its system clock: replay needs `clock: {mode: device}`")
    problem = clock_problem(base.ticked, rows[0].at) if base.device_clock else None
    if problem is not None:
        raise SimulationError(problem)
    link = Link(broker, [], mqtt5=True)
    try:
        link.connect()
    except (OSError, ConnectionError) as exc:
        raise SimulationError(f"broker {broker}: {exc}") from None
    wall0 = time.monotonic()
    published = 0
    last_progress = 0.0
    heartbeat_topic = f"{prefix}/{BUILDING}/{FLOOR}/{room}/{rows[0].readings[0][0]}"
    try:
        for index, row in enumerate(rows):
            if speed is not None:
                due = wall0 + (row.at - rows[0].at) / speed
                time.sleep(max(0.0, due - time.monotonic()))
            if index:
                # Across a gap in the recording, a sensor that says nothing but its time,
                # hourly: the gateway refuses device times more than a day ahead of its clock.
                at = rows[index - 1].at + GAP_HEARTBEAT
                while at < row.at:
                    link.publish(heartbeat_topic, orjson.dumps({"ts": at}))
                    published += 1
                    if speed is None:
                        _sync(http, base, published, at, sync_timeout)
                    at += GAP_HEARTBEAT
            for device, payload in row.readings:
                body = payload.model_dump(exclude_none=True, mode="json")
                body["ts"] = row.at
                link.publish(f"{prefix}/{BUILDING}/{FLOOR}/{room}/{device}", orjson.dumps(body))
                published += 1
            if speed is None:
                _sync(http, base, published, row.at, sync_timeout)
            if progress is not None and time.monotonic() - last_progress >= 2.0:
                last_progress = time.monotonic()
                progress(f"row {index + 1:,}/{len(rows):,} · {published:,} messages")
        link.drain()
        _sync(http, base, published, rows[-1].at, sync_timeout)
    finally:
        link.close()
    return published, round(time.monotonic() - wall0, 1)


def _confusion(rows: list[Row], timeline: Timeline) -> Confusion:
    confusion = Confusion()
    for row in rows:
        confusion.add(timeline.at(row.at), row.occupied)
    return confusion


def _sync(http: GatewayHttp, base: Snapshot, published: int, ts: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = http.snapshot()
        if (
            snap.processed - base.processed >= published
            and snap.ticked is not None
            and snap.ticked >= ts - TICK_SLACK
        ):
            return
        time.sleep(0.001)
    raise SimulationError(f"the gateway did not take row {datetime.fromtimestamp(ts)} within {timeout} s")
