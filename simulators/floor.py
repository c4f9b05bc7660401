"""A virtual office floor: rooms, devices and the people using them.

Pure and clock-injected: every method takes `now` (epoch seconds); nothing here reads
the clock or touches the network, so a test runs a working day in milliseconds and
`publisher.py` replays the same floor in real time. People live in *simulated* time
(`time_scale` simulated seconds per real second, starting at `start_hour`); message
`ts` values are real time, because that is the clock the gateway runs on.

Events sit in one heap ordered by simulated time, and every random draw happens in an
event handler, so the message sequence for a seed does not depend on how often
`step` is called.

Devices speak native by default; with `dialects="mixed"` a fixed share of them speak
Zigbee2MQTT, Tasmota or Shelly instead (`dialect_devices.py`): the floor still thinks
in native messages and has them translated on the way out, so the story is the same
(a room with a Shelly H&T has its temperature and humidity from it, a device of its
own, and the rest from its air sensor).
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from simulators import dialect_devices
from simulators.dialect_devices import Message
from simulators.rooms import BEHAVIOUR, RoomSpec, layout

__all__ = ["Message", "VirtualFloor"]

_BATTERY_KINDS = frozenset({"pir", "env", "door", "lock"})  # the rest are mains powered
_PIR_COOLDOWN = 90.0  # simulated s without motion before a PIR reports occupancy false
# Periodic reports, simulated seconds; battery levels are jittered so they do not line up.
_EVERY = MappingProxyType({"pir": 60.0, "env": 300.0, "light": 300.0})
_BATTERY_EVERY = 3600.0
_IDLE_HEARTBEAT = 600.0  # quiet sensors still report now and then, or they look dead
_OFF_HEARTBEAT = 1800.0


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
        start_hour: float | None = 9.0,  # None: follow the UTC hour of the first step
        dialects: str = "native",  # or "mixed": some devices speak Zigbee2MQTT, Tasmota or Shelly
        discovery_prefix: str = "homeassistant",  # where an announced device announces itself
    ) -> None:
        if rooms < 1 or time_scale <= 0:
            raise ValueError("rooms must be >= 1 and time_scale > 0")
        self.building, self.floor, self.prefix = building, str(floor), prefix
        self.discovery_prefix = discovery_prefix
        self.time_scale = time_scale
        # A fixed start hour by default: a demo started at 3 a.m. still shows a busy office.
        self._start_hour = start_hour
        self._rng = rng = random.Random(seed)
        self.rooms: tuple[RoomSpec, ...] = layout(self.floor, rooms, rng)
        self._spec = {r.id: r for r in self.rooms}
        self._state = {r.id: _RoomState() for r in self.rooms}
        self._devices = {f"{r.id}-{k}": (r.id, k) for r in self.rooms for k in r.kinds}
        self._speakers = dialect_devices.speakers(
            dialects, building, self.floor, [(r.id, r.kinds) for r in self.rooms], self.topic
        )
        self._mixed = any(s.dialect != "native" for s in self._speakers.values())
        self._companions = dialect_devices.companions(self._speakers)
        self._by_native = {s.native_topic: s for s in self._speakers.values()}
        self._by_command = {t: s for s in self._speakers.values() for t in s.command_topics()}
        self._battery = {
            d: rng.uniform(55, 100) for d, (_, k) in self._devices.items() if k in _BATTERY_KINDS
        }
        self._staff = [f"{rng.getrandbits(56):014X}" for _ in range(24)]  # badge UIDs
        self._queue: list[tuple[float, int, str, str, int]] = []  # (at, seq, kind, key, n)
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
        """The devices the site config lists (those that announce themselves are not),
        with the companions some of them have (a Shelly H&T next to an air sensor)."""
        out = []
        for dev, (rid, _) in self._devices.items():
            if not self._speakers[dev].announced:
                out.append({"id": dev, "room": rid, **self._speakers[dev].site_fields()})
            if dev in self._companions:
                companion = self._companions[dev]
                out.append({"id": companion.device, "room": rid, **companion.site_fields()})
        return out

    def announced_devices(self) -> list[str]:
        """Ids of the devices that announce themselves (as the floor knows them)."""
        return [dev for dev in self._devices if self._speakers[dev].announced]

    def announcements(self) -> list[Message]:
        """Discovery configs of the devices that announce themselves (retained; publish
        them before the first step)."""
        return [
            message
            for dev, (rid, _) in self._devices.items()
            if self._speakers[dev].announced
            for message in dialect_devices.announcements(self._speakers[dev], self.discovery_prefix, rid)
        ]

    def command_topics(self) -> list[str]:
        """Topic filters the devices take commands on (native `/set` and each dialect's own)."""
        native = f"{self.prefix}/{self.building}/{self.floor}/+/+/set"
        return [native, *(t for t, s in self._by_command.items() if s.dialect != "native")]

    def topic(self, room: str, device: str) -> str:
        return f"{self.prefix}/{self.building}/{self.floor}/{room}/{device}"

    def occupied_rooms(self) -> set[str]:
        return {rid for rid, s in self._state.items() if s.people > 0}

    def availability_messages(self, status: str) -> list[Message]:
        """Every device's availability, `status` "online" or "offline", in its dialect."""
        online = status == "online"
        return [
            dialect_devices.availability(speaker, online)
            for host in self._speakers.values()
            for speaker in (host, *((host.companion,) if host.companion is not None else ()))
        ]

    def step(self, now: float) -> list[Message]:
        """Messages due since the last step (the first step announces and reports every device)."""
        first = self._t0 is None
        out = self._start(now) if first else []
        until = self._sim(now)
        while self._queue and self._queue[0][0] <= until:
            at, _, kind, key, n = heapq.heappop(self._queue)
            out += self._handle(kind, key, n, at)
        return (self.availability_messages("online") if first else []) + self._say(out)

    def command(self, topic: str, payload: bytes, now: float) -> list[Message]:
        """Apply a gateway command on one of `command_topics()`, in the device's dialect;
        the device confirms by reporting its new state."""
        speaker = self._by_command.get(topic)
        if self._t0 is None or speaker is None:
            return []
        cmd = dialect_devices.command(speaker, topic, payload)
        return [] if cmd is None else self._say(self._obey(speaker.device, cmd, now))

    def _obey(self, dev: str, cmd: dict[str, Any], now: float) -> list[Message]:
        rid, kind = self._devices[dev]
        at, s = max(self._sim(now), 0.0), self._state[rid]
        state, level = cmd.get("state"), cmd.get("brightness")
        level = level if type(level) is int and 0 <= level <= 254 else None
        if kind == "light" and (state in ("ON", "OFF") or level is not None):
            on = state == "ON" if state in ("ON", "OFF") else level != 0
            return [self._light(rid, on, level or s.brightness or 254, at)]
        if kind == "lock" and state in ("LOCK", "UNLOCK"):
            return [self._msg(rid, "lock", {"state": state}, at)]
        return []

    # -- time ---------------------------------------------------------------------------
    def _sim(self, now: float) -> float:
        return 0.0 if self._t0 is None else (now - self._t0) * self.time_scale

    def _hour(self, at: float) -> float:
        return ((self._day0 + at) / 3600.0) % 24.0

    def _schedule(self, at: float, kind: str, key: str, n: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, key, n))

    def _schedule_arrival(self, rid: str, at: float, first: bool = False) -> None:
        spec, rng = self._spec[rid], self._rng
        lo, hi = BEHAVIOUR[spec.type].gap
        t = at + rng.uniform(0 if first else lo, hi) * spec.idle_factor
        if first and rng.random() < 0.35:  # some rooms fill at once: a live floor from 9:00
            t /= 10
        if not 7.5 <= self._hour(t) < 19.0:  # nobody comes in at night: wait for 8:00-9:30
            t += ((8.0 - self._hour(t)) % 24.0) * 3600.0 + rng.uniform(0, 5400)
        self._schedule(t, "arrive", rid)

    # -- events -------------------------------------------------------------------------
    def _start(self, now: float) -> list[Message]:
        self._t0, rng = now, self._rng
        self._day0 = 3600.0 * (self._start_hour if self._start_hour is not None else now / 3600)
        out: list[Message] = []
        for r in self.rooms:
            self._schedule_arrival(r.id, 0.0, first=True)
            for kind, every in _EVERY.items():
                self._schedule(rng.uniform(0, every), kind, r.id)
            out += [
                self._pir(r.id, False, 0.0),
                self._env(r.id, 0.0),
                self._light(r.id, False, 0, 0.0),
            ]
            if r.type == "meeting":
                out.append(self._msg(r.id, "counter", {"people": 0, "entered": 0, "exited": 0}, 0))
                out.append(self._msg(r.id, "door", {"contact": True}, 0.0))
            if r.access_control:
                out.append(self._msg(r.id, "lock", {"state": "LOCK"}, 0.0))
        for dev in self._battery:  # first battery report within the first simulated minute
            self._schedule(rng.uniform(0, 60), "battery", dev)
        return out

    def _handle(self, kind: str, key: str, n: int, at: float) -> list[Message]:
        if kind == "battery":
            self._schedule(at + _BATTERY_EVERY * self._rng.uniform(0.9, 1.1), kind, key)
            level = self._battery[key] = max(0.0, self._battery[key] - self._rng.uniform(0, 0.1))
            rid, dev_kind = self._devices[key]
            return [self._msg(rid, dev_kind, {"battery": round(level)}, at)]
        s = self._state[key]
        if kind in _EVERY:
            self._schedule(at + _EVERY[kind], kind, key)
        if kind == "arrive":
            return self._arrive(key, at)
        if kind == "leave":
            return self._leave(key, n, at)
        if kind == "env":
            return [self._env(key, at)]
        if kind == "pir" and s.people > 0:
            # People sitting still do not retrigger the sensor every minute.
            return [self._pir(key, True, at)] if self._rng.random() < 0.85 else []
        if kind == "pir" and not s.pir and at - s.pir_sent_at >= _IDLE_HEARTBEAT:
            return [self._pir(key, False, at)]
        if kind == "pir_clear" and s.people == 0 and s.pir:
            # A clear scheduled by an earlier departure must not cut a later cooldown short.
            return [self._pir(key, False, at)] if at >= s.vacant_since + _PIR_COOLDOWN else []
        if kind == "light" and (s.light_on or at - s.light_sent_at >= _OFF_HEARTBEAT):
            return [self._light(key, s.light_on, s.brightness, at)]
        if kind == "door_close":
            return [self._msg(key, "door", {"contact": True}, at)]
        if kind == "relock":
            return [self._msg(key, "lock", {"state": "LOCK"}, at)]
        return []

    def _arrive(self, rid: str, at: float) -> list[Message]:
        spec, s, rng = self._spec[rid], self._state[rid], self._rng
        b = BEHAVIOUR[spec.type]
        if b.concurrent:
            self._schedule_arrival(rid, at)
        n = rng.randint(b.group[0], max(b.group[0], min(b.group[1], spec.capacity)))
        n = min(n, spec.capacity - s.people)
        if n <= 0:  # full: walk-ins turn away
            return []
        out = []
        if spec.access_control:
            if rng.random() < 0.08:  # a visitor tries their own badge first
                badge = f"{rng.getrandbits(56):014X}"
                out.append(self._msg(rid, "badge", {"access": "denied", "credential": badge}, at))
            badge = rng.choice(self._staff)
            out.append(self._msg(rid, "badge", {"access": "granted", "credential": badge}, at))
            out.append(self._msg(rid, "lock", {"state": "UNLOCK"}, at))
            self._schedule(at + rng.uniform(5, 10), "relock", rid)
        self._settle(rid, at)
        was_empty, s.people = s.people == 0, s.people + n
        out += self._door(rid, at, {"people": s.people, "entered": n, "exited": 0})
        out.append(self._pir(rid, True, at))
        if was_empty and not s.light_on and (self._daylight(spec, at) < 300 or rng.random() < 0.7):
            level = 254 if spec.type in ("open", "restroom") else rng.choice((180, 220, 254))
            out.append(self._light(rid, True, level, at))
        self._schedule(at + rng.uniform(*b.stay), "leave", rid, n)
        return out

    def _leave(self, rid: str, n: int, at: float) -> list[Message]:
        s = self._state[rid]
        self._settle(rid, at)
        n = min(n, s.people)
        s.people -= n
        out = self._door(rid, at, {"people": s.people, "entered": 0, "exited": n})
        if s.people == 0:
            s.vacant_since = at
            self._schedule(at + _PIR_COOLDOWN, "pir_clear", rid)
            if s.light_on and self._rng.random() < 0.8:  # one time in five, they forget
                out.append(self._light(rid, False, s.brightness, at))
            if not BEHAVIOUR[self._spec[rid].type].concurrent:
                self._schedule_arrival(rid, at)
        return out

    # -- devices ------------------------------------------------------------------------
    def _say(self, messages: list[Message]) -> list[Message]:
        """Native reports as each device's dialect says them."""
        if not self._mixed:
            return messages
        speak = dialect_devices.report
        return [m for topic, payload in messages for m in speak(self._by_native[topic], payload)]

    def _msg(self, rid: str, kind: str, payload: dict[str, Any], at: float) -> Message:
        ts = round((self._t0 or 0.0) + at / self.time_scale, 3)
        return self.topic(rid, f"{rid}-{kind}"), orjson.dumps({**payload, "ts": ts})

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

    def _light(self, rid: str, on: bool, level: int, at: float) -> Message:
        s, spec = self._state[rid], self._spec[rid]
        self._settle(rid, at)
        s.light_on, s.light_sent_at = on, at
        s.brightness = level if on else s.brightness
        watts = round(spec.lamp_watts * level / 254, 1) if on else 0.0
        # Brightness only while on: an OFF light with a level would read as half-lit.
        body: dict[str, Any] = {"state": "ON", "brightness": level} if on else {"state": "OFF"}
        return self._msg(rid, "light", {**body, "power": watts, "energy": round(s.energy_kwh, 4)}, at)

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
        """Advance the room's air and energy meter to `at`: first-order lags to targets."""
        s, spec = self._state[rid], self._spec[rid]
        dt, load = at - s.settled_at, s.people / spec.capacity
        if dt <= 0:
            return
        co2_target = 420.0 + BEHAVIOUR[spec.type].co2_full * load
        s.co2 += (co2_target - s.co2) * (1 - math.exp(-dt / 900.0))
        k = 1 - math.exp(-dt / 1800.0)
        s.temperature += (21.0 + 1.8 * load - s.temperature) * k
        s.humidity += (38.0 + 8.0 * load - s.humidity) * k
        if s.light_on:
            s.energy_kwh += spec.lamp_watts * s.brightness / 254 * dt / 3.6e6
        s.settled_at = at
