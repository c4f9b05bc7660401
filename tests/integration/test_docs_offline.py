"""/docs and /redoc on a network without internet: every file the pages load comes from the gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from simulators.broker import BrokerProcess
from tests.support import RunningGateway, start_gateway

# What a page makes the browser fetch: src/href attributes, Swagger UI's spec `url`,
# ReDoc's `spec-url`.
FETCHED = re.compile(r"""(?:\bsrc|\bhref|\bspec-url)\s*=\s*"([^"]*)"|\burl:\s*'([^']*)'""")
ANY_URL = re.compile(r"""[a-z][a-z0-9+.-]*://[^\s"'<>)]+|//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*""", re.I)
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture(scope="module")
def gw(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    running = start_gateway(mqtt_broker)
    try:
        yield running
    finally:
        running.stop()


def fetched(html: str) -> list[str]:
    return [a or b for a, b in FETCHED.findall(html)]


@pytest.mark.parametrize(
    ("page", "needs"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
def test_docs_pages_load_everything_from_the_gateway(gw: RunningGateway, page: str, needs: set[str]) -> None:
    response = gw.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # No absolute URL at all (no CDN, no Google fonts): only paths on this server.
    assert ANY_URL.findall(html) == []
    urls = fetched(html)
    assert {url.rsplit("/", 1)[-1] for url in urls} == needs, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = gw.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
        suffix = "." + url.rsplit(".", 1)[-1]
        assert CONTENT_TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])


def test_docs_assets_are_the_real_bundles(gw: RunningGateway) -> None:
    swagger_js = gw.get("/static/docs/swagger-ui-bundle.js").text
    assert "SwaggerUIBundle" in swagger_js
    assert ".swagger-ui" in gw.get("/static/docs/swagger-ui.css").text
    assert "Redoc" in gw.get("/static/docs/redoc.standalone.js").text
    assert gw.get("/static/docs/favicon.png").content.startswith(b"\x89PNG")


def test_only_the_local_docs_pages_are_routed(gw: RunningGateway) -> None:
    # The docs pages and their files stay out of the API's own schema.
    paths = gw.get("/openapi.json").json()["paths"]
    assert not any(path.startswith(("/docs", "/redoc", "/static")) for path in paths)
    assert gw.get("/static/docs/nothing-here.js").status_code == 404
    assert gw.get("/docs/oauth2-redirect").status_code == 200
