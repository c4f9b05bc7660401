"""Runs a scenario's world against a gateway: pacing, back-pressure, restarts, watching
for faults, collecting what the gateway said, and scoring it.

Pace:

- `--speed N`: N simulated seconds per real second, by the wall clock. The gateway
  must follow device time (`clock.mode: device`) unless N is 1.
- `--speed max`: in lock step with the gateway. The world advances by at least
  `step` simulated seconds (to its next event), publishes what happened, and waits
  until the gateway is done with it: its `officegw_messages_processed_total` has
  grown by what was published (plus its own commands echoed on native topics), it
  has ticked at the newest device time sent (within one tick interval), and every
  command it sent has reached the simulated devices. Then the devices answer the
  commands (stamped with the same time) and the world moves on. So timers, rules and
  bookings see the day as a real site would, only faster, and nothing is lost to a
  fixed rate the gateway cannot keep.

Restarts (faults `broker_restart`, `gateway_restart`) run a hook: a command given on
the command line (`--restart-broker CMD`, `--restart-gateway CMD`) that must return
once the broker or gateway is back up. Without one the fault is not injected (and
reported as skipped). The simulator first waits for the gateway to catch up, runs the
hook, then waits for its own connection and for the gateway's `/readyz`.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from simulators.simulate import score
from simulators.simulate.gateway_http import ClockReading, GatewayHttp, GatewayUnreachable, Snapshot
from simulators.simulate.link import Link
from simulators.simulate.plan import SitePlan
from simulators.simulate.schema import Scenario
from simulators.simulate.score import EnergyDay, Timeline
from simulators.simulate.truth import iso
from simulators.simulate.watch import FaultWatch
from simulators.simulate.world import BookingRequest, FaultMark, Output, Publish, Restart, World

DEFAULT_START = datetime(2030, 1, 7, tzinfo=UTC).timestamp()  # a Monday
PROGRESS_EVERY = 2.0  # real seconds
HOUSEKEEPING_EVERY = 1.0  # real seconds, paced runs
EVENTS_EVERY_STEPS = 400
# The gateway's ticker runs at most every second (min(1 s, vacancy timeout / 10)).
TICK_SLACK = 1.0
# The building counts as quiet this long after the last person left: vacancy timeouts,
# lights off and HVAC setback (30 min) have run by then.
QUIET_AFTER = 3600.0
# Lag figures leave out the first minutes of a run (at most a tenth of it): the site
# powering up and everyone already in the building arriving at once.
WARM_UP = 300.0
# The gateway refuses device times more than this ahead of its clock (gateway.ingest.pipeline).
MAX_AHEAD = 86_400.0
# How long to wait for the gateway's tick report before asking it over HTTP.
PUSH_WAIT = 0.05


class SimulationError(RuntimeError):
    """The run cannot go on (bad combination of options, gateway gone); the CLI prints it."""


@dataclass(frozen=True, slots=True)
class Hooks:
    restart_broker: Callable[[], None] | None = None
    restart_gateway: Callable[[], None] | None = None


@dataclass(slots=True)
class RunConfig:
    scenario: Scenario
    seed: int
    hours: float
    speed: float | None  # None: as fast as the gateway keeps up
    broker: str
    gateway: str
    start: float | None = None
    api_key: str | None = None
    hooks: Hooks = field(default_factory=Hooks)
    truth_path: Path | None = None
    progress: Callable[[str], None] | None = None
    step: float = 10.0
    # Stride while the building is quiet (see World.quiet_for).
    quiet_step: float = 300.0
    check_every: float = 15.0
    sync_timeout: float = 60.0
    mqtt5: bool = True
    # Set to end the run early (the demo's Ctrl-C); what happened so far is scored.
    stop: threading.Event | None = None


@dataclass(slots=True)
class _Counts:
    """What was sent since the gateway's counters were last taken as a base."""

    base: ClockReading
    published: int = 0  # messages on topics the gateway subscribes to
    echoes: int = 0  # its own commands on native topics, which it receives too
    commands: int = 0  # commands the simulated devices got


class Simulation:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.plan = SitePlan(config.scenario)
        self.gateway = GatewayHttp(config.gateway, api_key=config.api_key)
        self.timelines: dict[str, Timeline] = {}
        self._events_after = 0
        self._energy: dict[float, EnergyDay] = {}
        self._snapshots: list[Snapshot] = []
        self._published_at: collections.deque[tuple[float, int]] = collections.deque()
        # (when, how far behind the gateway was): samples after each sync or each second.
        self._lags: list[tuple[float, float]] = []
        self._messages = 0
        self._newest_ts: float | None = None
        self._sync_timeouts = 0
        self._metrics_at = -math.inf
        self._syncs = self._sync_polls = self._sync_pushed = 0
        self._sync_seconds = 0.0
        self._truth_file: IO[bytes] | None = None

    # -- the run -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        config = self.config
        if not self.gateway.wait_ready(10.0):
            raise SimulationError(f"gateway {config.gateway} is not ready (GET /readyz); is it running?")
        first = self.gateway.snapshot()
        if first.missing:
            raise SimulationError(
                f"gateway {config.gateway} does not publish {', '.join(first.missing)} on /metrics: "
                "it is older than this simulator"
            )
        start = self._start(first)
        self._check_mapping()
        self.world = World(self.plan, seed=config.seed, start=start, hours=config.hours)
        gateway_id = self.gateway.clock().gateway
        self.link = Link(
            config.broker,
            self.plan.command_topics(),
            mqtt5=config.mqtt5,
            clock_topic=f"officegw/gateway/{gateway_id}/clock" if first.device_clock else None,
        )
        try:
            self.link.connect()
        except (OSError, ConnectionError) as exc:
            raise SimulationError(f"broker {config.broker}: {exc}") from None
        self.faults = FaultWatch(self.plan, self.gateway)
        self.counts = _Counts(self.gateway.clock())
        self._take(self.gateway.snapshot())
        if config.truth_path is not None:
            self._truth_file = config.truth_path.open("wb")
            self._write([self._header(start)])
        self._wall0 = time.monotonic()
        self._last_progress = 0.0
        try:
            if config.speed is None:
                self._lockstep()
            else:
                self._paced(config.speed)
            self._finish()
        finally:
            self.link.close()
            self.gateway.close()
            if self._truth_file is not None:
                self._truth_file.close()
        return self.figures()

    def _start(self, first: Snapshot) -> float:
        config = self.config
        if not first.device_clock:
            if config.speed != 1:
                raise SimulationError(
                    "the gateway runs on its system clock: only --speed 1 keeps device times near it. "
                    "Run it with `clock: {mode: device}` (officegw simulate --print-config writes such a "
                    "config)"
                )
            if config.start is not None:
                return config.start
            return math.ceil(time.time())
        start = config.start
        if start is None:
            start = config.scenario.start.timestamp() if config.scenario.start else DEFAULT_START
        problem = clock_problem(first.ticked, start)
        if problem is not None:
            raise SimulationError(problem)
        return start

    def _check_mapping(self) -> None:
        """Devices of other dialects reach the gateway only if its config maps them."""
        known = self.gateway.device_ids()
        unmapped = [
            d for d in self.plan.devices.values() if d.dialect != "native" and d.config_id not in known
        ]
        if unmapped:
            names = ", ".join(d.config_id for d in unmapped[:3])
            raise SimulationError(
                f"the gateway does not map {len(unmapped)} devices of {self.config.scenario.name} "
                f"({names}, ...): run it with the config `officegw simulate --scenario "
                f"{self.config.scenario.name} --print-config` writes"
            )

    # -- pacing --------------------------------------------------------------------------

    def _lockstep(self) -> None:
        world, step = self.world, self.config.step
        sim, steps = world.start, 0
        while not world.finished and not self._stopped:
            next_at = world.next_time()
            if next_at is None:
                break
            stride = step
            quiet = world.quiet_for(QUIET_AFTER)
            if quiet >= self.config.quiet_step:
                stride = self.config.quiet_step
            target = min(max(next_at, sim + stride), world.end)
            if _utc_day(target) != _utc_day(sim):
                # The gateway's kWh of the day ends at midnight: read it just before.
                self._take(self.gateway.snapshot())
            sim = target
            self._emit(world.advance(sim), sim)
            self._sync(sim)
            self._answer_commands(sim)
            steps += 1
            if self.faults.watching:
                self.faults.check(sim)
            if steps % EVENTS_EVERY_STEPS == 0:
                self._collect_events()
            self._report_progress(sim)
        self._sync(sim)
        self._take(self.gateway.snapshot())

    def _paced(self, speed: float) -> None:
        world = self.world
        wall0 = time.monotonic()

        def sim_now() -> float:
            return world.start + (time.monotonic() - wall0) * speed

        housekeeping = 0.0
        while not world.finished and not self._stopped:
            next_at = world.next_time()
            if next_at is None:
                break
            due = wall0 + (next_at - world.start) / speed
            while True:
                now = time.monotonic()
                if now >= housekeeping:
                    housekeeping = now + HOUSEKEEPING_EVERY
                    self._housekeeping(sim_now())
                wait = min(due, housekeeping) - now
                if (wait <= 0 and now >= due) or self._stopped:
                    break
                command = self.link.wait_command(wait)
                if command is not None:
                    self._command(*command, min(sim_now(), world.end))
            sim = min(sim_now(), world.end)
            self._emit(world.advance(sim), sim)
        self._housekeeping(min(sim_now(), world.end))

    @property
    def _stopped(self) -> bool:
        return self.config.stop is not None and self.config.stop.is_set()

    def _housekeeping(self, sim: float) -> None:
        self._note(self.gateway.clock())
        if self.faults.watching:
            self.faults.check(sim)
        if int(time.monotonic() - self._wall0) % 10 == 0:
            self._collect_events()
        self._report_progress(sim)

    # -- messages out, commands in -------------------------------------------------------

    def _emit(self, outputs: list[Output], sim: float) -> None:
        for out in outputs:
            if isinstance(out, Publish):
                self.link.publish(out.topic, out.payload, retain=out.retain)
                self._messages += 1
                self.counts.published += 1
                if out.ts is not None and (self._newest_ts is None or out.ts > self._newest_ts):
                    self._newest_ts = out.ts
            elif isinstance(out, BookingRequest):
                self._book(out)
            elif isinstance(out, FaultMark):
                if out.started:
                    self.faults.begin(out.fault)
                else:
                    self.faults.check(out.at)
                    self.faults.ended(out.fault, out.at)
            elif isinstance(out, Restart):
                self._restart(out, sim)
        if not self._published_at or self._published_at[-1][1] != self.counts.published:
            self._published_at.append((time.monotonic(), self.counts.published))
        if self._truth_file is not None:
            self._write(self.world.truth.take_lines())
        else:
            self.world.truth.take_lines()

    def _answer_commands(self, sim: float) -> None:
        for topic, payload in self.link.take_commands():
            self._command(topic, payload, sim)

    def _command(self, topic: str, payload: bytes, sim: float) -> None:
        self.counts.commands += 1
        if topic.startswith(self.plan.prefix + "/"):
            self.counts.echoes += 1  # the gateway receives its own native commands too
        self._emit(self.world.command(topic, payload, sim), sim)

    def _book(self, request: BookingRequest) -> None:
        meeting = request.meeting
        record = self.world.truth.meetings[meeting.id]
        booking_id, refused = self.gateway.book(
            meeting.room,
            meeting.start,
            meeting.end,
            title=f"Meeting {meeting.id}",
            organizer=f"{meeting.organizer}@sim.officegw.example",
            external_id=f"sim-{self.config.scenario.name}-{self.config.seed}-{meeting.id}",
        )
        record.requested = True
        record.booking_id, record.refused = booking_id, refused

    # -- back-pressure -------------------------------------------------------------------

    def _sync(self, sim: float) -> None:
        """Waits until the gateway is done with everything sent so far (see module doc):
        first for its own word after a tick (officegw/gateway/<id>/clock), then, when
        that does not come (commands answered, no new device time), by asking."""
        began = time.monotonic()
        self._syncs += 1
        if not self.link.commands_waiting():
            said = self.link.wait_clock(self._caught_up, PUSH_WAIT)
            if said is not None and not self.link.commands_waiting():
                self._sync_pushed += 1
                self._note(
                    ClockReading(
                        time.monotonic(), said["gateway"], True, None, said["ticked_at"],
                        int(said["messages_processed"]), int(said["commands_sent"]),
                    )
                )  # fmt: skip
                self._sync_seconds += time.monotonic() - began
                return
        deadline = began + self.config.sync_timeout
        pause = 0.0005
        reading: ClockReading | None = None
        while True:
            self._sync_polls += 1
            reading = self._clock_or_none()
            if reading is not None:
                # Commands the gateway sent must have arrived here and been answered
                # (the answers are then more to wait for).
                pending = self.link.take_commands()
                for topic, payload in pending:
                    self._command(topic, payload, sim)
                if not pending and self._caught_up(
                    {
                        "ticked_at": reading.ticked,
                        "messages_processed": reading.processed,
                        "commands_sent": reading.commands_sent,
                    }
                ):
                    self._note(reading)
                    self._sync_seconds += time.monotonic() - began
                    return
            if time.monotonic() > deadline:
                self._sync_timeouts += 1
                if reading is None:
                    raise SimulationError(f"gateway {self.config.gateway} stopped answering")
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def _caught_up(self, said: dict[str, Any]) -> bool:
        """Whether the gateway, as it says (a tick report or GET /v1/clock), has done
        with every message sent, ticked at the newest device time, and every command
        it sent has reached the simulated devices."""
        counts = self.counts
        processed = said["messages_processed"] - counts.base.processed
        commands = said["commands_sent"] - counts.base.commands_sent
        ticked = said["ticked_at"]
        return (
            processed >= counts.published + counts.echoes
            and counts.commands >= commands
            and (self._newest_ts is None or (ticked is not None and ticked >= self._newest_ts - TICK_SLACK))
        )

    def _clock_or_none(self) -> ClockReading | None:
        try:
            return self.gateway.clock()
        except GatewayUnreachable:
            return None

    def _note(self, reading: ClockReading) -> None:
        """How far behind the gateway is: since when it has had every message it has processed."""
        processed = reading.processed - self.counts.base.processed - self.counts.echoes
        while self._published_at and self._published_at[0][1] <= processed:
            self._published_at.popleft()
        lag = max(0.0, reading.at - self._published_at[0][0]) if self._published_at else 0.0
        self._lags.append((reading.at, lag))
        if reading.at - self._metrics_at >= 1.0:
            self._take(self.gateway.snapshot())

    def _take(self, snap: Snapshot) -> None:
        """Keeps what /metrics says about the gateway: energy of the day, CPU, memory."""
        self._metrics_at = snap.at
        if (
            snap.started is not None
            and self._snapshots
            and self._snapshots[-1].started not in (None, snap.started)
        ):
            self._snapshots = []  # a new process: its CPU counts from zero
        if not self._snapshots or snap.at - self._snapshots[-1].at >= 1.0:
            self._snapshots.append(snap)
        if snap.clock is not None:
            day = _utc_day(snap.clock)
            self._energy[day] = EnergyDay(day, snap.clock, snap.kwh_today)
        self._last_snapshot = snap

    # -- restarts ------------------------------------------------------------------------

    def _restart(self, out: Restart, sim: float) -> None:
        record = out.fault
        hook = (
            self.config.hooks.restart_broker if out.target == "broker" else self.config.hooks.restart_gateway
        )
        if hook is None:
            record.injected = False
            record.skipped = f"no --restart-{out.target} command given"
            return
        self._sync(sim)
        before = self.gateway.snapshot()
        rooms_before = len(self.gateway.rooms())
        if not self.link.drain():
            raise SimulationError("the broker did not take the messages published before the restart")
        started = time.monotonic()
        hook()
        if not self.link.wait_connected(60.0):
            raise SimulationError(
                f"no connection to the broker {self.config.broker} after the {out.target} restart"
            )

        def back() -> Snapshot | None:
            # Back = ready again, and it shows it went through the restart: a new
            # broker connection, or a new process.
            if not self.gateway.ready():
                return None
            try:
                snap = self.gateway.snapshot()
            except GatewayUnreachable:
                return None
            if out.target == "broker":
                return snap if snap.connects > before.connects and snap.connected else None
            return snap if snap.started != before.started else None

        after = _poll(back, 120.0)
        seconds = round(time.monotonic() - started, 1)
        if after is None:
            record.evidence = f"the gateway did not show it came back within 120 s ({out.target} restart)"
            after = self.gateway.snapshot()
        elif out.target == "broker":
            record.detected = True
            record.evidence = f"reconnected (officegw_mqtt_connects_total rose) {seconds} s after the restart"
        else:
            restored = len(self.gateway.rooms())
            record.detected = restored >= rooms_before
            record.evidence = (
                f"new process ready {seconds} s after the restart, {restored} of {rooms_before} rooms"
            )
        if out.target == "gateway":
            self.link.forget_clock()
            self.counts = _Counts(self.gateway.clock())  # a new process counts from zero
            self._published_at.clear()
        # Restarts take real time, not simulated time: the latency is the real seconds.
        record.detected_at = record.start + seconds if record.detected else None
        self._newest_ts = None  # a restarted gateway ticks again from the next device time

    # -- what the gateway said -----------------------------------------------------------

    def _collect_events(self) -> None:
        try:
            for event in self.gateway.events(self._events_after, "occupancy"):
                self._events_after = max(self._events_after, int(event["seq"]))
                room, new = event.get("room_id"), event["data"].get("new")
                if room is None or new not in ("occupied", "vacant"):
                    continue
                at = datetime.fromisoformat(event["at"]).timestamp()
                self.timelines.setdefault(room, Timeline()).add(at, new == "occupied")
        except GatewayUnreachable:
            pass

    def _finish(self) -> None:
        self._collect_events()
        truth = self.world.truth
        for record in truth.meetings.values():
            if record.booking_id is not None:
                booking = self.gateway.booking(record.booking_id)
                record.gateway_status = booking.get("status") if booking else None
        lines: list[dict[str, Any]] = [r.line() for r in truth.meetings.values()]
        lines += [f.line() for f in truth.faults]
        lines += [
            {"kind": "energy", "room": room, "kwh": round(kwh, 5)} for room, kwh in truth.room_kwh.items()
        ]
        self._write(lines)

    def _header(self, start: float) -> dict[str, Any]:
        return {
            "kind": "run",
            "scenario": self.config.scenario.name,
            "seed": self.config.seed,
            "start": iso(start),
            "end": iso(start + self.config.hours * 3600),
            "rooms": list(self.plan.rooms),
        }

    def _write(self, lines: list[dict[str, Any]]) -> None:
        if self._truth_file is not None:
            for line in lines:
                self._truth_file.write(orjson.dumps(line) + b"\n")

    # -- figures -------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        truth = self.world.truth
        config = self.config
        result: dict[str, Any] = {
            "scenario": config.scenario.name,
            "seed": config.seed,
            "start": iso(self.world.start),
            "hours": config.hours,
            "speed": "max" if config.speed is None else config.speed,
            "messages": self._messages,
            "wall_s": round(time.monotonic() - self._wall0, 1),
        }
        result |= score.occupancy_figures(truth, self.timelines)
        result |= score.fault_figures(truth)
        result |= score.booking_figures(truth)
        result |= score.energy_figures(truth, sorted(self._energy.values(), key=lambda d: d.day_start))
        result["gateway"] = self._gateway_figures()
        return result

    def _gateway_figures(self) -> dict[str, Any]:
        snaps = self._snapshots
        cpu = None
        if len(snaps) >= 2 and snaps[0].cpu_seconds is not None and snaps[-1].cpu_seconds is not None:
            span = snaps[-1].at - snaps[0].at
            cpu = round(100 * (snaps[-1].cpu_seconds - snaps[0].cpu_seconds) / span, 1) if span > 0 else None
        rss = [s.rss_bytes for s in snaps if s.rss_bytes is not None]
        # Steady state: after the first minutes, when the whole site powered up at once.
        warm = self._wall0 + min(WARM_UP, 0.1 * (time.monotonic() - self._wall0))
        steady = sorted(lag for at, lag in self._lags if at >= warm)
        last = getattr(self, "_last_snapshot", None)
        return {
            "lag_s_p50": round(steady[len(steady) // 2], 2) if steady else None,
            "lag_s_p99": round(steady[min(len(steady) - 1, int(0.99 * len(steady)))], 2) if steady else None,
            "lag_s_max": round(steady[-1], 2) if steady else None,
            "lag_s_max_warm_up": round(max((lag for _, lag in self._lags), default=0.0), 2),
            "cpu_pct": cpu,
            "rss_mb_max": round(max(rss) / 2**20, 1) if rss else None,
            "handler_errors": last.handler_errors if last is not None else None,
            "sync_timeouts": self._sync_timeouts,
            "syncs": self._syncs,
            "sync_polls": self._sync_polls,
            "syncs_by_push": self._sync_pushed,
            "sync_s": round(self._sync_seconds, 1),
        }

    # -- progress ------------------------------------------------------------------------

    def _report_progress(self, sim: float) -> None:
        if self.config.progress is None:
            return
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        world = self.world
        done = (sim - world.start) / max(world.end - world.start, 1e-9)
        elapsed = max(now - self._wall0, 1e-9)
        faults = [f for f in world.truth.faults if f.start <= sim and f.injected]
        detected = sum(1 for f in faults if f.detected)
        lag = self._lags[-1][1] if self._lags else 0.0
        self.config.progress(
            f"{iso(sim)[:16].replace('T', ' ')} {100 * done:5.1f} % · {self._messages:,} messages "
            f"({self._messages / elapsed:,.0f}/s) · gateway {lag:.1f} s behind"
            f" · faults {detected}/{len(faults)} seen"
        )


def clock_problem(ticked: float | None, start: float) -> str | None:
    """Why a gateway whose device clock is at `ticked` cannot take a run from `start`."""
    if ticked is None:
        return None  # it has not seen a device time: the first one sets its clock
    if ticked > start:
        return (
            f"the gateway's clock is at {iso(ticked)}, after this run's start {iso(start)}: its devices "
            "would be stale. Start the gateway on a fresh store, or pass --start after its clock"
        )
    if start - ticked > MAX_AHEAD:
        return (
            f"the gateway's clock is at {iso(ticked)}; it refuses device times more than a day ahead of "
            f"it, and this run starts {iso(start)}. Start the gateway on a fresh store, or pass --start "
            "within a day after its clock"
        )
    return None


def _poll(check: Callable[[], Snapshot | None], timeout: float) -> Snapshot | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.05)
    return None


def _utc_day(at: float) -> float:
    return math.floor(at / 86_400) * 86_400
