"""/docs and /redoc without the internet: Swagger UI and ReDoc served by the gateway itself.

FastAPI's own pages load their JavaScript and CSS from a CDN, so on a site network
with no way out they stay blank. This follows FastAPI's recipe "Self-hosting
JavaScript and CSS for docs": the same pages, pointing at files under
`STATIC_URL`. The files come from the `fastapi-offline` package (Swagger UI's
bundle and CSS, ReDoc's standalone bundle, FastAPI's favicon, with their licences);
we use its files only, not its app factory.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Route

STATIC_URL = "/static/docs"
ASSETS = {
    "swagger_js": "swagger-ui-bundle.js",
    "swagger_css": "swagger-ui.css",
    "redoc_js": "redoc.standalone.js",
    "favicon": "favicon.png",
}


def static_dir() -> Path:
    """The asset files, in the installed `fastapi-offline` package."""
    directory = files("fastapi_offline") / "static"
    # StaticFiles serves from disk; pip installs packages unpacked, never zipped.
    if not isinstance(directory, Path) or not directory.is_dir():
        raise RuntimeError(f"fastapi-offline's static files not found at {directory}")
    return directory


def mount_offline_docs(app: FastAPI) -> None:
    """Replaces the CDN-backed pages FastAPI put at `app.docs_url` and `app.redoc_url`
    (where the app has them) with the same pages on local files under `STATIC_URL`."""
    if not app.openapi_url:
        return
    openapi_url = app.openapi_url
    pages = {url for url in (app.docs_url, app.redoc_url) if url}
    # FastAPI added its pages when the app was built; the first matching route wins.
    app.router.routes[:] = [
        route for route in app.router.routes if not (isinstance(route, Route) and route.path in pages)
    ]
    app.mount(STATIC_URL, StaticFiles(directory=static_dir()), name="docs-static")

    def urls(request: Request) -> tuple[str, dict[str, str]]:
        # Behind a proxy that strips a prefix, every URL the page loads needs it back.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return root, {key: f"{root}{STATIC_URL}/{name}" for key, name in ASSETS.items()}

    if app.docs_url:

        async def swagger_ui(request: Request) -> HTMLResponse:
            root, asset = urls(request)
            redirect = app.swagger_ui_oauth2_redirect_url
            return get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=asset["swagger_js"],
                swagger_css_url=asset["swagger_css"],
                swagger_favicon_url=asset["favicon"],
                oauth2_redirect_url=root + redirect if redirect else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

        app.add_route(app.docs_url, swagger_ui, include_in_schema=False)

    if app.redoc_url:

        async def redoc(request: Request) -> HTMLResponse:
            root, asset = urls(request)
            return get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=asset["redoc_js"],
                redoc_favicon_url=asset["favicon"],
                with_google_fonts=False,
            )

        app.add_route(app.redoc_url, redoc, include_in_schema=False)
