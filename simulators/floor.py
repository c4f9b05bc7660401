"""A virtual office floor: rooms, native-dialect devices and the people using them.

Pure and clock-injected: every method takes `now` (epoch seconds); nothing here reads
the clock or touches the network, so a test runs a working day in milliseconds and
`publisher.py` replays the same floor in real time. People live in *simulated* time
(`time_scale` simulated seconds per real second); message `ts` values are real time,
because that is the clock the gateway runs on.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal

import orjson

Message = tuple[str, bytes]
RoomType = Literal["meeting", "office", "open", "restroom"]

_STARS = (
    "orion",
    "lyra",
    "vega",
    "draco",
    "cygnus",
    "auriga",
    "perseus",
    "andromeda",
    "pegasus",
    "phoenix",
    "hydra",
    "carina",
    "aquila",
    "corvus",
    "lupus",
    "volans",
    "sirius",
    "rigel",
    "altair",
    "deneb",
    "antares",
    "polaris",
    "capella",
    "castor",
    "pollux",
    "spica",
    "mira",
    "electra",
    "maia",
    "atlas",
    "tucana",
    "pavo",
    "fornax",
    "crux",
    "lepus",
    "musca",
    "norma",
    "pictor",
    "vela",
    "pyxis",
    "ara",
    "columba",
    "dorado",
    "indus",
    "octans",
    "reticulum",
    "sculptor",
    "triangulum",
)
_STARS_PER_FLOOR = 6  # floors 0-7 get disjoint star names; extra rooms carry a floor suffix
_BATTERY_KINDS = frozenset({"pir", "env", "door", "lock"})  # the rest are mains powered
_PIR_COOLDOWN = 90.0  # s without motion before a PIR reports occupancy false
_PIR_EVERY, _ENV_EVERY, _LIGHT_EVERY, _BATTERY_EVERY = 60.0, 300.0, 300.0, 3600.0
_IDLE_HEARTBEAT = 600.0  # a vacant PIR still says so now and then, or it looks dead
_OFF_HEARTBEAT = 1800.0


@dataclass(frozen=True, slots=True)
class Behaviour:
    group: tuple[int, int]  # people per arrival; the upper bound is clipped to capacity
    stay: tuple[float, float]  # simulated seconds a group stays
    gap: tuple[float, float]  # simulated seconds until the next arrival
    concurrent: bool  # open areas take walk-ins; meeting rooms host one group at a time
    co2_full: float  # ppm above outdoor air with the room full (ventilation quality)


_BEHAVIOUR = MappingProxyType(
    {
        "meeting": Behaviour((2, 16), (1800, 3600), (300, 2700), False, 900.0),
        "office": Behaviour((1, 2), (1200, 5400), (300, 2400), False, 700.0),
        "open": Behaviour((1, 3), (900, 7200), (60, 600), True, 500.0),
        "restroom": Behaviour((1, 1), (90, 420), (240, 1200), True, 300.0),
    }
)


@dataclass(frozen=True, slots=True)
class RoomSpec:
    id: str
    name: str
    type: RoomType
    capacity: int
    features: tuple[str, ...]
    bookable: bool
    access_control: bool  # badge reader + lock on the door
    idle_factor: float  # >1 stretches the gaps, so some rooms stay empty for a while
    lamp_watts: float
    daylight_lux: float  # illuminance at noon with the lights off

    @property
    def kinds(self) -> tuple[str, ...]:
        kinds = ["pir", "env", "light"]
        if self.type == "meeting":
            kinds += ["counter", "door"]
        if self.access_control:
            kinds += ["badge", "lock"]
        return tuple(kinds)


@dataclass(slots=True)
class _RoomState:
    people: int = 0
    vacant_since: float = 0.0
    pir: bool = False
    pir_sent_at: float = 0.0
    light_on: bool = False
    brightness: int = 0
    light_sent_at: float = 0.0
    energy_kwh: float = 0.0
    co2: float = 420.0
    temperature: float = 21.0
    humidity: float = 38.0
    settled_at: float = 0.0


def layout(floor: str, count: int, rng: random.Random) -> tuple[RoomSpec, ...]:
    """Mix of a typical floor: ~60% meeting rooms, offices, one open area, one restroom."""
    special = [t for t, n in (("open", 3), ("restroom", 4)) if count >= n]
    meetings = max(1, round((count - len(special)) * 0.6))
    offices = count - len(special) - meetings
    offset = (int(floor) if floor.isdigit() else 0) * _STARS_PER_FLOOR
    rooms: list[RoomSpec] = []
    for i in range(meetings):
        star = _STARS[(offset + i) % len(_STARS)]
        cap = rng.choice((4, 4, 6, 6, 8, 10, 12, 16))
        feats = ("display",) + (("vc",) if cap >= 10 or rng.random() < 0.6 else ())
        feats += ("whiteboard",) if rng.random() < 0.5 else ()
        rid = star if i < _STARS_PER_FLOOR else f"{star}-{floor}"
        rooms.append(_spec(rid, star.capitalize(), "meeting", cap, feats, rng, 30 + 4 * cap))
    for i in range(offices):
        feats = ("display",) if rng.random() < 0.5 else ()
        no = f"{floor}{i + 1:02d}"
        rooms.append(
            _spec(f"office-{no}", f"Office {no}", "office", rng.choice((1, 1, 2)), feats, rng, 25.0)
        )
    if "open" in special:
        rooms.append(
            _spec(
                f"open-{floor}",
                f"Open area {floor}",
                "open",
                rng.randint(16, 30),
                ("whiteboard",),
                rng,
                180.0,
            )
        )
    if "restroom" in special:
        rooms.append(_spec(f"restroom-{floor}", f"Restroom {floor}", "restroom", 4, (), rng, 20.0))
    # Badge + lock: the first office and, on a larger floor, the biggest meeting room.
    guarded = {next((r.id for r in rooms if r.type == "office"), rooms[0].id)}
    if count >= 8:
        guarded.add(max(rooms[:meetings], key=lambda r: r.capacity).id)
    return tuple(replace(r, access_control=True) if r.id in guarded else r for r in rooms)


def _spec(
    rid: str,
    name: str,
    rtype: RoomType,
    cap: int,
    feats: tuple[str, ...],
    rng: random.Random,
    watts: float,
) -> RoomSpec:
    daylight = rng.uniform(0, 20) if rtype == "restroom" else rng.uniform(80, 700)
    return RoomSpec(
        rid,
        name,
        rtype,
        cap,
        feats,
        rtype == "meeting",
        False,
        rng.choice((1.0, 1.0, 1.5, 3.0)),
        watts,
        daylight,
    )


class VirtualFloor:
    """One floor of rooms whose devices report what simulated people do."""

    def __init__(
        self,
        building: str = "hq",
        floor: str = "2",
        rooms: int = 12,
        seed: int = 1,
        time_scale: float = 1.0,
        prefix: str = "office",
        start_hour: float | None = 9.0,
    ) -> None:
        if rooms < 1 or time_scale <= 0:
            raise ValueError("rooms must be >= 1 and time_scale > 0")
        self.building, self.floor, self.prefix = building, str(floor), prefix
        self.time_scale = time_scale
        # Fixed start hour by default: a demo started at 3 a.m. still shows a busy office.
        self._start_hour = start_hour
        self._rng = random.Random(seed)
        self.rooms = layout(self.floor, rooms, self._rng)
        self._spec = {r.id: r for r in self.rooms}
        self._state = {r.id: _RoomState() for r in self.rooms}
        self._battery = {
            f"{r.id}-{k}": self._rng.uniform(55, 100)
            for r in self.rooms
            for k in r.kinds
            if k in _BATTERY_KINDS
        }
        self._staff = [f"{self._rng.getrandbits(56):014X}" for _ in range(24)]
        self._queue: list[tuple[float, int, str, str, int]] = []
        self._seq = 0
        self._t0: float | None = None
        self._day0 = 0.0

    # -- public API ---------------------------------------------------------------------
    def site_rooms(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "name": r.name,
                "building": self.building,
                "floor": self.floor,
                "type": r.type,
                "capacity": r.capacity,
                "features": list(r.features),
                "bookable": r.bookable,
            }
            for r in self.rooms
        ]

    def site_devices(self) -> list[dict[str, Any]]:
        return [{"id": f"{r.id}-{k}", "room": r.id} for r in self.rooms for k in r.kinds]

    def topic(self, room: str, device: str) -> str:
        return f"{self.prefix}/{self.building}/{self.floor}/{room}/{device}"

    def occupied_rooms(self) -> set[str]:
        return {rid for rid, s in self._state.items() if s.people > 0}

    def offline_messages(self) -> list[Message]:
        return [
            (self.topic(d["room"], d["id"]) + "/availability", b"offline")
            for d in self.site_devices()
        ]

    def step(self, now: float) -> list[Message]:
        out: list[Message] = []
        if self._t0 is None:
            out += self._start(now)
        until = self._sim(now)
        while self._queue and self._queue[0][0] <= until:
            at, _, kind, key, n = heapq.heappop(self._queue)
            out += self._handle(kind, key, n, at)
        return out

    def command(self, topic: str, payload: bytes, now: float) -> list[Message]:
        """Apply a gateway `/set` command; the device confirms by reporting its new state."""
        parts = topic.split("/")
        if (
            self._t0 is None
            or len(parts) != 6
            or parts[5] != "set"
            or topic != self.topic(parts[3], parts[4]) + "/set"
            or parts[3] not in self._spec
        ):
            return []
        try:
            cmd = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        kind, at = parts[4].removeprefix(parts[3] + "-"), max(self._sim(now), 0.0)
        if not isinstance(cmd, dict) or kind not in self._spec[parts[3]].kinds:
            return []
        s, level, state = self._state[parts[3]], cmd.get("brightness"), cmd.get("state")
        if kind == "light" and (state in ("ON", "OFF") or type(level) is int and 0 <= level <= 254):
            self._settle(parts[3], at)
            on = state == "ON" if state in ("ON", "OFF") else level != 0
            bright = level if type(level) is int and level > 0 else s.brightness or 254
            return [self._set_light(parts[3], on, bright, at)]
        if kind == "lock" and state in ("LOCK", "UNLOCK"):
            return [self._msg(parts[3], "lock", {"state": state}, at)]
        return []

    # -- time ---------------------------------------------------------------------------
    def _sim(self, now: float) -> float:
        return (now - (self._t0 or now)) * self.time_scale

    def _hour(self, at: float) -> float:
        return ((self._day0 + at) / 3600.0) % 24.0

    def _schedule(self, at: float, kind: str, key: str, n: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, key, n))

    def _schedule_arrival(self, rid: str, at: float) -> None:
        b, r = _BEHAVIOUR[self._spec[rid].type], self._rng
        t = at + r.uniform(*b.gap) * self._spec[rid].idle_factor
        if not 7.5 <= self._hour(t) < 19.0:  # nobody comes in at night: wait for 8:00-9:30
            t += ((8.0 - self._hour(t)) % 24.0) * 3600.0 + r.uniform(0, 5400)
        self._schedule(t, "arrive", rid)

    # -- events -------------------------------------------------------------------------
    def _start(self, now: float) -> list[Message]:
        self._t0 = now
        hour = (now % 86400.0) / 3600.0 if self._start_hour is None else self._start_hour
        self._day0 = hour * 3600.0
        out: list[Message] = [
            (self.topic(d["room"], d["id"]) + "/availability", b"online")
            for d in self.site_devices()
        ]
        rng = self._rng
        for r in self.rooms:
            b = _BEHAVIOUR[r.type]
            self._schedule(rng.uniform(0, b.gap[1] * r.idle_factor), "arrive", r.id)
            for kind, every in (("pir", _PIR_EVERY), ("env", _ENV_EVERY), ("light", _LIGHT_EVERY)):
                self._schedule(rng.uniform(0, every), kind, r.id)
            out.append(self._msg(r.id, "pir", {"occupancy": False}, 0.0))
            out.append(self._env(r.id, 0.0))
            out.append(self._set_light(r.id, False, 0, 0.0))
            if r.type == "meeting":
                out.append(
                    self._msg(r.id, "counter", {"people": 0, "entered": 0, "exited": 0}, 0.0)
                )
                out.append(self._msg(r.id, "door", {"contact": True}, 0.0))
            if r.access_control:
                out.append(self._msg(r.id, "lock", {"state": "LOCK"}, 0.0))
        for dev in self._battery:
            self._schedule(rng.uniform(0, _BATTERY_EVERY), "battery", dev)
        return out

    def _handle(self, kind: str, key: str, n: int, at: float) -> list[Message]:
        s, rng = self._state.get(key), self._rng
        if kind == "arrive":
            return self._arrive(key, at)
        if kind == "leave":
            return self._leave(key, n, at)
        if kind == "battery":
            self._battery[key] = max(0.0, self._battery[key] - rng.uniform(0.01, 0.08))
            self._schedule(at + _BATTERY_EVERY, kind, key)
            room = key.rsplit("-", 1)[0]
            return [
                self._msg(room, key.rsplit("-", 1)[1], {"battery": round(self._battery[key])}, at)
            ]
        assert s is not None
        if kind == "pir":
            self._schedule(at + _PIR_EVERY, kind, key)
            # People sitting still do not retrigger the sensor every minute.
            if s.people > 0 and rng.random() < 0.85:
                return [self._pir(key, True, at)]
            if s.people == 0 and not s.pir and at - s.pir_sent_at >= _IDLE_HEARTBEAT:
                return [self._pir(key, False, at)]
        elif kind == "pir_clear" and s.people == 0 and s.pir:
            if at >= s.vacant_since + _PIR_COOLDOWN - 1e-6:
                return [self._pir(key, False, at)]
        elif kind == "env":
            self._schedule(at + _ENV_EVERY, kind, key)
            return [self._env(key, at)]
        elif kind == "light":
            self._schedule(at + _LIGHT_EVERY, kind, key)
            if s.light_on or at - s.light_sent_at >= _OFF_HEARTBEAT:
                return [self._set_light(key, s.light_on, s.brightness, at)]
        elif kind == "door_close":
            return [self._msg(key, "door", {"contact": True}, at)]
        elif kind == "relock":
            return [self._msg(key, "lock", {"state": "LOCK"}, at)]
        return []

    def _arrive(self, rid: str, at: float) -> list[Message]:
        spec, s, rng = self._spec[rid], self._state[rid], self._rng
        b = _BEHAVIOUR[spec.type]
        if b.concurrent:
            self._schedule_arrival(rid, at)
        n = rng.randint(b.group[0], max(b.group[0], min(b.group[1], spec.capacity)))
        n = min(n, spec.capacity - s.people)
        if n <= 0:  # full: walk-ins turn away
            return []
        out = []
        if spec.access_control:
            if rng.random() < 0.08:  # a visitor tries their own badge first
                out.append(
                    self._msg(
                        rid,
                        "badge",
                        {"access": "denied", "credential": f"{rng.getrandbits(56):014X}"},
                        at,
                    )
                )
            out.append(
                self._msg(
                    rid, "badge", {"access": "granted", "credential": rng.choice(self._staff)}, at
                )
            )
            out.append(self._msg(rid, "lock", {"state": "UNLOCK"}, at))
            self._schedule(at + rng.uniform(5, 10), "relock", rid)
        self._settle(rid, at)
        was_empty, s.people = s.people == 0, s.people + n
        out += self._door(rid, at, {"people": s.people, "entered": n, "exited": 0})
        out.append(self._pir(rid, True, at))
        daylight = self._daylight(spec, at)
        if was_empty and not s.light_on and (daylight < 300 or rng.random() < 0.7):
            level = 254 if spec.type in ("open", "restroom") else rng.choice((180, 220, 254))
            out.append(self._set_light(rid, True, level, at))
        self._schedule(at + rng.uniform(*b.stay), "leave", rid, n)
        return out

    def _leave(self, rid: str, n: int, at: float) -> list[Message]:
        s, b = self._state[rid], _BEHAVIOUR[self._spec[rid].type]
        self._settle(rid, at)
        n = min(n, s.people)
        s.people -= n
        out = self._door(rid, at, {"people": s.people, "entered": 0, "exited": n})
        if s.people == 0:
            s.vacant_since = at
            self._schedule(at + _PIR_COOLDOWN, "pir_clear", rid)
            if s.light_on and self._rng.random() < 0.8:  # and one time in five, they forget
                out.append(self._set_light(rid, False, s.brightness, at))
            if not b.concurrent:
                self._schedule_arrival(rid, at)
        return out

    # -- devices ------------------------------------------------------------------------
    def _msg(self, rid: str, kind: str, payload: dict[str, Any], at: float) -> Message:
        payload["ts"] = round((self._t0 or 0.0) + at / self.time_scale, 3)
        return self.topic(rid, f"{rid}-{kind}"), orjson.dumps(payload)

    def _door(self, rid: str, at: float, count: dict[str, int]) -> list[Message]:
        if self._spec[rid].type != "meeting":
            return []
        self._schedule(at + self._rng.uniform(3, 12), "door_close", rid)
        return [
            self._msg(rid, "door", {"contact": False}, at),
            self._msg(rid, "counter", count, at),
        ]

    def _pir(self, rid: str, occupied: bool, at: float) -> Message:
        s = self._state[rid]
        s.pir, s.pir_sent_at = occupied, at
        return self._msg(rid, "pir", {"occupancy": occupied}, at)

    def _set_light(self, rid: str, on: bool, level: int, at: float) -> Message:
        s, spec = self._state[rid], self._spec[rid]
        self._settle(rid, at)
        s.light_on, s.brightness, s.light_sent_at = on, level if on else s.brightness, at
        # Brightness only while on: an OFF light with a level would read as half-lit.
        body: dict[str, Any] = {"state": "ON", "brightness": level} if on else {"state": "OFF"}
        power = spec.lamp_watts * level / 254 if on else 0.0
        return self._msg(
            rid, "light", body | {"power": round(power, 1), "energy": round(s.energy_kwh, 4)}, at
        )

    def _daylight(self, spec: RoomSpec, at: float) -> float:
        return max(0.0, math.sin(math.pi * (self._hour(at) - 6.0) / 14.0)) * spec.daylight_lux

    def _env(self, rid: str, at: float) -> Message:
        self._settle(rid, at)
        s, spec, g = self._state[rid], self._spec[rid], self._rng.gauss
        lux = self._daylight(spec, at) + (s.brightness / 254 * 450 if s.light_on else 0.0)
        return self._msg(
            rid,
            "env",
            {
                "temperature": round(s.temperature + g(0, 0.1), 1),
                "humidity": round(min(100.0, max(0.0, s.humidity + g(0, 0.5))), 1),
                "co2": int(min(3000, max(350, s.co2 + g(0, 8)))),
                "illuminance": int(max(0.0, lux + g(0, 5))),
            },
            at,
        )

    def _settle(self, rid: str, at: float) -> None:
        """Advance the room's air and energy meter to `at` (first-order lag to a target)."""
        s, spec = self._state[rid], self._spec[rid]
        dt = at - s.settled_at
        if dt <= 0:
            return
        load = s.people / spec.capacity
        co2_target = 420.0 + _BEHAVIOUR[spec.type].co2_full * load
        s.co2 += (co2_target - s.co2) * (1 - math.exp(-dt / 900.0))
        k = 1 - math.exp(-dt / 1800.0)
        s.temperature += (21.0 + 1.8 * load - s.temperature) * k
        s.humidity += (38.0 + 8.0 * load - s.humidity) * k
        if s.light_on:
            s.energy_kwh += spec.lamp_watts * s.brightness / 254 * dt / 3.6e6
        s.settled_at = at
