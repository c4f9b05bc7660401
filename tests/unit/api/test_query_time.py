"""`QueryTime`: a query time is ISO 8601, never a number read as epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from api.query import QueryTime

TIME = TypeAdapter(QueryTime)


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1", "+5", "1e3", "20261201", " 7 ", "nan", 0.5, 17])
def test_numbers_are_refused_with_a_word_on_iso_8601(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        TIME.validate_python(value)
    (problem,) = refused.value.errors()
    assert problem["type"] == "iso8601_time"
    assert "ISO 8601" in problem["msg"]


def test_iso_8601_is_read_in_utc() -> None:
    nine = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert TIME.validate_python("2026-12-01T09:00:00Z") == nine
    assert TIME.validate_python("2026-12-01T10:00:00+01:00") == nine
    assert TIME.validate_python("2026-12-01T10:00:00+01:00").tzinfo is UTC
    # Without a zone: UTC, the API's time zone.
    assert TIME.validate_python("2026-12-01T09:00:00") == nine
    assert TIME.validate_python(datetime(2026, 12, 1, 10, tzinfo=timezone(timedelta(hours=1)))) == nine


def test_a_time_outside_what_utc_can_hold_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        TIME.validate_python("0001-01-01T00:00:00+01:00")
    assert refused.value.errors()[0]["type"] == "datetime_range"
    with pytest.raises(ValidationError):
        TIME.validate_python("2026-12-01T25:00:00Z")


def test_the_schema_stays_a_date_time_string() -> None:
    assert TIME.json_schema() == {"type": "string", "format": "date-time"}
