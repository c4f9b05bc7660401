"""The simulated site, without a broker: seeded determinism, every message readable by
the gateway's own decoders, commands obeyed in every dialect, faults as described."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from devices.pseudonym import Pseudonymizer
from gateway.clock import DeviceClock
from gateway.config import settings_from_dict
from gateway.ingest.pipeline import IngestPipeline
from gateway.ingest.stats import IngestStats
from gateway.live_state import LiveState
from gateway.mqtt.transport import InboundMessage
from simulators.simulate.library import load_scenario
from simulators.simulate.plan import SitePlan
from simulators.simulate.world import BookingRequest, FaultMark, Output, Publish, Restart, World

MONDAY = 1_893_974_400.0  # 2030-01-07T00:00:00Z


def run(world: World, step: float = 10.0) -> list[Output]:
    out: list[Output] = []
    sim = world.start
    while not world.finished:
        next_at = world.next_time()
        assert next_at is not None
        sim = min(max(next_at, sim + step), world.end)
        out += world.advance(sim)
    return out


def published(outputs: Iterable[Output]) -> list[Publish]:
    return [o for o in outputs if isinstance(o, Publish)]


def world(name: str, seed: int = 7, start: float = MONDAY, hours: float = 24.0) -> World:
    return World(SitePlan(load_scenario(name)), seed=seed, start=start, hours=hours)


@pytest.fixture(scope="module")
def faults_day() -> tuple[World, list[Output]]:
    w = world("faults")
    return w, run(w)


def test_the_same_scenario_and_seed_give_the_same_messages() -> None:
    first = published(run(world("small-office", seed=7, start=MONDAY + 8 * 3600, hours=4)))
    again = published(run(world("small-office", seed=7, start=MONDAY + 8 * 3600, hours=4), step=37.0))
    other = published(run(world("small-office", seed=8, start=MONDAY + 8 * 3600, hours=4)))
    assert [(p.at, p.topic, p.payload) for p in first] == [(p.at, p.topic, p.payload) for p in again]
    assert [(p.topic, p.payload) for p in first] != [(p.topic, p.payload) for p in other]
    assert len(first) > 1000


def test_every_message_is_accepted_by_the_gateways_own_ingest(faults_day: tuple[World, list[Output]]) -> None:
    w, outputs = faults_day
    settings = settings_from_dict(w.plan.site_config())
    clock = DeviceClock()
    live, stats = LiveState(settings), IngestStats()
    from gateway.runtime.topics import routes

    pipeline = IngestPipeline(
        topic_prefix=settings.mqtt.topic_prefix,
        live=live,
        stats=stats,
        clock=clock,
        pseudonymizer=Pseudonymizer(b"k" * 32),
        routes=routes(settings),
        registry=settings.registry,
        device_clock=clock,
    )
    messages = published(outputs)
    for message in messages:
        pipeline.handle(InboundMessage(message.topic, message.payload, retained=False))
    # Floods are throttled (flood protection), never rejected; nothing else is held back.
    assert stats.rejected_total == 0, pipeline.dead_letters.page(limit=5)
    assert stats.processed == len(messages)
    assert stats.accepted + stats.throttled + stats.ignored == len(messages)
    assert clock.now() >= w.end - 600
    # Every device of every dialect was heard, under the id the plan says.
    for device in w.plan.devices.values():
        assert any(device_id in live.devices for device_id in w.plan.gateway_ids(device)), device.key


def test_a_day_has_people_meetings_lights_and_reports_of_every_kind(
    faults_day: tuple[World, list[Output]],
) -> None:
    w, outputs = faults_day
    truth = w.truth
    assert len(truth.minutes) == 24 * 60
    busiest = max(sum(row) for _, row in truth.minutes)
    assert 15 <= busiest <= 34
    assert all(n >= 0 for changes in truth.changes.values() for _, n in changes)
    assert sum(truth.minutes[3 * 60][1]) == 0  # 03:00: nobody
    assert truth.meetings and any(m.meeting.no_show for m in truth.meetings.values())
    assert sum(isinstance(o, BookingRequest) for o in outputs) == sum(
        m.meeting.booked for m in truth.meetings.values()
    )
    assert 0 < truth.kwh_between(truth.start, truth.end) < truth.baseline_kwh()
    kinds = Counter(type(o).__name__ for o in outputs)
    # 5 device faults started; all but the schema drift (for the rest of the run) end.
    assert kinds["Restart"] == 2 and kinds["FaultMark"] == 9
    topics = " ".join(p.topic for p in published(outputs))
    for fragment in ("zigbee2mqtt/", "stat/tasmota_", "/status/switch:0", "homie/5/", "office/lab/1/"):
        assert fragment in topics


def test_device_faults_do_what_they_say(faults_day: tuple[World, list[Output]]) -> None:
    w, outputs = faults_day
    records = {f.kind: f for f in w.truth.faults}
    messages = published(outputs)

    def of(device_key: str, since: float, until: float) -> list[Publish]:
        device = w.plan.devices[device_key]
        return [m for m in messages if device.speaker.topic in m.topic and since <= m.at < until]

    offline = records["device_offline"]
    assert offline.end is not None
    during = of("desk-102/env", offline.start, offline.end)
    assert [m.payload for m in during] == [orjson.dumps({"state": "offline"})]  # the last will, then silence
    flood = records["flood"]
    assert len(of("floor-east/light-3", flood.start, flood.start + 60)) >= 50 * 60
    drift = records["schema_drift"]
    after = [orjson.loads(m.payload) for m in of("ada/env", drift.start, drift.start + 3600)]
    after = [body for body in after if "temperature" in body]  # its readings, not its battery level
    assert after and all("co2_ppm" in body and "co2" not in body and body["fw"] == "2.1.0" for body in after)
    stuck = records["stuck_sensor"]
    assert stuck.end is not None
    said = [m.payload for m in of("hedy/pir", stuck.start, stuck.end) if m.topic.endswith("/sensor/motion")]
    assert len(said) > 100 and set(said) == {b"true"}  # Homie: a plain value per property
    drained = records["battery_drain"]
    assert drained.end is not None
    levels = [orjson.loads(m.payload)["battery"] for m in of("grace/door", drained.start, drained.end)]
    assert levels[-1] <= 15 < levels[0]
    restarts = [o for o in outputs if isinstance(o, Restart)]
    assert [r.target for r in restarts] == ["broker", "gateway"]
    marks = [o for o in outputs if isinstance(o, FaultMark)]
    assert all(m.fault.device is not None for m in marks)


@pytest.mark.parametrize(
    ("device", "topic", "payload", "expected"),
    [
        ("office-202/light", "office/hq/2/office-202/light/set", b'{"state": "OFF"}', {"state": "OFF"}),
        ("orion/hvac", "office/hq/2/orion/hvac/set", b'{"setpoint": 17.0}', {"setpoint": 17.0}),
        ("office-201/lock", "office/hq/2/office-201/lock/set", b'{"state": "UNLOCK"}', {"state": "UNLOCK"}),
    ],
)
def test_native_devices_obey_commands_and_report_back(
    device: str, topic: str, payload: bytes, expected: dict[str, Any]
) -> None:
    w = world("small-office", start=MONDAY + 10 * 3600, hours=1)
    w.advance(w.start + 60)
    replies = published(w.command(topic, payload, w.start + 60))
    assert replies, "no report after the command"
    body = orjson.loads(replies[-1].payload)
    assert {k: body[k] for k in expected} == expected
    assert body["ts"] == w.start + 60
    assert w.plan.devices[device].speaker.topic == replies[-1].topic


def test_dialect_devices_obey_their_own_commands() -> None:
    w = world("faults", start=MONDAY + 10 * 3600, hours=1)
    w.advance(w.start + 60)
    switch_off = b'{"id": 1, "method": "Switch.Set", "params": {"id": 0, "on": false}}'
    z2m = "zigbee2mqtt/lab/1/desk-102"
    cases = [
        ("cmnd/tasmota_floor-east_light-1/POWER", b"OFF", "stat/tasmota_floor-east_light-1/POWER", b"OFF"),
        (
            "shellyplus1pm-galley-light-1/rpc",
            switch_off,
            "shellyplus1pm-galley-light-1/status/switch:0",
            None,
        ),
        ("homie/5/hedy-light/light/on/set", b"false", "homie/5/hedy-light/light/on", b"false"),
        (f"{z2m} light/set", b'{"state": "OFF"}', f"{z2m} light", None),
        (f"{z2m} lock/set", b'{"state": "UNLOCK"}', f"{z2m} lock", None),
    ]
    for command_topic, payload, report_topic, report in cases:
        replies = {p.topic: p.payload for p in published(w.command(command_topic, payload, w.start + 60))}
        assert report_topic in replies, (command_topic, list(replies))
        if report is not None:
            assert replies[report_topic] == report
    relay = "shellyplus1pm-galley-light-2"
    said = {p.topic: p.payload for p in published(w.command(f"{relay}/rpc", switch_off, w.start + 61))}
    shelly = orjson.loads(said[f"{relay}/status/switch:0"])
    assert shelly["output"] is False and shelly["apower"] == 0.0


def test_a_command_on_no_devices_topic_is_ignored() -> None:
    w = world("small-office", start=MONDAY + 10 * 3600, hours=1)
    w.advance(w.start + 60)
    assert w.command("office/hq/2/nowhere/light/set", b'{"state": "OFF"}', w.start + 60) == []
    assert w.command("office/hq/2/orion/light-1/set", b"not json", w.start + 60) == []


def test_faults_outside_the_run_are_not_injected_but_said_why() -> None:
    w = world("small-office", start=MONDAY + 12 * 3600, hours=4)  # 12:00-16:00
    outputs = run(w)
    records = {f.kind: f for f in w.truth.faults}
    assert records["device_offline"].skipped == "starts before the start of the run"  # 10:15
    assert records["battery_drain"].skipped == "starts before the start of the run"  # 06:00
    assert records["flood"].injected  # 14:05
    assert [o.fault.kind for o in outputs if isinstance(o, FaultMark)] == ["flood", "flood"]
