"""Response models of the REST API (DESIGN.md §4); times are ISO 8601 UTC, unknowns null."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from api.booking_schemas import BookingSummary, RoomBookingOut
from devices.registry import DeviceView
from gateway.config import RoomConfig
from gateway.live_state import LiveRoom
from rules.bookings import Booking
from rules.occupancy import Occupancy
from rules.room_model import RoomState


def as_time(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class OccupancyOut(BaseModel):
    state: Literal["occupied", "vacant", "unknown"]
    people: int | None
    since: datetime | None
    confidence: float
    reason: str
    sensors_offline: bool = Field(
        description="the room has presence sensors and every one of them is offline: its occupancy "
        "is not being sensed (availability offers it on bookings alone, with this caveat)"
    )


class EnvironmentOut(BaseModel):
    co2_ppm: float | None
    temperature_c: float | None
    humidity_pct: float | None
    illuminance_lux: float | None


class LightingOut(BaseModel):
    on: bool | None
    brightness_pct: float | None
    power_w: float | None


class AccessOut(BaseModel):
    door_open: bool | None
    locked: bool | None


class EnergyOut(BaseModel):
    kwh_today: float | None
    # Of kwh_today, what lit the room while it was vacant.
    kwh_wasted_today: float | None

    # Digits of kWh shown (a thousandth of a Wh).
    DIGITS: ClassVar[int] = 6

    @classmethod
    def of(cls, state: RoomState, now: float, zone: tzinfo) -> EnergyOut:
        """Today's figures up to `now` (a lit room's draw counted to the moment)."""
        kwh, wasted = state.kwh_today(now, zone), state.kwh_wasted_today(now, zone)
        return cls(
            kwh_today=None if kwh is None else round(kwh, cls.DIGITS),
            kwh_wasted_today=None if wasted is None else round(wasted, cls.DIGITS),
        )


class RoomDescription(BaseModel):
    """What a room is (from the site config), shared by every room listing."""

    id: str
    name: str | None
    building: str
    floor: str
    type: str
    capacity: int
    features: list[str]

    @staticmethod
    def fields_of(config: RoomConfig) -> dict[str, Any]:
        return {
            "id": config.id,
            "name": config.name,
            "building": config.building,
            "floor": config.floor,
            "type": config.type,
            "capacity": config.capacity,
            "features": list(config.features),
        }


class PlanCellOut(BaseModel):
    """Where the room sits on its floor's plan, in grid cells from the top left (site config)."""

    x: int
    y: int
    w: int
    h: int


class RoomOut(RoomDescription):
    plan: PlanCellOut | None = Field(
        description="the room's cells on its floor plan (site config x, y, w, h); null: not placed"
    )
    bookable: bool
    configured: bool
    occupancy: OccupancyOut
    environment: EnvironmentOut
    lighting: LightingOut
    access: AccessOut
    energy: EnergyOut
    available_now: bool = Field(description="bookable, not occupied and no booking in progress")
    booking: RoomBookingOut = Field(
        description="the booking in progress and the next one (title, organizer: operator keys and above)"
    )
    updated_at: datetime | None

    @classmethod
    def of(
        cls,
        room: LiveRoom,
        now: float,
        bookings: tuple[Booking | None, Booking | None] = (None, None),
        *,
        details: bool = False,
    ) -> RoomOut:
        """`bookings`: the room's booking in progress and its next one; `details`: show
        their titles and organizers."""
        current, upcoming = bookings
        c, s = room.config, room.state
        occ, env, lighting = s.occupancy, s.environment, s.lighting
        cell = c.plan_cell
        return cls(
            **cls.fields_of(c),
            plan=None if cell is None else PlanCellOut(x=cell[0], y=cell[1], w=cell[2], h=cell[3]),
            bookable=c.bookable,
            configured=room.configured,
            occupancy=OccupancyOut(
                state=occ.state.value,
                people=occ.people,
                since=as_time(occ.since),
                confidence=occ.confidence,
                reason=occ.reason,
                sensors_offline=room.sensors_offline,
            ),
            environment=EnvironmentOut(
                co2_ppm=env.co2_ppm,
                temperature_c=env.temperature_c,
                humidity_pct=env.humidity_pct,
                illuminance_lux=env.illuminance_lux,
            ),
            lighting=LightingOut(
                on=lighting.on, brightness_pct=lighting.brightness_pct, power_w=lighting.power_w
            ),
            access=AccessOut(door_open=s.door_open, locked=s.locked),
            energy=EnergyOut.of(s, now, room.zone),
            available_now=is_available_now(room) and current is None,
            booking=RoomBookingOut(
                current=BookingSummary.of(current, details=details),
                next=BookingSummary.of(upcoming, details=details),
            ),
            updated_at=as_time(s.updated_at),
        )


def is_available_now(room: LiveRoom) -> bool:
    """Bookable and not seen occupied (bookings aside); a room with no evidence yet counts as free."""
    return room.config.bookable and room.state.occupancy.state != Occupancy.OCCUPIED


class RoomList(BaseModel):
    rooms: list[RoomOut]
    count: int


class DeviceQualityOut(BaseModel):
    message_rate: float = Field(description="messages a second over the last ~10 s")
    flooding: bool = Field(description="throttled within the last minute for exceeding quality.max_rate")
    throttled: int = Field(description="messages throttled since start")
    stuck: bool = Field(
        description="reports occupied for quality.stuck_after with no other device of the room seeing anyone"
    )
    schema_drift: list[str] | None = Field(
        description="fields that appeared, or changed type (`name:old->new`), after the schema settled"
    )
    schema_drift_at: datetime | None
    battery_low: bool


class UnsupportedOut(BaseModel):
    entity: str = Field(description="the announced entity (unique_id, or node/object id; friendly name)")
    what: str = Field(description="the part not mapped: a template, a unit, a second state, ...")
    detail: str
    template: str | None = Field(default=None, description="the template as announced, when one was at fault")


class DeviceMappingOut(BaseModel):
    """How a device that announced itself was mapped (null for configured and native devices)."""

    source: Literal["zigbee2mqtt", "homeassistant"]
    name: str = Field(description="its friendly name (Zigbee2MQTT) or device name (Home Assistant)")
    rule: Literal["config_rule", "suggested_area", "name", "group"] = Field(
        description="what placed it: a discovery.rooms rule, its suggested_area, the room level of its "
        "name, or a Zigbee2MQTT group"
    )
    detail: str
    unsupported: list[UnsupportedOut] = Field(description="parts of its announcements not mapped, and why")
    ignored: list[str] = Field(description="entities outside the vocabulary (linkquality, RSSI, ...)")


class DeviceOut(BaseModel):
    id: str
    name: str | None
    room_id: str
    dialect: str
    topic: str | None
    # The channel of a multi-channel device (a Shelly's `switch:1`) the entry stands for.
    channel: int | None
    kind: str
    configured: bool
    capabilities: list[str]
    online: bool | None
    last_seen: datetime | None
    battery: float | None
    last_state: dict[str, Any]
    quality: DeviceQualityOut
    mapping: DeviceMappingOut | None = Field(
        default=None, description="for a device mapped from its own announcements: how (configured: false)"
    )

    @classmethod
    def of(cls, view: DeviceView) -> DeviceOut:
        return cls(
            id=view.id,
            name=view.name,
            room_id=view.room_id,
            dialect=view.dialect,
            topic=view.topic,
            channel=view.channel,
            kind=view.kind,
            configured=view.configured,
            capabilities=list(view.capabilities),
            online=view.online,
            last_seen=as_time(view.last_seen),
            battery=view.battery,
            last_state=view.last_state,
            quality=DeviceQualityOut(
                **{**view.quality, "schema_drift_at": as_time(view.quality["schema_drift_at"])}
            ),
            mapping=DeviceMappingOut.model_validate(view.mapping) if view.mapping is not None else None,
        )


class HistoryPoint(BaseModel):
    """One bucket of `step` seconds (with `step`)."""

    t: datetime = Field(description="start of the bucket: a multiple of `step` since the epoch")
    mean: float
    min: float
    max: float
    count: int = Field(description="readings in the bucket and the window (all devices of the room)")


class HistoryReading(BaseModel):
    """One recorded reading (without `step`)."""

    ts: datetime = Field(description="the device's time of the reading (else when the gateway got it)")
    value: float = Field(description="booleans and on/off as 0/1")
    device: str


class HistoryOut(BaseModel):
    room_id: str
    metric: str = Field(
        description="the device field answered, whichever name was asked: `co2` for `co2_ppm` too"
    )
    status_name: str | None = Field(description="the metric's name in room status (`co2_ppm`), if any")
    start: datetime
    end: datetime
    step: float | None = Field(description="seconds per bucket; null: raw readings")
    points: list[HistoryPoint] | list[HistoryReading] = Field(
        description="with `step`: buckets with readings, oldest first (empty ones left out); "
        "without: readings in (ts, device) order, at most `limit`"
    )
    next_after: str | None = Field(
        default=None,
        description="raw readings only: the window holds more; pass as `after` (same metric and "
        "window) for the next page. null: nothing more",
    )


class RecordedMetric(BaseModel):
    metric: str = Field(description="the device field the readings are recorded under")
    status_name: str | None = Field(description="its name in room status, if any; history answers to both")
    kind: str = Field(description="environment, occupancy, energy, lighting, access, hvac or device")
    first: datetime = Field(description="the oldest reading kept")
    last: datetime = Field(description="the newest reading")


class RoomMetrics(BaseModel):
    room_id: str
    metrics: list[RecordedMetric]
    count: int


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    count: int


AnnouncedStatus = Literal["mapped", "unplaced", "other_shard", "refused", "superseded", "nothing_to_read"]


class AnnouncedOut(BaseModel):
    """A device that announced itself, and what the gateway made of it."""

    id: str
    source: Literal["zigbee2mqtt", "homeassistant"]
    name: str
    topic: str = Field(description="its state topic")
    kind: str
    capabilities: list[str] = Field(description="vocabulary fields its announcements say it reports")
    status: AnnouncedStatus = Field(
        description="mapped: in /v1/devices; unplaced: no rule, name, group or area names a room; "
        "other_shard: its room is in a building another gateway serves; refused: a registry limit, an id "
        "or topic of a configured device, or a name that contradicts a known room; superseded: another "
        "announcement of the same device (Zigbee2MQTT's own list over Home Assistant discovery) holds its "
        "topic; nothing_to_read: no entity it announces can be read"
    )
    room_id: str | None
    rule: str = Field(description="what placed it (or tried to)")
    detail: str = Field(description="why it is where it is, or why not")
    unsupported: list[UnsupportedOut]
    ignored: list[str]


class AnnouncedList(BaseModel):
    devices: list[AnnouncedOut]
    count: int


class AvailableRoom(RoomDescription):
    available: bool
    reasons: list[str] = Field(
        description="why not: booked, occupied; and caveats: sensors_offline (offered on bookings alone)"
    )
    free_until: datetime | None = Field(
        description="when the next booking starts, for an available room; null: nothing booked after"
    )
    next_booking: BookingSummary | None = Field(
        description="the booking in the window, else the next one (title, organizer: operator keys and above)"
    )
    occupancy: Literal["occupied", "vacant", "unknown"] | None = Field(
        description="live occupancy, only for a window that includes now"
    )


class AvailabilityOut(BaseModel):
    start: datetime
    end: datetime
    includes_now: bool
    rooms: list[AvailableRoom]
    count: int


class Health(BaseModel):
    status: str


class ClockOut(BaseModel):
    gateway: str = Field(
        description="gateway.id; with mode device, each tick is also published on officegw/gateway/<id>/clock"
    )
    mode: Literal["system", "device"] = Field(
        description="clock.mode: the machine's clock, or the newest device time accepted (simulations)"
    )
    now: datetime = Field(description="the gateway's time")
    ticked_at: datetime | None = Field(
        description="the gateway's time at its last tick (timers, rules, bookings); null before the first"
    )
    messages_processed: int = Field(description="MQTT messages done with since the gateway started")
    commands_sent: int = Field(description="device commands published since the gateway started, retries too")


class Readiness(BaseModel):
    # "standby": a gateway waiting for its shard's lock (storage.url, `run --standby`).
    status: Literal["ready", "degraded", "not ready", "standby"]
    checks: dict[str, bool]


def room_json(
    room: LiveRoom,
    now: float,
    bookings: tuple[Booking | None, Booking | None] = (None, None),
    *,
    details: bool = False,
) -> bytes:
    """The body of GET /v1/rooms/{id}; as a viewer key gets it (`details` False: bookings
    without title and organizer) it is what the gateway publishes on officegw/state/...
    and streams as `room` events (handed to the gateway by the composition root)."""
    return RoomOut.of(room, now, bookings, details=details).model_dump_json().encode()
