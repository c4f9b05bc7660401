"""The simulated site over simulated time: people moving, devices reporting what they
sense, lights and HVAC obeying commands, faults on cue. Pure and seeded.

`advance(until)` returns what happened up to `until` (simulated epoch seconds), in
time order: device messages to publish (stamped with simulated time), bookings to
make through the booking API, restarts to carry out. `command(topic, payload, at)`
is a gateway command arriving at a device, which obeys in its dialect and reports
back. Nothing here reads the clock or touches the network.

Randomness comes in separate streams seeded from the run's seed: one per day for
people's plans, one per room for what its sensors catch, one per room for how
people react to the gateway. So the same scenario and seed give the same messages,
and what the gateway commands never changes who comes in.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson

from simulators.simulate import physics, voices
from simulators.simulate.people import DayPlanner, Meeting, Person, seat
from simulators.simulate.plan import SimDevice, SimRoom, SitePlan
from simulators.simulate.schema import (
    WEEKDAYS,
    BatteryDrain,
    BrokerRestart,
    DeviceOffline,
    Fault,
    Flood,
    GatewayRestart,
    SchemaDrift,
    StuckSensor,
)
from simulators.simulate.truth import FaultRecord, Truth

_BADGES = 64  # staff badges in circulation (ids only; never checked)


@dataclass(frozen=True, slots=True)
class Publish:
    at: float
    topic: str
    payload: bytes
    retain: bool
    # The device time the message carries (None: its dialect sends none, e.g. Homie).
    ts: float | None


@dataclass(frozen=True, slots=True)
class BookingRequest:
    at: float
    meeting: Meeting


@dataclass(frozen=True, slots=True)
class Restart:
    at: float
    target: Literal["broker", "gateway"]
    fault: FaultRecord


@dataclass(frozen=True, slots=True)
class FaultMark:
    """A device fault began or ended: the runner starts or stops watching the gateway for it."""

    at: float
    fault: FaultRecord
    started: bool


Output = Publish | BookingRequest | Restart | FaultMark


@dataclass(slots=True)
class _Device:
    sim: SimDevice
    rng: random.Random
    # Lights
    on: bool = False
    brightness: int = 254
    energy_kwh: float = 0.0
    settled_at: float = 0.0
    # HVAC
    setpoint: float = 21.0
    mode: str = "heat"
    # Locks, sensors
    locked: bool = True
    presence: bool = False
    occupancy: bool = False
    blind_until: float = -math.inf
    detected_at: float = -math.inf
    battery: float = 100.0
    closing: bool = False
    # Faults
    offline: bool = False
    stuck: bool = False
    drift: SchemaDrift | None = None
    drain: tuple[float, float, float, float] | None = None  # (from %, to %, start, end)
    last: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Room:
    sim: SimRoom
    sense: random.Random  # what its sensors catch
    react: random.Random  # people reacting to what the gateway does
    people: set[str] = field(default_factory=set)
    co2: float = 420.0
    temperature: float = physics.FREE_RUNNING_C
    humidity: float = physics.HUMIDITY_BASE
    settled_at: float = 0.0
    motion_generation: int = 0
    devices: dict[str, _Device] = field(default_factory=dict)


# Event kinds (small ints: the heap compares tuples).
PLAN_DAY, MOVE, MOTION, PIR_CLEAR, RADAR_CLEAR, DOOR_CLOSE, RELOCK, REPORT = range(8)
BATTERY, BACK_ON, MINUTE, BOOK, FAULT_START, FAULT_END, FAULT_TICK, END = range(8, 16)
POWER_UP = 16
POWER_UP_SPREAD = 30.0
_ACTIVITY = frozenset({PLAN_DAY, MOVE, BOOK, FAULT_START, FAULT_END})


class World:
    """One run of a scenario: from `start` for `hours` simulated hours."""

    def __init__(self, plan: SitePlan, *, seed: int, start: float, hours: float) -> None:
        scenario = plan.scenario
        self.plan, self.seed, self.start, self.end = plan, seed, start, start + hours * 3600.0
        self.physics = scenario.physics
        self.zone = ZoneInfo(scenario.timezone)
        self._heap: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self._out: list[Output] = []
        self.now = start
        self.rooms: dict[str, _Room] = {}
        self._devices: dict[str, _Device] = {}
        for room in plan.rooms.values():
            state = _Room(
                room,
                random.Random(f"{seed}/sense/{room.id}"),
                random.Random(f"{seed}/react/{room.id}"),
                co2=self.physics.co2.outdoor,
                settled_at=start,
            )
            for device in room.devices:
                rng = random.Random(f"{seed}/device/{device.key}")
                dev = _Device(device, rng, settled_at=start, battery=round(rng.uniform(55, 100), 1))
                state.devices[device.name] = dev
                self._devices[device.key] = dev
            self.rooms[room.id] = state
        self.people: dict[str, Person] = {
            p.id: p
            for p in seat(scenario.populations, list(plan.rooms.values()), random.Random(f"{seed}/seat"))
        }
        self._where: dict[str, str | None] = dict.fromkeys(self.people)
        self._planner = DayPlanner(list(self.people.values()), list(plan.rooms.values()))
        self.truth = Truth(plan, start, self.end, scenario.baseline, self.zone)
        self._badges = [f"{random.Random(f'{seed}/badge/{i}').getrandbits(56):014X}" for i in range(_BADGES)]
        self._faults = [self._fault_record(i, fault) for i, fault in enumerate(scenario.faults)]
        for record in self._faults:
            if record.start >= self.end:
                record.injected, record.skipped = False, "starts after the end of the run"
            elif record.start < start:
                record.injected, record.skipped = False, "starts before the start of the run"
        self.truth.faults = self._faults
        self._started = False
        self._skies: dict[float, physics.Sky] = {}
        # When people next do something (moves, bookings, faults), and when someone last
        # left a room: a runner may take long strides through the night.
        self._activity: list[float] = []
        self._last_exit = start

    # -- time ----------------------------------------------------------------------------

    def next_time(self) -> float | None:
        """When the next thing happens (None: the run is over)."""
        if not self._started:
            return self.start
        return self._heap[0][0] if self._heap else None

    def advance(self, until: float) -> list[Output]:
        """Everything that happens up to `until`, in time order."""
        if not self._started:
            self._begin()
        while self._heap and self._heap[0][0] <= until:
            at, _, kind, a, b = heapq.heappop(self._heap)
            self.now = at
            self._handle(kind, a, b, at)
        self.now = max(self.now, min(until, self.end))
        out, self._out = self._out, []
        return out

    @property
    def finished(self) -> bool:
        return self._started and not self._heap

    def _at(self, at: float, kind: int, a: Any = None, b: Any = None) -> None:
        if at > self.end:
            return
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, a, b))
        if kind in _ACTIVITY:
            heapq.heappush(self._activity, at)

    def quiet_for(self, settled: float) -> float:
        """How long from now nothing involving people happens (0: something may): nobody
        is in, the last one left at least `settled` seconds ago, and no move, booking
        or fault is due before then. Devices keep reporting meanwhile."""
        if self.now - self._last_exit < settled or any(room.people for room in self.rooms.values()):
            return 0.0
        while self._activity and self._activity[0] <= self.now:
            heapq.heappop(self._activity)
        return (self._activity[0] if self._activity else self.end) - self.now

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.zone)

    def seconds_of_day(self, at: float) -> float:
        moment = self.local(at)
        return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6

    def _midnight(self, at: float) -> float:
        moment = self.local(at)
        return datetime(moment.year, moment.month, moment.day, tzinfo=self.zone).timestamp()

    # -- the start -----------------------------------------------------------------------

    def _begin(self) -> None:
        self._started = True
        start = self.start
        # Every device says it is online and what it sees, as after a power-up: spread
        # over the first half minute, as a real site's devices never speak at once.
        for room in self.rooms.values():
            for dev in room.devices.values():
                self._at(start + dev.rng.uniform(0, POWER_UP_SPREAD), POWER_UP, dev.sim.key)
                every = self._report_every(dev)
                if every is not None:
                    self._at(start + dev.rng.uniform(POWER_UP_SPREAD, every), REPORT, dev.sim.key)
                if dev.sim.battery:
                    # The first battery level within two minutes: the gateway then knows
                    # the device runs on battery before a mains timeout could call it silent.
                    self._at(start + dev.rng.uniform(POWER_UP_SPREAD, 120), BATTERY, dev.sim.key)
        midnight, day = self._midnight(start), 0
        while midnight < self.end:
            self._at(max(midnight, start), PLAN_DAY, day, midnight)
            day += 1
            midnight = self._midnight(midnight + 36 * 3600)
        first_minute = math.ceil(start / 60) * 60
        self._at(first_minute, MINUTE)
        for record in self._faults:
            if not record.injected:
                continue
            self._at(record.start, FAULT_START, record.index)
            if record.end is not None:
                self._at(record.end, FAULT_END, record.index)
        self._seq += 1
        heapq.heappush(self._heap, (self.end, self._seq, END, None, None))

    def _first_report(self, room: _Room, dev: _Device, at: float) -> None:
        kind = dev.sim.kind
        if kind == "pir":
            self._report(dev, {"occupancy": False}, at)
        elif kind == "radar":
            dev.presence = bool(room.people)
            self._report(dev, {"presence": dev.presence}, at)
        elif kind == "counter":
            self._report(dev, {"people": len(room.people)}, at)
        elif kind == "door":
            self._report(dev, {"contact": True}, at)
        elif kind == "env":
            self._report(dev, self._environment(room, at), at)
        elif kind == "light":
            self._report(dev, self._light_fields(dev), at)
        elif kind == "hvac":
            self._report(dev, self._hvac_fields(room, dev, at), at)
        elif kind == "lock":
            self._report(dev, {"state": "LOCK"}, at)

    def _report_every(self, dev: _Device) -> float | None:
        kind = dev.sim.kind
        if kind == "env":
            return self.physics.env.every
        if kind == "light":
            return self.physics.light.report_every
        if kind == "radar":
            return self.physics.radar.every
        if kind in ("counter", "hvac"):
            return self.physics.env.heartbeat
        return None  # battery devices report on change (and their battery level)

    # -- events --------------------------------------------------------------------------

    def _handle(self, kind: int, a: Any, b: Any, at: float) -> None:
        if kind == MOVE:
            self._move(a, b, at)
        elif kind == MOTION:
            self._motion(a, b, at)
        elif kind == MINUTE:
            if at >= self.end:
                return  # the run's last moment is no minute of it
            self._settle_all(at)
            self.truth.minute(at, self.rooms_people(), self._site_kwh())
            self._at(at + 60, MINUTE)
        elif kind == REPORT:
            self._periodic(self._devices[a], at)
        elif kind == BATTERY:
            self._battery(self._devices[a], at)
        elif kind == PIR_CLEAR:
            dev = self._devices[a]
            if dev.occupancy and not dev.stuck and at >= dev.detected_at + self.physics.pir.clear_after:
                dev.occupancy = False
                self._report(dev, {"occupancy": False}, at)
        elif kind == RADAR_CLEAR:
            dev = self._devices[a]
            if dev.presence and not dev.stuck and not self.rooms[dev.sim.room].people:
                dev.presence = False
                self._report(dev, {"presence": False}, at)
        elif kind == DOOR_CLOSE:
            dev = self._devices[a]
            dev.closing = False
            self._report(dev, {"contact": True}, at)
        elif kind == RELOCK:
            dev = self._devices[a]
            if not dev.locked:
                dev.locked = True
                self._report(dev, {"state": "LOCK"}, at)
        elif kind == BACK_ON:
            self._back_on(self._devices[a], at)
        elif kind == PLAN_DAY:
            self._plan_day(a, b, at)
        elif kind == BOOK:
            self._out.append(BookingRequest(at, a))
        elif kind == FAULT_START:
            self._fault_start(self._faults[a], at)
        elif kind == FAULT_END:
            self._fault_end(self._faults[a], at)
        elif kind == FAULT_TICK:
            self._fault_tick(self._faults[a], at)
        elif kind == POWER_UP:
            dev = self._devices[a]
            self._out.append(self._availability(dev, True, at))
            self._first_report(self.rooms[dev.sim.room], dev, at)
        elif kind == END:
            self._settle_all(at)
            self.truth.finish(at, self.rooms_people(), self._site_kwh())
            for room in self.rooms.values():
                lights = [dev.energy_kwh for dev in room.devices.values() if dev.sim.kind == "light"]
                if lights:
                    self.truth.room_kwh[room.sim.id] = sum(lights)

    def _plan_day(self, day: int, midnight: float, at: float) -> None:
        weekday = WEEKDAYS[self.local(midnight).weekday()]
        plan = self._planner.plan(day, weekday, midnight, random.Random(f"{self.seed}/day/{day}"))
        # A run that starts in the middle of a day: people already in place at its start.
        placed: dict[str, str | None] = {}
        for move_at, person, room in plan.moves:
            if move_at < at:
                placed[person] = room
            else:
                self._at(move_at, MOVE, person, room)
        for person, room in placed.items():
            self._move(person, room, at)
        for meeting in plan.meetings:
            if meeting.end <= at:
                continue
            self.truth.meeting(meeting)
            if meeting.booked and meeting.start > at:
                self._at(max(meeting.book_at, at), BOOK, meeting)

    # -- people --------------------------------------------------------------------------

    def rooms_people(self) -> list[int]:
        return [len(room.people) for room in self.rooms.values()]

    def _move(self, person: str, room_id: str | None, at: float) -> None:
        was = self._where.get(person)
        if was == room_id:
            return
        if was is not None:
            self._exit(self.rooms[was], person, at)
        self._where[person] = room_id
        if room_id is not None:
            self._enter(self.rooms[room_id], person, at)

    def _enter(self, room: _Room, person: str, at: float) -> None:
        self._settle(room, at)
        empty = not room.people
        room.people.add(person)
        self.truth.people(room.sim.id, at, len(room.people))
        for dev in room.devices.values():
            kind = dev.sim.kind
            if kind == "badge":
                badge = self._badges[_stable(person) % _BADGES]
                self._report(dev, {"access": "granted", "credential": badge}, at)
            elif kind == "lock" and dev.locked:
                dev.locked = False
                self._report(dev, {"state": "UNLOCK"}, at)
                self._at(at + dev.rng.uniform(5, 10), RELOCK, dev.sim.key)
            elif kind == "counter":
                self._report(dev, {"people": len(room.people), "entered": 1, "exited": 0}, at)
            elif kind == "door":
                self._door(dev, at)
            elif kind == "radar" and not dev.presence and not dev.stuck:
                dev.presence = True
                self._report(dev, {"presence": True}, at)
        self._movement(room, at)  # walking in
        if empty:
            self._switch_on_if_dark(room, at)
        self._schedule_motion(room, at)

    def _exit(self, room: _Room, person: str, at: float) -> None:
        self._settle(room, at)
        room.people.discard(person)
        self._last_exit = at
        self.truth.people(room.sim.id, at, len(room.people))
        for dev in room.devices.values():
            kind = dev.sim.kind
            if kind == "counter":
                self._report(dev, {"people": len(room.people), "entered": 0, "exited": 1}, at)
            elif kind == "door":
                self._door(dev, at)
            elif kind == "radar" and not room.people:
                self._at(at + self.physics.radar.clear_after, RADAR_CLEAR, dev.sim.key)
        self._movement(room, at)  # walking out
        if not room.people:
            lights = room.sim.of_kind("light")
            if lights and room.react.random() >= self.physics.light.forget_off:
                for sim in lights:
                    self._set_light(room.devices[sim.name], False, None, at)
        self._schedule_motion(room, at)

    def _door(self, dev: _Device, at: float) -> None:
        if not dev.closing:
            dev.closing = True
            self._report(dev, {"contact": False}, at)
            self._at(at + dev.rng.uniform(3, 8), DOOR_CLOSE, dev.sim.key)

    def _schedule_motion(self, room: _Room, at: float) -> None:
        """The room's next movement: people sitting still move now and then (a memoryless
        process at `n / moves_every`); a change of head count draws it anew."""
        room.motion_generation += 1
        if room.people:
            mean = self.physics.pir.moves_every / len(room.people)
            self._at(at + room.sense.expovariate(1 / mean), MOTION, room.sim.id, room.motion_generation)

    def _motion(self, room_id: str, generation: int, at: float) -> None:
        room = self.rooms[room_id]
        if generation != room.motion_generation or not room.people:
            return
        self._movement(room, at)
        self._schedule_motion(room, at)

    def _movement(self, room: _Room, at: float) -> None:
        """One movement in the room: one of its PIRs may catch it."""
        pirs = room.sim.of_kind("pir")
        if not pirs:
            return
        dev = room.devices[pirs[0].name if len(pirs) == 1 else room.sense.choice(pirs).name]
        caught = room.sense.random() >= self.physics.pir.miss_rate
        if not caught or dev.stuck or at < dev.blind_until:
            return
        dev.blind_until = at + self.physics.pir.blind_time
        dev.detected_at = at
        dev.occupancy = True
        self._report(dev, {"occupancy": True}, at)
        self._at(at + self.physics.pir.clear_after, PIR_CLEAR, dev.sim.key)

    # -- lights, HVAC, locks -------------------------------------------------------------

    def _daylight(self, room: _Room, at: float) -> float:
        midnight = self._midnight(at)
        sky = self._skies.get(midnight)
        if sky is None:
            rng = random.Random(f"{self.seed}/sky/{midnight}")
            sky = self._skies[midnight] = physics.Sky.draw(rng, self.physics.daylight.cloudiness)
        return physics.daylight_lux(self.seconds_of_day(at), sky, room.sim.windows, self.physics.daylight)

    def _switch_on_if_dark(self, room: _Room, at: float) -> None:
        lights = [room.devices[sim.name] for sim in room.sim.of_kind("light")]
        if not lights or any(dev.on for dev in lights):
            return
        if self._daylight(room, at) < self.physics.light.switch_on_below_lux:
            for dev in lights:
                self._set_light(dev, True, 254, at)

    def _back_on(self, dev: _Device, at: float) -> None:
        room = self.rooms[dev.sim.room]
        if room.people and not dev.on and self._daylight(room, at) < self.physics.light.switch_on_below_lux:
            self._set_light(dev, True, dev.brightness or 254, at)

    def _set_light(self, dev: _Device, on: bool, brightness: int | None, at: float) -> None:
        if dev.offline:
            return  # nobody can switch a light that lost its power or its network
        self._settle_light(dev, at)
        dev.on = on
        if brightness is not None and brightness > 0:
            dev.brightness = brightness
        # Reported even when nothing changed: a commanded device confirms what it was told.
        self._report(dev, self._light_fields(dev), at)

    def _light_fields(self, dev: _Device) -> dict[str, Any]:
        watts = round(physics.light_watts(dev.sim.watts, dev.on, dev.brightness), 2)
        # Brightness only while on: an OFF light with a level would read as half-lit.
        body: dict[str, Any] = {"state": "ON", "brightness": dev.brightness} if dev.on else {"state": "OFF"}
        return {**body, "power": watts, "energy": round(dev.energy_kwh, 5)}

    def _settle_light(self, dev: _Device, at: float) -> None:
        if at > dev.settled_at:
            watts = physics.light_watts(dev.sim.watts, dev.on, dev.brightness)
            dev.energy_kwh += watts * (at - dev.settled_at) / 3.6e6
            dev.settled_at = at

    def _hvac_fields(self, room: _Room, dev: _Device, at: float) -> dict[str, Any]:
        self._settle(room, at)
        return {"setpoint": dev.setpoint, "mode": dev.mode, "temperature": round(room.temperature, 1)}

    # -- commands from the gateway -------------------------------------------------------

    def command(self, topic: str, payload: bytes, at: float) -> list[Output]:
        """A command on a device's command topic: it obeys (in its dialect) and reports back."""
        sim = self.plan.by_command_topic.get(topic)
        if sim is None:
            return []
        dev = self._devices[sim.key]
        native = voices.command(sim.speaker, topic, payload)
        if native is None or dev.offline:
            return []
        at = max(at, self.now)
        room = self.rooms[sim.room]
        if sim.kind == "light":
            state, level = native.get("state"), native.get("brightness")
            level = (
                level
                if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 254
                else None
            )
            if state in ("ON", "OFF") or level is not None:
                on = state == "ON" if state in ("ON", "OFF") else level != 0
                self._set_light(dev, on, level, at)
                if not on and room.people:
                    # Switched off over someone's head: they get up and switch it back on.
                    back = self.physics.light.back_on_after
                    self._at(at + room.react.uniform(back.low, back.high), BACK_ON, sim.key)
        elif sim.kind == "hvac":
            if isinstance(native.get("setpoint"), int | float) and not isinstance(
                native.get("setpoint"), bool
            ):
                dev.setpoint = float(native["setpoint"])
            if isinstance(native.get("mode"), str):
                dev.mode = native["mode"]
            self._report(dev, self._hvac_fields(room, dev, at), at)
        elif sim.kind == "lock" and native.get("state") in ("LOCK", "UNLOCK"):
            dev.locked = native["state"] == "LOCK"
            self._report(dev, {"state": native["state"]}, at)
        out, self._out = self._out, []
        return out

    # -- periodic reports, physics -------------------------------------------------------

    def _periodic(self, dev: _Device, at: float) -> None:
        room = self.rooms[dev.sim.room]
        kind = dev.sim.kind
        every = self._report_every(dev)
        if every is not None:
            self._at(at + every, REPORT, dev.sim.key)
        if kind == "env":
            self._report(dev, self._environment(room, at), at)
        elif kind == "light":
            self._settle_light(dev, at)
            self._report(dev, self._light_fields(dev), at)
        elif kind == "radar":
            self._report(dev, {"presence": dev.presence}, at)
        elif kind == "counter":
            self._report(dev, {"people": len(room.people)}, at)
        elif kind == "hvac":
            self._report(dev, self._hvac_fields(room, dev, at), at)

    def _battery(self, dev: _Device, at: float) -> None:
        env = self.physics.env
        self._at(at + env.battery_every * dev.rng.uniform(0.9, 1.1), BATTERY, dev.sim.key)
        if dev.drain is None:
            dev.battery = max(
                0.0, dev.battery - dev.rng.uniform(0, env.drain_per_day * env.battery_every / 86_400)
            )
        self._report(dev, {"battery": round(dev.battery)}, at)

    def _environment(self, room: _Room, at: float) -> dict[str, Any]:
        self._settle(room, at)
        noise = room.sense.gauss
        lux = self._daylight(room, at)
        lights = room.sim.of_kind("light")
        for sim in lights:
            dev = room.devices[sim.name]
            if dev.on:
                lux += self.physics.light.lux / len(lights) * dev.brightness / 254
        return {
            "temperature": round(room.temperature + noise(0, 0.1), 1),
            "humidity": round(min(100.0, max(0.0, room.humidity + noise(0, 0.5))), 1),
            "co2": int(min(5000, max(300, room.co2 + noise(0, self.physics.co2.noise)))),
            "illuminance": int(max(0.0, lux + noise(0, 5))),
        }

    def _settle(self, room: _Room, at: float) -> None:
        seconds = at - room.settled_at
        if seconds <= 0:
            return
        n = len(room.people)
        room.co2 = physics.co2_after(room.co2, n, seconds, room.sim.volume_m3, self.physics.co2)
        hvac = room.sim.of_kind("hvac")
        setpoint = None
        if hvac:
            unit = room.devices[hvac[0].name]
            setpoint = None if unit.mode == "off" else unit.setpoint
        target = physics.temperature_target(setpoint, n)
        room.temperature = physics.lag(room.temperature, target, seconds, physics.TEMPERATURE_LAG_S)
        humidity = physics.humidity_target(n, room.sim.capacity)
        room.humidity = physics.lag(room.humidity, humidity, seconds, physics.TEMPERATURE_LAG_S)
        room.settled_at = at

    def _settle_all(self, at: float) -> None:
        for room in self.rooms.values():
            for dev in room.devices.values():
                if dev.sim.kind == "light":
                    self._settle_light(dev, at)

    def _site_kwh(self) -> float:
        return sum(dev.energy_kwh for dev in self._devices.values())

    # -- faults --------------------------------------------------------------------------

    def _fault_record(self, index: int, fault: Fault) -> FaultRecord:
        midnight = self._midnight(self.start)
        day_start = self._midnight(midnight + fault.day * 86_400 + 43_200)
        start = day_start + fault.at
        duration = getattr(fault, "for_", None)
        end = None if duration is None else start + duration
        device = getattr(fault, "device", None)
        return FaultRecord(index, fault.kind, device, start, end)

    def _fault_start(self, record: FaultRecord, at: float) -> None:
        fault = self.plan.scenario.faults[record.index]
        if isinstance(fault, BrokerRestart | GatewayRestart):
            self._out.append(Restart(at, "broker" if isinstance(fault, BrokerRestart) else "gateway", record))
            return
        dev = self._devices[record.device or ""]
        self._out.append(FaultMark(at, record, True))
        if isinstance(fault, DeviceOffline):
            if fault.lwt:
                self._out.append(self._availability(dev, False, at))
            dev.offline = True
        elif isinstance(fault, StuckSensor):
            dev.stuck = True
            self._fault_tick(record, at)
        elif isinstance(fault, Flood):
            self._fault_tick(record, at)
        elif isinstance(fault, SchemaDrift):
            dev.drift = fault
            self._repeat(dev, at)
        elif isinstance(fault, BatteryDrain):
            dev.drain = (dev.battery, min(fault.to, dev.battery), at, at + fault.for_)
            self._fault_tick(record, at)

    def _fault_tick(self, record: FaultRecord, at: float) -> None:
        fault = self.plan.scenario.faults[record.index]
        dev = self._devices[record.device or ""]
        if record.end is not None and at >= record.end:
            return
        if isinstance(fault, StuckSensor):
            field_name = "occupancy" if dev.sim.kind == "pir" else "presence"
            self._report(dev, {field_name: True}, at)
            self._at(at + max(self.physics.pir.blind_time, 10.0), FAULT_TICK, record.index)
        elif isinstance(fault, Flood):
            self._repeat(dev, at)
            self._at(at + 1.0 / fault.rate, FAULT_TICK, record.index)
        elif isinstance(fault, BatteryDrain) and dev.drain is not None:
            start_level, to, begun, ends = dev.drain
            dev.battery = round(start_level + (to - start_level) * min(1.0, (at - begun) / (ends - begun)), 1)
            self._report(dev, {"battery": round(dev.battery)}, at)
            self._at(at + 600.0, FAULT_TICK, record.index)

    def _fault_end(self, record: FaultRecord, at: float) -> None:
        fault = self.plan.scenario.faults[record.index]
        if isinstance(fault, BrokerRestart | GatewayRestart) or record.device is None:
            return
        dev = self._devices[record.device]
        room = self.rooms[dev.sim.room]
        self._out.append(FaultMark(at, record, False))
        if isinstance(fault, DeviceOffline):
            dev.offline = False
            self._out.append(self._availability(dev, True, at))
            if dev.sim.kind == "light":
                self._report(dev, self._light_fields(dev), at)
            else:
                self._first_report(room, dev, at)
        elif isinstance(fault, StuckSensor):
            dev.stuck = False
            if dev.sim.kind == "pir":
                dev.occupancy = False
                self._report(dev, {"occupancy": False}, at)
            else:
                dev.presence = bool(room.people)
                self._report(dev, {"presence": dev.presence}, at)
        elif isinstance(fault, SchemaDrift):
            dev.drift = None
            self._repeat(dev, at)
        elif isinstance(fault, BatteryDrain):
            dev.drain = None
            dev.battery = 100.0  # a new battery
            self._report(dev, {"battery": 100}, at)

    def _repeat(self, dev: _Device, at: float) -> None:
        """The device says again what it said last (a flood, a firmware's first report)."""
        fields = dict(dev.last) or {"battery": round(dev.battery)}
        self._report(dev, fields, at)

    # -- messages ------------------------------------------------------------------------

    def _availability(self, dev: _Device, online: bool, at: float) -> Publish:
        topic, payload = voices.availability(dev.sim.speaker, online)
        return Publish(at, topic, payload, True, None)

    def _report(self, dev: _Device, fields: dict[str, Any], at: float) -> None:
        """The device reports `fields` at `at`: in its dialect, stamped with simulated time."""
        dev.last = {**dev.last, **{k: v for k, v in fields.items() if k not in ("entered", "exited")}}
        if dev.offline:
            return
        if dev.drift is not None:
            fields = {dev.drift.rename.get(k, k): v for k, v in fields.items()} | dev.drift.add
        ts = round(at, 3)
        payload = orjson.dumps({**fields, "ts": ts})
        speaker = dev.sim.speaker
        carries_ts = speaker.dialect not in ("homie", "shelly", "tasmota")
        for topic, body in voices.report(speaker, payload):
            self._out.append(Publish(at, topic, body, voices.retained(topic), ts if carries_ts else None))


def _stable(text: str) -> int:
    """A hash of a string that is the same in every process (unlike `hash`)."""
    value = 0
    for char in text:
        value = (value * 31 + ord(char)) & 0xFFFFFFFF
    return value
