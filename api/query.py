"""Query parameters held to what the OpenAPI schema says of them.

A query parameter that takes one value must be given once: `?start=a&start=b` is
refused (422) rather than read as its last value. Which parameters take a list (such
as `features`) is what the OpenAPI schema documents, so every route, whenever it was
added, is held to its own documentation. Like the body limit, this is checked before
authentication: it looks at nothing but the request line.

A time in a query (`start`, `end`) is a `QueryTime`: ISO 8601, as its schema says
(`format: date-time`), never a number read as epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError


def _not_a_number(value: Any) -> Any:
    """Before pydantic's own datetime parsing, which reads `0.5` or `1700000000` as
    epoch seconds: a number, or a string of one, is refused."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    raise PydanticCustomError(
        "iso8601_time",
        "expected an ISO 8601 time such as 2026-12-01T09:00:00Z (UTC without a zone), not a number",
    )


def _in_utc(value: datetime) -> datetime:
    """A time without a zone is UTC, the API's time zone; one with is converted to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("datetime_range", "outside the years 1 to 9999 in UTC") from None


# A query time: ISO 8601 (a time without a zone is UTC), in UTC once read; numbers are
# a 422. Its schema stays `{"type": "string", "format": "date-time"}`.
QueryTime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_in_utc)]

# (path template, method) -> the names of its query parameters that take one value.
SingleValued = dict[tuple[str, str], frozenset[str]]


def _takes_a_list(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_takes_a_list(option) for option in schema.get("anyOf", []))


def single_valued_parameters(openapi: dict[str, Any]) -> SingleValued:
    found: SingleValued = {}
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            found[(path, method.upper())] = frozenset(
                parameter["name"]
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query" and not _takes_a_list(parameter.get("schema", {}))
            )
    return found


def _single_valued(app: FastAPI) -> SingleValued:
    known: SingleValued | None = getattr(app.state, "single_valued_query", None)
    if known is None:
        # The schema is built once (FastAPI caches it); so is this.
        known = app.state.single_valued_query = single_valued_parameters(app.openapi())
    return known


async def one_value_each(request: Request) -> None:
    """An app-wide dependency: 422 for a one-value query parameter given more than once."""
    query = request.query_params
    if len(query.multi_items()) == len(query):
        # No name given twice: nothing to refuse, and no need of the OpenAPI schema,
        # whose first build (~0.2 s for this API) would otherwise fall on the first
        # request after a start, a readiness probe's.
        return
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return
    names = _single_valued(request.app).get((path, request.method), frozenset())
    repeated = [name for name in names if len(request.query_params.getlist(name)) > 1]
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "multiple_values",
                    "loc": ("query", name),
                    "msg": "takes one value, given more than once",
                    "input": request.query_params.getlist(name),
                }
                for name in sorted(repeated)
            ]
        )
