"""The pure helpers of the shared SQL: placeholders for psycopg, URLs without passwords."""

from __future__ import annotations

from gateway.storage.postgres_store import redacted
from gateway.storage.sql import postgres_text


def test_placeholders_become_psycopgs_and_percent_signs_stay_literal() -> None:
    assert postgres_text("SELECT a FROM t WHERE b = ? AND c LIKE 'x%' LIMIT ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%' LIMIT %s"
    )


def test_a_url_is_shown_without_its_password() -> None:
    assert redacted("postgresql://gw:s3cret@db:5432/officegw") == "postgresql://gw:***@db:5432/officegw"
    assert redacted("postgresql://db/officegw") == "postgresql://db/officegw"
