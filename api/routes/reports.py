"""Workplace reports: utilisation, energy, comfort, computed from the store.

Each report is one table (gateway/reports/table.py): a row per group (room, floor,
building or room type) and bucket (hour, day or week of the site's time zone, or
the whole window), and the totals. JSON by default; CSV with `?format=csv` or
`Accept: text/csv` (the same figures: both render one table). The window defaults to
the site's today so far. A key scoped to buildings gets its buildings' rooms only;
a `building` filter outside its scope is a 403, a `room` it may not see a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from pydantic import BaseModel

from api.auth import Principal, Viewer, guard_of
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.query import QueryTime
from gateway.reports.catalog import ReportRefused
from gateway.reports.table import Bucket, GroupBy, Report, ReportWindow
from gateway.runtime.gateway import Gateway
from rules.site_time import day_start, local_date

router = APIRouter(prefix="/v1/reports", tags=["reports"])

CSV_TYPE = "text/csv"
# Times a report may cover: sane calendar arithmetic on both sides of them.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class ReportOut(BaseModel):
    """Documentation of the JSON answer (gateway.reports.table.Report.as_json)."""

    report: str
    timezone: str
    start: datetime
    end: datetime
    group_by: GroupBy
    bucket: Bucket
    # Figure names, in order: every row and the totals have exactly these.
    columns: list[str]
    # Units and settings the figures depend on (currency, tariff, bands, business hours).
    meta: dict[str, Any]
    # The group's fields (building, floor, room, room_type), `bucket_start` (the start
    # of the bucket's hour, day or week in the site's zone; null for bucket=none) and
    # the figures.
    rows: list[dict[str, Any]]
    totals: dict[str, Any]


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {"schema": ReportOut.model_json_schema()},
            CSV_TYPE: {"schema": {"type": "string"}},
        },
        "description": "the report: JSON, or CSV (a header, a line per row, then a `total` line)",
    },
    **responses(*AUTH, 404, 422),
}

GroupByQuery = Annotated[GroupBy, Query(description="what a row stands for")]
BucketQuery = Annotated[Bucket, Query(description="the time a row covers (site time zone)")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="json (default) or csv")]
Start = Annotated[QueryTime | None, Query(description="default: the start of today in site.timezone")]
End = Annotated[QueryTime | None, Query(description="default: now")]
Accept = Annotated[str | None, Header(description="`text/csv` asks for CSV (unless `format` says otherwise)")]


def _answer(
    request: Request,
    gateway: Gateway,
    who: Principal,
    name: str,
    start: datetime | None,
    end: datetime | None,
    group_by: GroupBy,
    bucket: Bucket,
    filters: dict[str, str | None],
    form: str | None,
    accept: str | None,
) -> Response:
    if group_by is GroupBy.DEVICE_KIND:
        # Rooms' utilisation, energy and comfort have no device kind; the service report has.
        raise HTTPException(422, detail=f"group_by=device_kind is for the service report, not {name}")
    building, room = filters["building"], filters["room"]
    if building is not None and not who.can_see(building):
        raise guard_of(request).forbidden(request.scope, who, "this key may not see that building")
    if room is not None:
        found = gateway.room(room)
        if found is None or not who.can_see(found.config.building):
            raise HTTPException(404, detail="room not found")
    zone_name = request.app.state.settings.site.timezone
    zone = ZoneInfo(zone_name)
    now = gateway.now()
    if start is None:
        start = datetime.fromtimestamp(day_start(local_date(now, zone), zone), UTC)
    if end is None:
        end = datetime.fromtimestamp(now, UTC)
    if start < EARLIEST or end > LATEST:
        raise HTTPException(422, detail="start and end must lie between the years 1900 and 9000")
    if end <= start:
        raise HTTPException(422, detail="end must be after start")
    window = ReportWindow(
        start,
        end,
        zone_name,
        group_by,
        bucket,
        building=building,
        floor=filters["floor"],
        room=room,
        room_type=filters["room_type"],
    )
    try:
        report = gateway.report(name, window, buildings=who.buildings)
    except ReportRefused as exc:
        raise HTTPException(422, detail=str(exc)) from None
    wants_csv = form == "csv" or (form is None and accept is not None and CSV_TYPE in accept)
    return (
        _csv(report) if wants_csv else Response(orjson.dumps(report.as_json()), media_type="application/json")
    )


def _csv(report: Report) -> Response:
    return Response(
        report.as_csv(),
        media_type=f"{CSV_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{report.name}.csv"'},
    )


@router.get(
    "/utilization",
    response_class=Response,
    summary="Utilisation: occupied, business and booked hours, no-shows, peak people vs capacity",
    responses=ANSWERS,
)
def utilization(
    request: Request,
    gateway: GatewayDep,
    who: Viewer,
    start: Start = None,
    end: End = None,
    group_by: GroupByQuery = GroupBy.ROOM,
    bucket: BucketQuery = Bucket.DAY,
    building: str | None = None,
    floor: str | None = None,
    room: str | None = None,
    room_type: str | None = None,
    format: Format = None,
    accept: Accept = None,
) -> Response:
    filters = {"building": building, "floor": floor, "room": room, "room_type": room_type}
    return _answer(
        request, gateway, who, "utilization", start, end, group_by, bucket, filters, format, accept
    )


@router.get(
    "/energy",
    response_class=Response,
    summary="Energy: kWh, kWh while vacant, cost, savings against the baseline per room and rule",
    responses=ANSWERS,
)
def energy(
    request: Request,
    gateway: GatewayDep,
    who: Viewer,
    start: Start = None,
    end: End = None,
    group_by: GroupByQuery = GroupBy.ROOM,
    bucket: BucketQuery = Bucket.DAY,
    building: str | None = None,
    floor: str | None = None,
    room: str | None = None,
    room_type: str | None = None,
    format: Format = None,
    accept: Accept = None,
) -> Response:
    filters = {"building": building, "floor": floor, "room": room, "room_type": room_type}
    return _answer(request, gateway, who, "energy", start, end, group_by, bucket, filters, format, accept)


@router.get(
    "/comfort",
    response_class=Response,
    summary="Comfort: share of occupied minutes with temperature and CO2 inside the bands",
    responses=ANSWERS,
)
def comfort(
    request: Request,
    gateway: GatewayDep,
    who: Viewer,
    start: Start = None,
    end: End = None,
    group_by: GroupByQuery = GroupBy.ROOM,
    bucket: BucketQuery = Bucket.DAY,
    building: str | None = None,
    floor: str | None = None,
    room: str | None = None,
    room_type: str | None = None,
    format: Format = None,
    accept: Accept = None,
) -> Response:
    filters = {"building": building, "floor": floor, "room": room, "room_type": room_type}
    return _answer(request, gateway, who, "comfort", start, end, group_by, bucket, filters, format, accept)
