"""Deterministic mixed native-dialect traffic for benchmarks.

Rooms come from the same floor plans as `VirtualFloor` (25 rooms a floor), so the site
config of a benchmark and its traffic agree. Each room keeps a little state (people,
light level, energy meter) so consecutive messages of one room are coherent.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from simulators.rooms import RoomSpec, layout

Message = tuple[str, bytes]

ROOMS_PER_FLOOR = 25
# Share of traffic by device kind on a real floor: env and motion sensors dominate.
_WEIGHTS = MappingProxyType(
    {"env": 35, "pir": 30, "light": 15, "counter": 10, "door": 6, "badge": 2, "lock": 2}
)


@dataclass(slots=True)
class _Room:
    spec: RoomSpec
    floor: str
    kinds: tuple[str, ...]
    cum_weights: tuple[int, ...]
    battery: float
    people: int = 0
    brightness: int = 0
    energy: float = 0.0


def plan(rooms: int = 500, seed: int = 1) -> list[tuple[str, RoomSpec]]:
    """(floor, room) pairs: `rooms` rooms on floors 1, 2, ... of ROOMS_PER_FLOOR each."""
    rng = random.Random(seed)
    out: list[tuple[str, RoomSpec]] = []
    for f in range(1, (rooms + ROOMS_PER_FLOOR - 1) // ROOMS_PER_FLOOR + 1):
        n = min(ROOMS_PER_FLOOR, rooms - len(out))
        out += [(str(f), r) for r in layout(str(f), n, rng)]
    return out


def rooms_for(rooms: int = 500, seed: int = 1, building: str = "hq") -> list[dict[str, Any]]:
    """DESIGN.md §3 `site.rooms` entries for the rooms `mixed_messages` talks about."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "building": building,
            "floor": f,
            "type": r.type,
            "capacity": r.capacity,
            "features": list(r.features),
            "bookable": r.bookable,
        }
        for f, r in plan(rooms, seed)
    ]


def devices_for(rooms: int = 500, seed: int = 1) -> list[dict[str, Any]]:
    """DESIGN.md §3 `site.devices` entries, device ids `<room>-<kind>`."""
    return [{"id": f"{r.id}-{k}", "room": r.id} for _, r in plan(rooms, seed) for k in r.kinds]


def mixed_messages(
    count: int,
    rooms: int = 500,
    seed: int = 1,
    prefix: str = "office",
    building: str = "hq",
    start_ts: float | None = 1_700_000_000.0,
    rate: float = 1000.0,
) -> list[Message]:
    """`count` (topic, payload) pairs, each room visited once per pass in shuffled order.

    `ts` advances by 1/`rate` s a message from `start_ts`; `start_ts=None` leaves it out.
    """
    rng = random.Random(seed)
    state = [_room(f, spec, rng) for f, spec in plan(rooms, seed)]
    out: list[Message] = []
    order: list[_Room] = []
    for i in range(count):
        if not order:  # every room once per pass: `count >= rooms` covers them all
            order = rng.sample(state, len(state))
        room = order.pop()
        kind = rng.choices(room.kinds, cum_weights=room.cum_weights)[0]
        payload = _payload(room, kind, rng)
        if start_ts is not None:
            payload["ts"] = round(start_ts + i / rate, 3)
        topic = f"{prefix}/{building}/{room.floor}/{room.spec.id}/{room.spec.id}-{kind}"
        out.append((topic, orjson.dumps(payload)))
    return out


def _room(floor: str, spec: RoomSpec, rng: random.Random) -> _Room:
    kinds = tuple(k for k in spec.kinds if k in _WEIGHTS)
    cum = tuple(itertools.accumulate(_WEIGHTS[k] for k in kinds))
    return _Room(spec, floor, kinds, cum, rng.uniform(25, 100))


def _payload(room: _Room, kind: str, rng: random.Random) -> dict[str, Any]:
    cap = room.spec.capacity
    if rng.random() < 0.15:  # someone comes or goes between two messages of a room
        room.people = max(0, min(cap, room.people + rng.choice((-2, -1, 1, 2))))
    room.battery = max(0.0, room.battery - 0.001)
    load, battery = room.people / cap, round(room.battery)
    if kind == "pir":  # motion sensors with a light sensor, Hue-style
        return {
            "occupancy": room.people > 0,
            "illuminance": rng.randint(0, 900),
            "battery": battery,
        }
    if kind == "env":
        return {
            "temperature": round(rng.gauss(21.0 + 2 * load, 0.4), 1),
            "humidity": round(min(90.0, max(15.0, rng.gauss(40 + 8 * load, 4))), 1),
            "co2": int(min(3000, max(350, rng.gauss(450 + 900 * load, 40)))),
            "illuminance": rng.randint(0, 1200),
            "battery": battery,
        }
    if kind == "light":
        if bool(room.people) != bool(room.brightness):  # switched on entering, off leaving
            room.brightness = rng.choice((180, 220, 254)) if room.people else 0
        watts = round(room.spec.lamp_watts * room.brightness / 254, 1)
        room.energy += watts * rng.uniform(0.01, 0.2) / 1000
        body = {"state": "ON", "brightness": room.brightness} if room.brightness else {"state": "OFF"}
        return {**body, "power": watts, "energy": round(room.energy, 4)}
    if kind == "counter":
        delta = rng.randint(-2, 2)
        before, room.people = room.people, max(0, min(cap, room.people + delta))
        moved = room.people - before
        return {"people": room.people, "entered": max(moved, 0), "exited": max(-moved, 0)}
    if kind == "door":
        return {"contact": rng.random() < 0.8, "battery": battery}
    if kind == "badge":
        granted = rng.random() < 0.93
        return {
            "access": "granted" if granted else "denied",
            "credential": f"{rng.getrandbits(56):014X}",
        }
    return {"state": rng.choice(("LOCK", "LOCK", "UNLOCK")), "battery": battery}
