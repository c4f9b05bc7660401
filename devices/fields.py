"""The device vocabulary: the payload fields of DESIGN.md §2 with their types and ranges.

Every dialect translates its messages into these fields; a message is validated by
one `model_validate_json` call (parsing and validating in one pass is cheaper than
`json.loads` followed by validation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from devices.credentials import credential_text

NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
# Numbers may arrive as int or float; strings are never numbers.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# A badge id of any JSON type (`12345678`, `{"id": ...}`), as the text it is
# pseudonymised from (devices.credentials); only its length is checked.
Credential = Annotated[str | None, BeforeValidator(credential_text)]

STATE_VALUES = ("ON", "OFF", "LOCK", "UNLOCK")


class DevicePayload(BaseModel):
    """One device message in the native vocabulary; any subset of fields may appear.

    Fields outside the vocabulary are kept (they show up in the device's last state)
    but nothing acts on them; credential-like ones among them (`Credential`,
    `card_id`, ...) are pseudonymised by the ingest pipeline like `credential`.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    occupancy: StrictBool | None = None
    # mmWave/radar presence: holds occupancy while someone sits still.
    presence: StrictBool | None = None
    people: NonNegativeInt | None = Field(default=None, le=10_000)
    entered: NonNegativeInt | None = Field(default=None, le=10_000)
    exited: NonNegativeInt | None = Field(default=None, le=10_000)
    contact: StrictBool | None = None
    illuminance: Number | None = Field(default=None, ge=0, le=200_000)
    temperature: Number | None = Field(default=None, ge=-60, le=120)
    humidity: Number | None = Field(default=None, ge=0, le=100)
    co2: Number | None = Field(default=None, ge=0, le=100_000)
    state: Literal["ON", "OFF", "LOCK", "UNLOCK"] | None = None
    brightness: StrictInt | None = Field(default=None, ge=0, le=254)
    power: Number | None = Field(default=None, ge=0, le=1_000_000)
    energy: Number | None = Field(default=None, ge=0)
    access: Literal["granted", "denied"] | None = None
    credential: Credential = Field(default=None, max_length=256)
    battery: Number | None = Field(default=None, ge=0, le=100)
    # HVAC: target temperature and operating mode.
    setpoint: Number | None = Field(default=None, ge=5, le=35)
    mode: Literal["off", "heat", "cool", "auto", "eco", "fan"] | None = None
    # ISO 8601 string or epoch seconds; pydantic accepts both for datetime.
    ts: datetime | None = None


class RejectReason:
    """Why a message was rejected; each is a label value of the rejection counter."""

    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_TYPE = "invalid_type"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED = "oversized"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    INVALID_AVAILABILITY = "invalid_availability"
    # Device time older than the last reading already applied from the device.
    OUT_OF_ORDER = "out_of_order"
    # A topic level (building, floor, room, device) that is not a valid id.
    INVALID_TOPIC = "invalid_topic"
    # A known device or room on a topic of another room (or floor) of the same building.
    WRONG_ROOM = "wrong_room"
    # A known device or room on a topic of another building.
    WRONG_BUILDING = "wrong_building"
    # The id a new device would get already names another device.
    ID_CONFLICT = "id_conflict"
    # Past the registry's limits: auto-registered rooms or devices, fields per device.
    REGISTRY_FULL = "registry_full"
    # A field value larger than `registry.max_field_bytes`.
    FIELD_TOO_LARGE = "field_too_large"
    # Processing raised unexpectedly (a bug): dead-lettered like bad input.
    INTERNAL_ERROR = "internal_error"

    ALL = (
        INVALID_JSON,
        NOT_AN_OBJECT,
        INVALID_TYPE,
        OUT_OF_RANGE,
        OVERSIZED,
        UNKNOWN_TOPIC,
        UNKNOWN_DEVICE,
        INVALID_AVAILABILITY,
        OUT_OF_ORDER,
        INVALID_TOPIC,
        WRONG_ROOM,
        WRONG_BUILDING,
        ID_CONFLICT,
        REGISTRY_FULL,
        FIELD_TOO_LARGE,
        INTERNAL_ERROR,
    )


MAX_PAYLOAD_BYTES = 64 * 1024
