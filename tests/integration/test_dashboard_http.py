"""The dashboard over plain HTTP: the page and its files are public and self-contained
(no address outside the gateway, a Content-Security-Policy that says so), and serving
them opens nothing else: with keys configured every data route still wants a key."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.dashboard import STATIC_URL, static_dir
from simulators.broker import BrokerProcess
from tests.support import RunningGateway, start_gateway

KEY = "dashboard-viewer-key-0123"
# Every module the page loads, found from its imports (so a new file is checked too).
IMPORT = re.compile(r"""^import .* from "\./([a-z]+\.js)";$""", re.MULTILINE)


def assets() -> list[str]:
    root = static_dir()
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def keyed(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    config = {
        "site": {"rooms": [{"id": "orion", "building": "hq", "floor": 2, "x": 0, "y": 0, "w": 2}]},
        "api": {"keys": [{"name": "panel", "sha256": digest, "role": "viewer", "buildings": ["hq"]}]},
    }
    gw = start_gateway(mqtt_broker, config)
    try:
        yield gw
    finally:
        gw.stop()


def test_the_page_and_its_files_are_public_and_data_is_not(keyed: RunningGateway) -> None:
    page = httpx.get(f"{keyed.server.url}/", timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "'unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="static/dashboard/js/main.js"' in page.text
    for name in assets():
        response = httpx.get(f"{keyed.server.url}{STATIC_URL}/{name}", timeout=5)
        assert response.status_code == 200, name
        if name.endswith(".js"):
            assert "javascript" in response.headers["content-type"], name
    # Data: the key is still asked for, on every kind of route the page reads.
    for path in (
        "/v1/rooms",
        "/v1/rooms/orion/history?metric=co2",
        "/v1/devices",
        "/v1/alerts",
        "/v1/stream",
    ):
        assert httpx.get(f"{keyed.server.url}{path}", timeout=5).status_code == 401, path
    lights = httpx.post(f"{keyed.server.url}/v1/rooms/orion/lights", json={"on": True}, timeout=5)
    assert lights.status_code == 401
    # The page is read-only and serves nothing but its files.
    assert httpx.post(f"{keyed.server.url}/", timeout=5).status_code == 405
    escape = httpx.get(f"{keyed.server.url}{STATIC_URL}/../../app.py", timeout=5)
    assert escape.status_code == 404
    assert httpx.get(f"{keyed.server.url}{STATIC_URL}/js/missing.js", timeout=5).status_code == 404


def test_room_status_carries_the_plan_cell(keyed: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    room = httpx.get(f"{keyed.server.url}/v1/rooms/orion", headers=headers, timeout=5).json()
    assert room["plan"] == {"x": 0, "y": 0, "w": 2, "h": 1}


def test_the_files_name_no_address_outside_the_gateway() -> None:
    root = static_dir()
    loaded = {"index.html", "dashboard.css", "js/main.js"}
    for path in sorted(root.rglob("*.js")):
        loaded |= {f"js/{name}" for name in IMPORT.findall(path.read_text())}
    # Every file the page loads is in the package, and every file is loaded.
    assert loaded == set(assets())
    for name in assets():
        text = (root / name).read_text()
        urls = re.findall(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", text, re.IGNORECASE)
        assert [url for url in urls if "www.w3.org" not in url] == [], name
        assert ".innerHTML" not in text and "eval(" not in text, name


def test_the_files_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    patterns = re.search(r"^api = \[(.*)\]$", pyproject, re.MULTILINE)
    assert patterns is not None, "pyproject.toml lists no package data of api"
    globs = [p.strip().strip('"') for p in patterns.group(1).split(",")]
    root = static_dir().parents[1]  # the api package
    covered = {str(path.relative_to(root)) for pattern in globs for path in root.glob(pattern)}
    assert covered == {f"static/dashboard/{name}" for name in assets()}
