"""Room plans for the simulated floors: what rooms exist and how people use them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

RoomType = Literal["meeting", "office", "open", "restroom"]

_STARS = (
    "orion", "lyra", "vega", "draco", "cygnus", "auriga", "perseus", "andromeda", "pegasus",
    "phoenix", "hydra", "carina", "aquila", "corvus", "lupus", "volans", "sirius", "rigel",
    "altair", "deneb", "antares", "polaris", "capella", "castor", "pollux", "spica", "mira",
    "electra", "maia", "atlas", "tucana", "pavo", "fornax", "crux", "lepus", "musca", "norma",
    "pictor", "vela", "pyxis", "ara", "columba", "dorado", "indus", "octans", "reticulum",
    "sculptor", "triangulum",
)  # fmt: skip
# Floors 2-9 draw disjoint star names (floor 2 starts at "orion", as in DESIGN.md); on
# other floors, and past the sixth meeting room, ids carry the floor, so they stay unique
# within a building.
_STARS_PER_FLOOR = 6


@dataclass(frozen=True, slots=True)
class Behaviour:
    group: tuple[int, int]  # people per arrival; the upper bound is clipped to capacity
    stay: tuple[float, float]  # simulated seconds a group stays
    gap: tuple[float, float]  # simulated seconds until the next arrival
    concurrent: bool  # open areas take walk-ins; meeting rooms host one group at a time
    co2_full: float  # ppm above outdoor air with the room full (ventilation quality)


BEHAVIOUR = MappingProxyType(
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
    access_control: bool  # badge reader + lock on the door
    lamp_watts: float
    daylight_lux: float  # illuminance at noon with the lights off
    idle_factor: float  # >1 stretches the gaps, so some rooms stay empty for a while

    @property
    def bookable(self) -> bool:
        return self.type == "meeting"

    @property
    def kinds(self) -> tuple[str, ...]:
        """Device kinds in the room; device ids are `<room>-<kind>`."""
        kinds: tuple[str, ...] = ("pir", "env", "light")
        kinds += ("counter", "door") if self.type == "meeting" else ()
        return kinds + (("badge", "lock") if self.access_control else ())


def layout(floor: str, count: int, rng: random.Random) -> tuple[RoomSpec, ...]:
    """A typical floor: ~60% meeting rooms, offices, one open area, one restroom."""
    special = [t for t, n in (("open", 3), ("restroom", 4)) if count >= n]
    meetings = max(1, round((count - len(special)) * 0.6))
    offset = ((int(floor) - 2 if floor.isdigit() else 0) % 8) * _STARS_PER_FLOOR
    plans: list[tuple[str, str, RoomType, int, tuple[str, ...], float]] = []
    for i in range(meetings):
        star = _STARS[(offset + i) % len(_STARS)]
        cap = rng.choice((4, 4, 6, 6, 8, 10, 12, 16))
        feats = ("display",) + (("vc",) if cap >= 10 or rng.random() < 0.6 else ())
        feats += ("whiteboard",) if rng.random() < 0.5 else ()
        bare = i < _STARS_PER_FLOOR and floor.isdigit() and 2 <= int(floor) <= 9
        rid = star if bare else f"{star}-{floor}"
        if i >= len(_STARS):  # more meeting rooms than stars on one floor
            rid += f"-{i // len(_STARS)}"
        plans.append((rid, star.capitalize(), "meeting", cap, feats, 30.0 + 4 * cap))
    for i in range(count - len(special) - meetings):
        no, feats = f"{floor}{i + 1:02d}", ("display",) if rng.random() < 0.5 else ()
        plans.append((f"office-{no}", f"Office {no}", "office", rng.choice((1, 1, 2)), feats, 25.0))
    if "open" in special:
        cap = rng.randint(16, 30)
        plans.append((f"open-{floor}", f"Open area {floor}", "open", cap, ("whiteboard",), 180.0))
    if "restroom" in special:
        plans.append((f"restroom-{floor}", f"Restroom {floor}", "restroom", 4, (), 20.0))
    # Badge + lock: the first office and, on a larger floor, the biggest meeting room.
    guarded = {next((p[0] for p in plans if p[2] == "office"), plans[0][0])}
    if count >= 8:
        guarded.add(max(plans[:meetings], key=lambda p: p[3])[0])
    return tuple(
        RoomSpec(
            rid,
            name,
            rtype,
            cap,
            feats,
            rid in guarded,
            watts,
            rng.uniform(0, 20) if rtype == "restroom" else rng.uniform(80, 700),
            rng.choice((1.0, 1.0, 1.5, 3.0)),
        )
        for rid, name, rtype, cap, feats, watts in plans
    )
