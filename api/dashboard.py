"""The facilities dashboard at `/`: one HTML page and its scripts, served from the package.

The page and its assets hold no data and are public; everything it shows comes
from the API with the browser's key, under the same authentication, roles and
building scopes as any other client (see api.auth). The files are plain HTML, CSS
and JavaScript modules: nothing to build, nothing loaded from elsewhere, which the
Content-Security-Policy of the page enforces (a site network may have no internet).
"""

from __future__ import annotations

import os
from importlib.resources import files
from os import PathLike
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC_URL = "/static/dashboard"
# Everything from the gateway itself; scripts and styles from files only (no inline
# code, so injected markup could not run), no framing by other sites.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is small and changes with the installed version: always revalidate.
    "Cache-Control": "no-cache",
}


def static_dir() -> Path:
    directory = files("api") / "static" / "dashboard"
    # StaticFiles serves from disk; pip installs packages unpacked, never zipped.
    if not isinstance(directory, Path) or not directory.is_dir():
        raise RuntimeError(f"the dashboard's files are not at {directory}")
    return directory


class _DashboardFiles(StaticFiles):
    """The assets, with the page's headers (a script must not be sniffed as anything else)."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PAGE_HEADERS)
        return response


def mount_dashboard(app: FastAPI) -> None:
    """`GET /` (the page) and its assets under STATIC_URL."""
    directory = static_dir()
    index = directory / "index.html"
    app.mount(STATIC_URL, _DashboardFiles(directory=directory), name="dashboard-static")

    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.add_api_route("/", dashboard, methods=["GET"], include_in_schema=False, response_class=FileResponse)
