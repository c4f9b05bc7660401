"""Buckets in the site's time zone: hours, days and weeks as people there live them,
across clock changes; looking a time up among a window's buckets gives the bucket its
local time says."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.reports.site_time import Buckets, bucket_label, bucket_of
from gateway.reports.table import Bucket

BERLIN = ZoneInfo("Europe/Berlin")


def local(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def test_the_day_the_clocks_go_back_is_25_hours() -> None:
    day = bucket_of(local("2026-10-25T12:00"), Bucket.DAY, BERLIN)
    following = bucket_of(local("2026-10-26T12:00"), Bucket.DAY, BERLIN)
    assert day is not None and following is not None
    assert following - day == 25 * 3600
    assert str(bucket_label(day, BERLIN)) == "2026-10-25 00:00:00+02:00"


def test_the_repeated_hour_is_two_buckets() -> None:
    first = local("2026-10-25T02:30")  # +02:00, the first time round
    second = first + 3600  # 02:30 again, +01:00
    hour = bucket_of(first, Bucket.HOUR, BERLIN)
    assert hour is not None and bucket_of(second, Bucket.HOUR, BERLIN) == hour + 3600


def test_weeks_start_on_monday() -> None:
    week = bucket_of(local("2026-11-29T23:59"), Bucket.WEEK, BERLIN)
    assert str(bucket_label(week, BERLIN)) == "2026-11-23 00:00:00+01:00"


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
)
@pytest.mark.parametrize("bucket", [Bucket.HOUR, Bucket.DAY, Bucket.WEEK, Bucket.NONE])
def test_looking_up_among_the_buckets_agrees_with_local_time(zone: str, bucket: Bucket) -> None:
    tz = ZoneInfo(zone)
    # Three weeks around a clock change in each hemisphere's spring or autumn.
    for first in ("2026-03-20T05:17", "2026-09-25T05:17", "2026-10-20T05:17"):
        start = local(first, tz)
        end = start + 21 * 86_400
        buckets = Buckets(start, end, bucket, tz)
        for ts in range(int(start), int(end), 7 * 60 + 13):
            assert buckets.of(ts) == bucket_of(ts, bucket, tz), (zone, bucket, ts)
