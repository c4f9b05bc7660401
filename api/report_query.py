"""What a report request asks for (reports contract): the window (`start`, `end`, ISO
8601; by default the site's today so far), grouping, buckets, filters, and JSON or CSV.

The key's building scope is part of the window: a scoped key's report holds only its
buildings' rooms. A `building` filter outside the scope is a 403, as on the other
routes; a `room` the key may not see (or that does not exist) a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from api.auth import Viewer, guard_of
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.query import QueryTime
from gateway.reports.site_time import start_of_day
from gateway.reports.table import Bucket, GroupBy, Report, ReportWindow

# A window longer than this is refused (422): reports cover the retention period, and
# a year is what anyone asks for at once.
MAX_WINDOW_DAYS = 366
# Hour buckets over a longer window would make tens of thousands of rows a room.
MAX_HOURLY_DAYS = 31
CSV_TYPE = "text/csv"

ReportFormat = Literal["json", "csv"]


def report_window(
    request: Request,
    gateway: GatewayDep,
    who: Viewer,
    start: Annotated[
        QueryTime | None, Query(description="ISO 8601; default: the start of today in site.timezone")
    ] = None,
    end: Annotated[QueryTime | None, Query(description="ISO 8601, exclusive; default: now")] = None,
    group_by: GroupBy = GroupBy.ROOM,
    bucket: Annotated[
        Bucket, Query(description="hour, day or week in site.timezone, or none (the whole window)")
    ] = Bucket.DAY,
    building: str | None = None,
    floor: str | None = None,
    room: str | None = None,
    room_type: str | None = None,
) -> ReportWindow:
    if building is not None and not who.can_see(building):
        raise guard_of(request).forbidden(request.scope, who, "this key may not see that building")
    if room is not None:
        found = gateway.room(room)
        if found is None or not who.can_see(found.config.building):
            raise HTTPException(404, detail="room not found")
    timezone = gateway.settings.site.timezone
    now = gateway.now()
    until = end or datetime.fromtimestamp(now, UTC)
    since = start or datetime.fromtimestamp(
        start_of_day(min(now, until.timestamp()), ZoneInfo(timezone)), UTC
    )
    if until < since:
        raise HTTPException(422, detail="end is before start")
    days = (until - since).total_seconds() / 86_400
    if days > MAX_WINDOW_DAYS:
        raise HTTPException(422, detail=f"the window may span at most {MAX_WINDOW_DAYS} days")
    if bucket is Bucket.HOUR and days > MAX_HOURLY_DAYS:
        raise HTTPException(422, detail=f"hour buckets cover at most {MAX_HOURLY_DAYS} days; use day or week")
    return ReportWindow(
        start=since,
        end=until,
        timezone=timezone,
        group_by=group_by,
        bucket=bucket,
        building=building,
        floor=floor,
        room=room,
        room_type=room_type,
        buildings=who.buildings,
    )


def wants_csv(request: Request, format: ReportFormat | None) -> bool:
    """`?format=` decides; without it, an Accept header naming text/csv."""
    if format is not None:
        return format == "csv"
    return CSV_TYPE in request.headers.get("accept", "")


def report_response(report: Report, csv: bool) -> Response:
    if csv:
        name = f"{report.name}-{report.window.start:%Y%m%dT%H%M%SZ}.csv"
        return Response(
            report.as_csv(),
            media_type=f"{CSV_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )
    return JSONResponse(report.as_json())


# The OpenAPI description of a report answer: the JSON table, or its CSV form.
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "report",
        "timezone",
        "start",
        "end",
        "group_by",
        "bucket",
        "columns",
        "meta",
        "rows",
        "totals",
    ],
    "properties": {
        "report": {"type": "string"},
        "timezone": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "group_by": {"type": "string", "enum": [g.value for g in GroupBy]},
        "bucket": {"type": "string", "enum": [b.value for b in Bucket]},
        "columns": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": "object"},
        "rows": {"type": "array", "items": {"type": "object"}},
        "totals": {"type": "object"},
    },
}
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the report: JSON (Report.as_json) or, with format=csv or Accept: text/csv, CSV",
        "content": {
            "application/json": {"schema": REPORT_SCHEMA},
            CSV_TYPE: {"schema": {"type": "string"}},
        },
    },
    **responses(*AUTH, 404, 422),
}
