"""The scheduled reports' archive: what was written (`GET /v1/reports/archive`) and each
file (`GET /v1/reports/archive/{building}/{period}/{name}`).

A key scoped to buildings lists and downloads only its buildings' archives; another
building's file is a 404, as a room of another building is. Files are served only by
the names the archive lists (gateway/reports/archive.py), never by a path taken
from the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.auth import Viewer, guard_of
from api.deps import GatewayDep
from api.errors import AUTH, responses
from api.schemas import as_time
from gateway.reports.archive import ARCHIVE_PATH, ArchiveEntry, archive_url

router = APIRouter(tags=["reports"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


class ArchivedFileOut(BaseModel):
    name: str
    format: Literal["csv", "html"]
    url: str
    bytes: int


class ArchiveOut(BaseModel):
    # "<building>/<period label>"
    id: str
    building: str
    period: Literal["weekly", "monthly"]
    # "2026-W48" (ISO week) or "2026-11"
    label: str
    start: datetime | None
    end: datetime | None
    created_at: datetime | None
    files: list[ArchivedFileOut]

    @classmethod
    def of(cls, entry: ArchiveEntry) -> ArchiveOut:
        return cls(
            id=entry.id,
            building=entry.building,
            period=entry.period,
            label=entry.label,
            start=as_time(entry.start),
            end=as_time(entry.end),
            created_at=as_time(entry.created_at),
            files=[
                ArchivedFileOut(name=f.name, format=f.format, url=archive_url(entry, f.name), bytes=f.bytes)
                for f in entry.files
            ],
        )


class ArchiveList(BaseModel):
    reports: list[ArchiveOut]


@router.get(
    ARCHIVE_PATH,
    response_model=ArchiveList,
    summary="Scheduled reports written so far (of the key's buildings), newest period first",
    responses=responses(*AUTH, 422),
)
def list_archive(
    request: Request,
    gateway: GatewayDep,
    who: Viewer,
    building: str | None = None,
    period: Literal["weekly", "monthly"] | None = None,
) -> ArchiveList:
    if building is not None and not who.can_see(building):
        raise guard_of(request).forbidden(request.scope, who, "this key may not see that building")
    entries = gateway.archived_reports(who.buildings)
    return ArchiveList(
        reports=[
            ArchiveOut.of(e)
            for e in entries
            if (building is None or e.building == building) and (period is None or e.period == period)
        ]
    )


@router.get(
    ARCHIVE_PATH + "/{building}/{label}/{name}",
    response_class=FileResponse,
    summary="One archived file: a report's CSV or the period's HTML summary",
    responses={
        200: {
            "description": "the file",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **responses(*AUTH, 404),
    },
)
def archived_file(
    building: Annotated[str, Path(max_length=64)],
    label: Annotated[str, Path(max_length=16, description="the period, as `label` in the listing")],
    name: Annotated[str, Path(max_length=100)],
    gateway: GatewayDep,
    who: Viewer,
) -> FileResponse:
    found = gateway.archived_file(building, label, name) if who.can_see(building) else None
    if found is None:
        raise HTTPException(404, detail="no such archived file")
    path, archived = found
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[archived.format],
        filename=f"{building}-{label}-{name}",
        content_disposition_type="inline",
    )
