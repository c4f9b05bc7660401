"""The scenario file: a building (or a campus), its people, device fits, physics and
faults, validated with pydantic; every problem reported with its path, as the site
config and the rules file are (`faults[2].device: unknown device 'vega/pir' ...`).

Units: durations are seconds or text (`90s`, `30m`, `1h30m`); times of day are
`"HH:MM"` in the scenario's time zone; shares and rates are 0..1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from rules.problems import Loc, LocatedProblems, ProblemsError, Vocabulary

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"

RoomType = Literal["meeting", "office", "open", "restroom", "kitchen", "phone_booth", "lobby", "other"]
DeviceKind = Literal["pir", "radar", "counter", "door", "env", "light", "hvac", "lock", "badge"]
DialectName = Literal["native", "zigbee2mqtt", "tasmota", "shelly", "homie"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKDAYS: tuple[Weekday, ...] = WEEKDAYS[:5]

# What each dialect can say for the kinds of device simulated here (what the
# gateway's decoder of that dialect reads: devices/dialects/).
DIALECT_KINDS: dict[str, frozenset[str]] = {
    "native": frozenset(DeviceKind.__args__),  # type: ignore[attr-defined]
    "zigbee2mqtt": frozenset({"pir", "radar", "door", "env", "light", "lock"}),
    "tasmota": frozenset({"light"}),
    "shelly": frozenset({"light"}),
    "homie": frozenset({"pir", "env", "door", "light", "lock", "counter"}),
}
BATTERY_KINDS = frozenset({"pir", "door", "env", "lock"})
OCCUPANCY_KINDS = frozenset({"pir", "radar"})

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_duration(value: Any) -> Any:
    """Seconds from a number or from text such as `90s`, `30m`, `1h30m`."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not value.strip() or match is None or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration (seconds, or text like 90s, 30m, 1h30m)")
        hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    return value


def parse_time_of_day(value: Any) -> Any:
    """Seconds after midnight from `"HH:MM"` (YAML 1.1 reads an unquoted 08:30 as 510 minutes)."""
    if isinstance(value, str):
        match = _TIME_OF_DAY.match(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a time of day (HH:MM)")
        hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
        if hours > 24 or minutes > 59 or seconds > 59 or (hours == 24 and (minutes or seconds)):
            raise ValueError(f"{value!r} is not a time of day (00:00 to 24:00)")
        return hours * 3600 + minutes * 60 + seconds
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 60  # sexagesimal YAML: 08:30 arrives as 510
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
TimeOfDay = Annotated[float, BeforeValidator(parse_time_of_day), Field(ge=0, le=86_400)]
Share = Annotated[float, Field(ge=0, le=1)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
FloorName = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v), Identifier]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Window(_Model):
    """A range `[low, high]` of durations: a value is drawn uniformly from it."""

    low: Duration
    high: Duration

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) == 2:
            return {"low": value[0], "high": value[1]}
        if isinstance(value, int | float | str):
            return {"low": value, "high": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.high < self.low:
            raise ValueError("the second value must not be below the first")
        return self


class Spread(_Model):
    """A time of day drawn from a normal distribution (`sd` 0: always `mean`)."""

    mean: TimeOfDay
    sd: Duration = 0.0


# -- the building ------------------------------------------------------------------------


class DeviceFit(_Model):
    """Devices of one kind in a room: `count` of them, speaking `dialect`."""

    kind: DeviceKind
    dialect: DialectName = "native"
    count: int = Field(default=1, ge=1, le=50)
    # Lights: rated power at full brightness (physics.light.watts when unset).
    watts: float | None = Field(default=None, gt=0, le=10_000)

    @model_validator(mode="after")
    def _dialect_says_it(self) -> DeviceFit:
        if self.kind not in DIALECT_KINDS[self.dialect]:
            kinds = ", ".join(sorted(DIALECT_KINDS[self.dialect]))
            raise LocatedProblems(
                [(("dialect",), f"{self.dialect} devices here are {kinds}, not {self.kind}")]
            )
        return self


class RoomSpec(_Model):
    id: Identifier
    name: str | None = None
    type: RoomType = "office"
    capacity: int = Field(default=1, ge=1, le=10_000)
    # A device fit by name (`fits:`); the room's type when unset.
    fit: str | None = None
    # Meeting rooms are bookable unless told otherwise; other rooms are not.
    bookable: bool | None = None
    # How much daylight reaches the room: 0 an inner room, 1 a glass wall.
    windows: Share = 0.6

    @property
    def fit_name(self) -> str:
        return self.fit or self.type

    @property
    def is_bookable(self) -> bool:
        return self.type == "meeting" if self.bookable is None else self.bookable


class GeneratedFloors(_Model):
    """Rooms made up by rule for large sites: `rooms_per_floor` on each of `floors`,
    their types in the shares of `mix`."""

    floors: int = Field(ge=1, le=200)
    rooms_per_floor: int = Field(ge=1, le=10_000)
    mix: dict[RoomType, Share] = Field(min_length=1)
    capacity: dict[RoomType, tuple[int, int]] = {}
    windows: Share = 0.6

    @field_validator("mix")
    @classmethod
    def _shares(cls, mix: dict[str, float]) -> dict[str, float]:
        if sum(mix.values()) <= 0:
            raise ValueError("at least one share must be above 0")
        return mix


class FloorSpec(_Model):
    id: FloorName
    rooms: list[RoomSpec] = Field(min_length=1)


class BuildingSpec(_Model):
    id: Identifier
    floors: list[FloorSpec] = []
    generate: GeneratedFloors | None = None

    @model_validator(mode="after")
    def _has_rooms(self) -> BuildingSpec:
        if not self.floors and self.generate is None:
            raise ValueError("give floors with rooms, or generate: {floors, rooms_per_floor, mix}")
        return self


# -- physics -----------------------------------------------------------------------------


class PirPhysics(_Model):
    # After a detection the sensor says nothing for this long (Aqara: 60 s).
    blind_time: Duration = 30.0
    # Share of movements the sensor misses (people behind a desk, out of its cone).
    miss_rate: Share = 0.05
    # `occupancy: false` this long after the last detection.
    clear_after: Duration = 90.0
    # Mean time between movements of one person sitting in the room.
    moves_every: Duration = 90.0


class RadarPhysics(_Model):
    # `presence: false` this long after the last person left.
    clear_after: Duration = 30.0
    every: Duration = 300.0


class Co2Physics(_Model):
    outdoor: float = Field(default=420.0, ge=0, le=2000)
    # CO2 one person breathes out, litres a second (0.005 sitting still).
    per_person: float = Field(default=0.005, ge=0, le=1)
    # Air changes an hour by the ventilation.
    air_changes: float = Field(default=3.0, gt=0, le=100)
    # Room volume per seat of capacity, m3 (plus 20 m3 a room).
    volume_per_seat: float = Field(default=10.0, gt=0, le=1000)
    noise: float = Field(default=8.0, ge=0, le=500)


class DaylightPhysics(_Model):
    sunrise: TimeOfDay = 7 * 3600.0
    sunset: TimeOfDay = 18 * 3600.0
    # Illuminance at the desk at noon under a clear sky, in a room with windows 1.
    peak_lux: float = Field(default=900.0, ge=0, le=100_000)
    # Mean cloud cover, 0 clear to 1 overcast (an overcast sky lets a fifth through).
    cloudiness: Share = 0.4


class LightPhysics(_Model):
    watts: float = Field(default=40.0, gt=0, le=10_000)
    # Illuminance the room's lights give at full brightness, summed over its lights.
    lux: float = Field(default=450.0, ge=0, le=10_000)
    # People arriving in an empty room switch the lights on below this daylight.
    switch_on_below_lux: float = Field(default=350.0, ge=0)
    # Share of last leavers who leave the lights on.
    forget_off: Share = 0.25
    # Lights switched off over their heads come back on after this (a person at the switch).
    back_on_after: Window = Window(low=15.0, high=90.0)
    report_every: Duration = 300.0


class EnvPhysics(_Model):
    every: Duration = 300.0
    # Mains devices report at least this often, or the gateway takes them for offline.
    heartbeat: Duration = 300.0
    # Battery levels are reported this often; they fall by up to `drain_per_day` % a day.
    battery_every: Duration = 3600.0
    drain_per_day: float = Field(default=0.2, ge=0, le=100)


class Physics(_Model):
    pir: PirPhysics = PirPhysics()
    radar: RadarPhysics = RadarPhysics()
    co2: Co2Physics = Co2Physics()
    daylight: DaylightPhysics = DaylightPhysics()
    light: LightPhysics = LightPhysics()
    env: EnvPhysics = EnvPhysics()


# -- people ------------------------------------------------------------------------------


class Lunch(_Model):
    probability: Share = 0.8
    at: Spread = Spread(mean=12.25 * 3600, sd=20 * 60)
    duration: Window = Window(low=1800, high=3600)
    # A room of this type in the building (the nearest); unset: lunch out of the building.
    room: RoomType | None = None


class Breaks(_Model):
    per_day: float = Field(default=2.0, ge=0, le=50)
    duration: Window = Window(low=120, high=360)
    room: RoomType = "restroom"


class LateStart(_Model):
    probability: Share = 0.3
    by: Window = Window(low=60, high=300)


class Meetings(_Model):
    # Meetings a person of the population attends on a working day, on average.
    per_day: float = Field(default=1.0, ge=0, le=20)
    duration: list[Duration] = Field(default=[1800.0, 3600.0], min_length=1)
    size: tuple[int, int] = (2, 6)
    # Share booked through the booking API (the rest are walk-ins); share of booked
    # meetings nobody comes to; starts moved by late arrivals.
    booked: Share = 0.9
    no_show: Share = 0.1
    late: LateStart = LateStart()
    # Bookings are made this long before the meeting.
    book_ahead: Duration = 3600.0
    # Meetings start on the half hour between these times.
    between: tuple[TimeOfDay, TimeOfDay] = (9 * 3600.0, 17 * 3600.0)

    @field_validator("size")
    @classmethod
    def _size(cls, size: tuple[int, int]) -> tuple[int, int]:
        if size[0] < 1 or size[1] < size[0]:
            raise ValueError("size is [smallest, largest] with 1 <= smallest <= largest")
        return size


class Population(_Model):
    name: Identifier
    size: int = Field(ge=1, le=1_000_000)
    # Buildings they work in (spread evenly); all when unset.
    buildings: list[Identifier] = []
    # Room types of their desks.
    desks: list[RoomType] = Field(default=["office", "open"], min_length=1)
    workdays: list[Weekday] = list(WORKDAYS)
    attendance: Share = 0.9
    arrival: Spread = Spread(mean=8.75 * 3600, sd=30 * 60)
    leave: Spread = Spread(mean=17.5 * 3600, sd=45 * 60)
    lunch: Lunch | None = None
    breaks: Breaks | None = None
    meetings: Meetings | None = None


# -- faults ------------------------------------------------------------------------------


class _FaultAt(_Model):
    # Day of the run (0 = the first) and time of day it starts.
    day: int = Field(default=0, ge=0, le=365)
    at: TimeOfDay


class DeviceOffline(_FaultAt):
    """The device drops off the network: its last will says `offline`, then nothing."""

    kind: Literal["device_offline"]
    device: str
    for_: Duration = Field(alias="for")
    # False: it goes silent without a last will (seen only by the gateway's timeouts).
    lwt: bool = True


class StuckSensor(_FaultAt):
    """An occupancy sensor that keeps saying "occupied" whoever is there."""

    kind: Literal["stuck_sensor"]
    device: str
    for_: Duration = Field(alias="for")


class Flood(_FaultAt):
    """A device repeating itself `rate` times a second (a firmware loop)."""

    kind: Literal["flood"]
    device: str
    for_: Duration = Field(default=30.0, alias="for")
    rate: float = Field(default=50.0, gt=0, le=10_000)


class SchemaDrift(_FaultAt):
    """A firmware update: fields renamed and new ones added from then on."""

    kind: Literal["schema_drift"]
    device: str
    rename: dict[str, str] = {}
    add: dict[str, Any] = {}
    # Until then (rolled back); unset: for the rest of the run.
    for_: Duration | None = Field(default=None, alias="for")

    @model_validator(mode="after")
    def _changes(self) -> SchemaDrift:
        if not self.rename and not self.add:
            raise ValueError("give rename: {old: new} and/or add: {field: value}")
        return self


class BatteryDrain(_FaultAt):
    """A battery running down to `to` % over `for` (a cold night, a faulty cell)."""

    kind: Literal["battery_drain"]
    device: str
    for_: Duration = Field(default=7200.0, alias="for")
    to: float = Field(default=5.0, ge=0, le=100)


class BrokerRestart(_FaultAt):
    kind: Literal["broker_restart"]


class GatewayRestart(_FaultAt):
    kind: Literal["gateway_restart"]


Fault = Annotated[
    DeviceOffline | StuckSensor | Flood | SchemaDrift | BatteryDrain | BrokerRestart | GatewayRestart,
    Field(discriminator="kind"),
]
FAULT_KINDS = (
    "device_offline",
    "stuck_sensor",
    "flood",
    "schema_drift",
    "battery_drain",
    "broker_restart",
    "gateway_restart",
)
DeviceFault = DeviceOffline | StuckSensor | Flood | SchemaDrift | BatteryDrain


class Baseline(_Model):
    """The lighting the savings are measured against: every light on at full power
    during these hours on working days (a building without controls)."""

    hours: tuple[TimeOfDay, TimeOfDay] = (7 * 3600.0, 19 * 3600.0)
    workdays: list[Weekday] = list(WORKDAYS)


# -- the scenario ------------------------------------------------------------------------


class Scenario(_Model):
    name: Identifier
    description: str = ""
    # When the run starts (simulated time), with a time zone; `--start` overrides it.
    start: datetime | None = None
    timezone: str = "UTC"
    topic_prefix: str = Field(default="office", min_length=1, pattern=r"^[^#+]+$")
    buildings: list[BuildingSpec] = Field(min_length=1)
    fits: dict[str, list[DeviceFit]] = {}
    physics: Physics = Physics()
    populations: list[Population] = []
    faults: list[Fault] = []
    baseline: Baseline = Baseline()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from None
        return name

    @field_validator("start")
    @classmethod
    def _aware(cls, start: datetime | None) -> datetime | None:
        if start is not None and start.tzinfo is None:
            raise ValueError("give a time zone (2030-01-07T00:00:00Z)")
        return start

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        problems = list(_reference_problems(self))
        if problems:
            raise LocatedProblems(problems)
        return self

    def rooms(self) -> Iterator[tuple[str, str, RoomSpec]]:
        """(building, floor, room) of every room, generated ones included, in file order."""
        for building in self.buildings:
            for floor in building.floors:
                for room in floor.rooms:
                    yield building.id, floor.id, room
            if building.generate is not None:
                yield from _generated(building.id, building.generate)


def _generated(building: str, rule: GeneratedFloors) -> Iterator[tuple[str, str, RoomSpec]]:
    """Rooms by the shares of `rule.mix`, the same on every floor (largest remainder)."""
    total = sum(rule.mix.values())
    wanted = {kind: share / total * rule.rooms_per_floor for kind, share in rule.mix.items()}
    counts = {kind: int(value) for kind, value in wanted.items()}
    by_remainder = sorted(wanted, key=lambda kind: counts[kind] - wanted[kind])
    for kind in by_remainder[: rule.rooms_per_floor - sum(counts.values())]:
        counts[kind] += 1
    default_capacity = {"meeting": (4, 12), "office": (1, 2), "open": (12, 30), "kitchen": (6, 16)}
    for floor_no in range(1, rule.floors + 1):
        floor = str(floor_no)
        for kind, count in counts.items():
            low, high = rule.capacity.get(kind, default_capacity.get(kind, (2, 4)))
            for n in range(1, count + 1):
                # A spread of sizes without a random draw: the plan is a function of the file.
                capacity = low + (n * 7 + floor_no * 3) % (high - low + 1)
                room_id = f"{building}-{floor}-{kind}-{n}"
                yield (
                    building,
                    floor,
                    RoomSpec(id=room_id, type=kind, capacity=capacity, windows=rule.windows),
                )


def device_names(fits: list[DeviceFit]) -> list[tuple[str, DeviceFit]]:
    """(name within the room, fit) of every device a fit list makes: the kind, and a
    number when the room has several of that kind (`light-1`, `light-2`)."""
    totals: dict[str, int] = {}
    for fit in fits:
        totals[fit.kind] = totals.get(fit.kind, 0) + fit.count
    seen: dict[str, int] = {}
    names: list[tuple[str, DeviceFit]] = []
    for fit in fits:
        for _ in range(fit.count):
            seen[fit.kind] = seen.get(fit.kind, 0) + 1
            name = fit.kind if totals[fit.kind] == 1 else f"{fit.kind}-{seen[fit.kind]}"
            names.append((name, fit))
    return names


def _reference_problems(scenario: Scenario) -> Iterator[tuple[Loc, str]]:
    rooms: dict[str, tuple[str, RoomSpec]] = {}
    types_by_building: dict[str, set[str]] = {}
    seen: set[str] = set()
    for b_index, building in enumerate(scenario.buildings):
        types_by_building.setdefault(building.id, set())
        for f_index, floor in enumerate(building.floors):
            for r_index, room in enumerate(floor.rooms):
                loc: Loc = ("buildings", b_index, "floors", f_index, "rooms", r_index)
                if room.id in seen:
                    yield (*loc, "id"), f"duplicate room id {room.id!r}"
                seen.add(room.id)
                if room.fit_name not in scenario.fits:
                    where = "fit" if room.fit else "type"
                    yield (*loc, where), f"no device fit {room.fit_name!r} in fits ({_known(scenario.fits)})"
    for b_index, building in enumerate(scenario.buildings):
        if building.generate is not None:
            for _, _, room in _generated(building.id, building.generate):
                if room.id in seen:
                    yield ("buildings", b_index, "id"), f"generated room id {room.id!r} is taken"
                    break
    for building_id, _, room in scenario.rooms():
        rooms.setdefault(room.id, (building_id, room))
        types_by_building.setdefault(building_id, set()).add(room.type)
    for b_index, building in enumerate(scenario.buildings):
        if building.generate is not None:
            for kind in building.generate.mix:
                if kind not in scenario.fits:
                    loc = ("buildings", b_index, "generate", "mix", kind)
                    yield loc, f"no device fit {kind!r} in fits ({_known(scenario.fits)})"
    buildings = {b.id for b in scenario.buildings}
    for p_index, population in enumerate(scenario.populations):
        loc = ("populations", p_index)
        for i, building_id in enumerate(population.buildings):
            if building_id not in buildings:
                yield (*loc, "buildings", i), f"unknown building {building_id!r}"
        theirs = [b for b in (population.buildings or sorted(buildings)) if b in buildings]
        types = set().union(*(types_by_building[b] for b in theirs)) if theirs else set()
        if not types.intersection(population.desks):
            yield (
                (*loc, "desks"),
                f"no room of these types in their buildings ({', '.join(population.desks)})",
            )
        if population.lunch is not None and population.lunch.room is not None:
            missing = [b for b in theirs if population.lunch.room not in types_by_building[b]]
            if missing:
                yield (*loc, "lunch", "room"), f"no {population.lunch.room} room in {', '.join(missing)}"
        if population.breaks is not None:
            missing = [b for b in theirs if population.breaks.room not in types_by_building[b]]
            if missing:
                yield (*loc, "breaks", "room"), f"no {population.breaks.room} room in {', '.join(missing)}"
    for f_index, fault in enumerate(scenario.faults):
        if isinstance(fault, BrokerRestart | GatewayRestart):
            continue
        problem = _device_problem(scenario, rooms, fault)
        if problem is not None:
            yield ("faults", f_index, "device"), problem


def _device_problem(
    scenario: Scenario, rooms: dict[str, tuple[str, RoomSpec]], fault: DeviceFault
) -> str | None:
    room_id, _, name = fault.device.partition("/")
    if room_id not in rooms or not name:
        return f"unknown device {fault.device!r} (write room/device, e.g. {_example(scenario, rooms)})"
    fits = scenario.fits.get(rooms[room_id][1].fit_name, [])
    names = dict(device_names(fits))
    if name not in names:
        return f"room {room_id} has no device {name!r} (it has {', '.join(names) or 'none'})"
    fit = names[name]
    if isinstance(fault, StuckSensor) and fit.kind not in OCCUPANCY_KINDS:
        return f"{fault.device} is a {fit.kind}: a stuck sensor is a pir or a radar"
    if isinstance(fault, BatteryDrain) and fit.kind not in BATTERY_KINDS:
        kinds = ", ".join(sorted(BATTERY_KINDS))
        return f"{fault.device} is a {fit.kind} on mains power: battery drain needs a {kinds}"
    if isinstance(fault, SchemaDrift) and fit.dialect not in ("native", "zigbee2mqtt"):
        return (
            f"{fault.device} speaks {fit.dialect}, whose decoder keeps only the fields it knows: "
            "schema drift needs a native or zigbee2mqtt device"
        )
    return None


def _example(scenario: Scenario, rooms: dict[str, tuple[str, RoomSpec]]) -> str:
    for room_id, (_, room) in rooms.items():
        fits = device_names(scenario.fits.get(room.fit_name, []))
        if fits:
            return f"{room_id}/{fits[0][0]}"
    return "orion/pir"


def _known(fits: dict[str, Any]) -> str:
    return "known: " + ", ".join(sorted(fits)) if fits else "none defined"


class ScenarioError(ProblemsError):
    what = "scenario"


def _keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for arg in _types_in(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                keys |= _keys(arg, seen)
    return keys


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _types_in(arg)
    for arg in getattr(annotation, "__metadata__", ()) or ():
        yield from _types_in(arg)


WORDS = Vocabulary(
    keys=_keys(Scenario) | {"for"},
    tags=frozenset(FAULT_KINDS),
    patterns={
        IDENTIFIER_PATTERN: "only letters, digits, '-', '_', '.' and ':' (starting with a letter or digit)"
    },
)
