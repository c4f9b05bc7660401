"""Error bodies: `{"detail": ...}` with the right status, documented in the OpenAPI
schema, and never an echo of more than a short preview of the input."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

# Of what a client sent, error bodies repeat at most this many characters per value...
PREVIEW_CHARS = 100
# ...and list at most this many problems.
MAX_ERRORS = 5


class ErrorOut(BaseModel):
    """Every error: a message, or (422) a list of problems with where they are."""

    detail: Any


_DESCRIPTIONS = {
    400: "the body could not be read as JSON text (not UTF-8)",
    401: "no key, or an unknown one (with keys configured)",
    403: "the key's role or building scope does not allow this",
    404: "not found, or in a building the key may not see",
    409: "the target cannot do this (a room without lights, a command the device does not take)",
    413: "request body larger than api.max_body_bytes",
    422: "invalid input: `detail` lists each problem (`loc`, `msg`, `type`, a short `input` preview)",
    429: "too many failed authentications from this address (see Retry-After)",
    503: "the store cannot be written just now (disk full or read-only): try again",
}
# What every route behind a key may answer.
AUTH = (401, 403, 429)
# What every route that reads a JSON body may answer besides (FastAPI answers 400 for
# bytes it cannot decode, 422 for malformed JSON or a body not of the model).
BODY = (400, 413, 422)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


def preview(value: Any) -> Any:
    """A short, JSON-safe stand-in for a value a client sent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if len(text := str(value)) <= PREVIEW_CHARS else _cut(text, PREVIEW_CHARS)
    if isinstance(value, str):
        return _cut(value, PREVIEW_CHARS)
    # Objects and lists (a whole body that is missing a field) are not repeated.
    return f"<{type(value).__name__}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with each problem's `loc`, `msg`, `type` and a preview of its `input`."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "loc": [preview(part) for part in error.get("loc", ())],
            "msg": _cut(str(error.get("msg", "")), 3 * PREVIEW_CHARS),
            "type": str(error.get("type", "")),
            "input": preview(error.get("input")),
        }
        for error in exc.errors()[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": problems}, status_code=422)
