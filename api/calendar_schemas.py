"""What a calendar import answers (`POST /v1/bookings/import`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# Skipped occurrences listed in a report at most (the count says how many there were).
MAX_SKIPPED_LISTED = 1_000


class SkippedOut(BaseModel):
    uid: str | None = Field(description="the event's UID (null: an event without one)")
    reason: str
    recurrence_id: str | None = Field(
        default=None, description="the occurrence (UTC `20261201T080000Z`, or a date) when one was skipped"
    )


class ImportReportOut(BaseModel):
    created: int = Field(description="bookings made")
    updated: int = Field(description="bookings moved, renamed or given to another room")
    unchanged: int = Field(description="occurrences already booked as the calendar says")
    cancelled: int = Field(
        description="bookings cancelled: STATUS:CANCELLED, or gone from a series (EXDATE, a shorter rule)"
    )
    skipped: list[SkippedOut] = Field(
        description=f"what was not booked and why (unknown room, overlap): at most {MAX_SKIPPED_LISTED:,}"
    )
    skipped_count: int = Field(description="how many were skipped in all")
    changed: bool = Field(description="false when the import changed nothing (a re-import of the same file)")
    occurrences: int = Field(description="occurrences found in the window")
    limited: bool = Field(
        description="the occurrence limit (bookings.import_max_occurrences) or the time budget left some out"
    )
    start: datetime = Field(description="the window imported: from now...")
    end: datetime = Field(description="...to now + bookings.import_horizon days")
