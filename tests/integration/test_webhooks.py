"""Webhooks over real HTTP, to receivers on 127.0.0.1 run by the test: signed deliveries
checked with the README's own verification code; every event exactly once after a
receiver outage with a gateway restart in between; a failing subscription paused,
reported and resumed; redirects and stalling receivers kept in bounds; the API's checks."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from simulators.broker import BrokerProcess, free_port
from tests.support import GatewayProcess, Publisher, RunningGateway, start_gateway, unique_prefix, wait_until

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-for-the-tests-0123456789"


def readme_verifier() -> Callable[..., bool]:
    """`verify_signature` exactly as the README shows it to receivers."""
    text = (ROOT / "README.md").read_text()
    blocks = [
        block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify_signature" in block
    ]
    assert len(blocks) == 1, "README has no (or several) verify_signature snippets"
    namespace: dict[str, Any] = {}
    exec(blocks[0], namespace)
    verify: Callable[..., bool] = namespace["verify_signature"]
    return verify


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST (headers, body) in `log`
    (shared with the receivers restarted on its port) and answers `status`."""

    def __init__(
        self, port: int = 0, log: list[tuple[dict[str, str], bytes]] | None = None, status: int = 200
    ) -> None:
        self.log: list[tuple[dict[str, str], bytes]] = log if log is not None else []
        self.status = status
        self.headers: dict[str, str] = {}
        self.stall = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.log.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.stall:
                    time.sleep(receiver.stall)
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in list(self.log)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


def subscribe(http: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/webhooks", json={"url": url, "secret": SECRET, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def site(building: str, rooms: int = 2, **push: Any) -> dict[str, Any]:
    return {
        "site": {"rooms": [{"id": f"r{i}", "building": building, "floor": 1} for i in range(rooms)]},
        "occupancy": {"vacancy_timeout": 3600},
        "push": {"webhooks": {"retry_min_delay": 0.1, "retry_max_delay": 0.5, **push}},
    }


def occupancy_events(http: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = http.get("/v1/events", params={"kind": "occupancy", "limit": 1000}).json()[
        "events"
    ]
    return events


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_delivery_is_signed_and_verified_by_the_readme_snippet(
    mqtt_broker: BrokerProcess,
    publisher: Publisher,
    receiver: Receiver,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    verify = readme_verifier()
    config = site("hq")
    if backend == "postgresql":  # subscriptions, outbox and log in the shared store
        config["storage"] = {"path": str(tmp_path / "gw.db"), "url": request.getfixturevalue("postgres_url")}
    gw = start_gateway(mqtt_broker, config)
    try:
        created = subscribe(gw.http, receiver.url, kinds=["occupancy"])
        assert "secret" not in created
        assert SECRET not in gw.get("/v1/webhooks").text
        assert created["status"] == "active" and created["kinds"] == ["occupancy"]

        publisher.publish(f"{gw.prefix}/hq/1/r0/r0-pir", {"occupancy": True})
        wait_until(lambda: receiver.log, 5.0, "a delivery")
        headers, body = receiver.log[0]
        document = orjson.loads(body)
        assert verify(SECRET, headers["officegw-signature"], body)
        assert not verify(SECRET, headers["officegw-signature"], body + b" ")
        assert not verify("another-secret-0123456789", headers["officegw-signature"], body)
        stale = "t=1000000000," + headers["officegw-signature"].split(",", 1)[1]
        assert not verify(SECRET, stale, body)

        (event,) = occupancy_events(gw.http)
        assert headers["officegw-event-id"] == document["id"] == f"{gw.settings.gateway.id}:{event['seq']}"
        assert headers["officegw-event-kind"] == "occupancy"
        assert headers["officegw-delivery-attempt"] == "1"
        assert headers["content-type"] == "application/json"
        assert (document["seq"], document["data"], document["room_id"]) == (event["seq"], event["data"], "r0")
        assert (document["building"], document["floor"]) == ("hq", "1")

        def state() -> dict[str, Any]:
            found: dict[str, Any] = gw.get(f"/v1/webhooks/{created['id']}").json()
            return found

        wait_until(
            lambda: state()["delivered"] == 1 and state()["pending"] == 0, 5.0, "recorded as delivered"
        )
        (attempt,) = gw.get(f"/v1/webhooks/{created['id']}/deliveries").json()["deliveries"]
        assert (attempt["outcome"], attempt["status_code"], attempt["event_seq"]) == (
            "delivered",
            200,
            event["seq"],
        )
        # Only the kinds asked for: the audit event of the subscription itself did not go.
        assert len(receiver.log) == 1
    finally:
        gw.stop()


def test_every_event_arrives_once_after_an_outage_with_a_gateway_restart(
    mqtt_broker: BrokerProcess, publisher: Publisher, tmp_path: Path
) -> None:
    verify = readme_verifier()
    prefix, port = unique_prefix(), free_port()
    building = f"b{uuid.uuid4().hex[:8]}"
    config = tmp_path / "officegw.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": f"hooks-{prefix}"},
                "mqtt": {"url": mqtt_broker.url, "topic_prefix": prefix},
                "api": {"host": "127.0.0.1", "port": port},
                "storage": {"path": str(tmp_path / "officegw.db")},
                **site(building, rooms=5),
            }
        )
    )
    gateway = GatewayProcess(config, tmp_path / "gateway.log", port)
    receiver = Receiver()
    topic = f"{prefix}/{building}/1/r{{}}/r{{}}-pir"
    try:
        gateway.start()
        hook = subscribe(gateway.http, receiver.url, kinds=["occupancy"])
        publisher.publish(topic.format(0, 0), {"occupancy": True})
        wait_until(lambda: receiver.log, 5.0, "the first delivery")

        receiver.stop()  # the receiver is down from here ...
        publisher.publish(topic.format(1, 1), {"occupancy": True})
        publisher.publish(topic.format(2, 2), {"occupancy": True})

        def failed() -> int:
            attempts = gateway.http.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
            return sum(1 for a in attempts if a["outcome"] == "failed")

        wait_until(lambda: failed() >= 2, 10.0, "failed attempts while the receiver is down")
        gateway.stop()  # ... the gateway restarts meanwhile ...
        assert gateway.proc is not None and gateway.proc.returncode == 0
        publisher.publish(topic.format(3, 3), {"occupancy": True})
        gateway.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        gateway.start()
        publisher.publish(topic.format(4, 4), {"occupancy": True})
        wait_until(lambda: len(occupancy_events(gateway.http)) == 5, 10.0, "five occupancy events")
        before = failed()
        wait_until(lambda: failed() > before, 10.0, "failed attempts after the restart")

        back = Receiver(port=receiver.port, log=receiver.log)  # ... and comes back.
        try:
            expected = [f"{gateway_id(config)}:{e['seq']}" for e in occupancy_events(gateway.http)]
            wait_until(
                lambda: {body["id"] for body in back.bodies()} == set(expected),
                15.0,
                "every event delivered",
                progress=lambda: [body["id"] for body in back.bodies()],
            )
            # The gateway has nothing left to send: whatever arrived is all that comes.
            wait_until(
                lambda: gateway.http.get(f"/v1/webhooks/{hook['id']}").json()["pending"] == 0,
                5.0,
                "outbox empty",
            )
            ids = [headers["officegw-event-id"] for headers, _ in back.log]
            assert ids == expected, "each event exactly once, in order"
            assert all(verify(SECRET, headers["officegw-signature"], body) for headers, body in back.log)
            assert {body["room_id"] for body in back.bodies()} == {f"r{i}" for i in range(5)}
            state = gateway.http.get(f"/v1/webhooks/{hook['id']}").json()
            assert (state["status"], state["pending"], state["delivered"]) == ("active", 0, 5)
            assert state["consecutive_failures"] == 0 and state["last_error"] is not None
        finally:
            back.stop()
    finally:
        gateway.stop()
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def gateway_id(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["gateway"]["id"])


def test_a_failing_subscription_is_paused_reported_and_resumed(
    mqtt_broker: BrokerProcess, publisher: Publisher, receiver: Receiver
) -> None:
    receiver.status = 500
    gw = start_gateway(
        mqtt_broker,
        site("hq", retry_min_delay=0.05, retry_max_delay=0.1, pause_after_failures=3, pause_after=0),
    )
    try:
        hook = subscribe(gw.http, receiver.url, kinds=["occupancy"])
        publisher.publish(f"{gw.prefix}/hq/1/r0/r0-pir", {"occupancy": True})
        wait_until(lambda: gw.get(f"/v1/webhooks/{hook['id']}").json()["status"] == "paused", 10.0, "paused")
        state = gw.get(f"/v1/webhooks/{hook['id']}").json()
        assert state["consecutive_failures"] == 3
        assert state["pause_reason"] == "HTTP 500" and state["paused_at"] is not None
        attempts = gw.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        assert [(a["outcome"], a["status_code"], a["attempt"]) for a in attempts] == [
            ("failed", 500, 3),
            ("failed", 500, 2),
            ("failed", 500, 1),
        ]
        wait_until(
            lambda: [a for a in gw.get("/v1/alerts").json()["events"] if a["data"].get("rule") == "webhooks"],
            5.0,
            "the alert",
        )
        (alert,) = [a for a in gw.get("/v1/alerts").json()["events"] if a["data"].get("rule") == "webhooks"]
        assert alert["data"]["subscription"] == hook["id"]
        assert gw.metric("officegw_webhook_subscriptions", 'status="paused"') == 1
        assert gw.metric("officegw_webhook_pauses_total") == 1
        assert gw.metric("officegw_webhook_deliveries_total", 'outcome="failed"') == 3
        # Paused, it still collects events; resumed, it delivers them in order.
        publisher.publish(f"{gw.prefix}/hq/1/r1/r1-pir", {"occupancy": True})
        wait_until(lambda: gw.get(f"/v1/webhooks/{hook['id']}").json()["pending"] == 2, 5.0, "two waiting")
        assert len(receiver.log) == 3, "a paused subscription is not tried"
        receiver.status = 204
        resumed = gw.http.post(f"/v1/webhooks/{hook['id']}/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        wait_until(lambda: gw.get(f"/v1/webhooks/{hook['id']}").json()["pending"] == 0, 5.0, "delivered")
        rooms = [body["room_id"] for body in receiver.bodies()]
        assert rooms == ["r0", "r0", "r0", "r0", "r1"]
        assert gw.metric("officegw_webhook_subscriptions", 'status="active"') == 1
        assert gw.metric("officegw_webhook_outbox_pending") == 0
    finally:
        gw.stop()


def test_redirects_are_not_followed_and_a_stalling_receiver_times_out(
    mqtt_broker: BrokerProcess, publisher: Publisher, receiver: Receiver
) -> None:
    elsewhere = Receiver()
    receiver.status = 307
    receiver.headers = {"location": elsewhere.url}
    stalling = Receiver()
    stalling.stall = 3.0
    gw = start_gateway(mqtt_broker, site("hq", timeout=0.5, retry_min_delay=5, retry_max_delay=5))
    try:
        redirected = subscribe(gw.http, receiver.url)
        stalled = subscribe(gw.http, stalling.url)
        publisher.publish(f"{gw.prefix}/hq/1/r0/r0-pir", {"occupancy": True})

        def first_attempt(hook: dict[str, Any]) -> dict[str, Any] | None:
            attempts = gw.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
            return attempts[-1] if attempts else None

        attempt = wait_until(lambda: first_attempt(redirected), 5.0, "the redirected attempt")
        assert attempt["outcome"] == "failed" and attempt["status_code"] == 307
        assert "redirects are not followed" in attempt["error"]
        attempt = wait_until(lambda: first_attempt(stalled), 5.0, "the stalled attempt")
        assert attempt["outcome"] == "failed" and attempt["status_code"] is None
        assert "Timeout" in attempt["error"]
        assert attempt["duration_ms"] < 2000
        assert elsewhere.log == []
    finally:
        gw.stop()
        elsewhere.stop()
        stalling.stop()


def key(name: str, secret: str, role: str, buildings: list[str] | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return {"name": name, "sha256": digest, "role": role, "buildings": buildings or []}


@pytest.fixture
def keyed(mqtt_broker: BrokerProcess) -> Iterator[RunningGateway]:
    config = {
        **site("hq"),
        "api": {
            "keys": [
                key("ops", "ops-key-0123456789", "admin"),
                key("hq-admin", "hq-admin-key-0123456789", "admin", ["hq"]),
                key("viewer", "viewer-key-0123456789", "viewer"),
            ]
        },
    }
    gw = start_gateway(mqtt_broker, config)
    try:
        yield gw
    finally:
        gw.stop()


def test_the_api_checks_urls_secrets_kinds_roles_and_scopes(
    keyed: RunningGateway, receiver: Receiver
) -> None:
    url = keyed.server.url

    def client(secret: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=5)

    with client("ops-key-0123456789") as ops, client("hq-admin-key-0123456789") as hq:
        with client("viewer-key-0123456789") as viewer:
            assert viewer.get("/v1/webhooks").status_code == 403
            assert (
                viewer.post("/v1/webhooks", json={"url": receiver.url, "secret": SECRET}).status_code == 403
            )
        for bad in (
            {"url": "ftp://127.0.0.1/hook", "secret": SECRET},
            {"url": "file:///etc/passwd", "secret": SECRET},
            {"url": "http://user:pw@127.0.0.1/hook", "secret": SECRET},
            {"url": "http:///hook", "secret": SECRET},
            {"url": receiver.url, "secret": "short"},
            {"url": receiver.url, "secret": SECRET, "kinds": ["nonsense"]},
            {"url": receiver.url, "secret": SECRET, "extra": 1},
            {"url": receiver.url},
        ):
            assert ops.post("/v1/webhooks", json=bad).status_code == 422, bad
        # A path served by several routes answers 405 with all of their methods.
        refused = ops.request("PUT", "/v1/webhooks")
        assert refused.status_code == 405
        assert set(refused.headers["allow"].split(", ")) == {"GET", "POST"}
        assert set(ops.request("PATCH", "/v1/webhooks/x").headers["allow"].split(", ")) == {"DELETE", "GET"}
        site_wide = subscribe(ops, receiver.url)
        assert site_wide["buildings"] == [] and site_wide["created_by"] == "ops"

        assert (
            hq.post(
                "/v1/webhooks", json={"url": receiver.url, "secret": SECRET, "buildings": ["annex"]}
            ).status_code
            == 403
        )
        mine = subscribe(hq, receiver.url)
        assert mine["buildings"] == ["hq"]
        # The scoped key sees only its own; the unscoped one sees both.
        assert [h["id"] for h in hq.get("/v1/webhooks").json()["webhooks"]] == [mine["id"]]
        assert hq.get(f"/v1/webhooks/{site_wide['id']}").status_code == 404
        assert hq.delete(f"/v1/webhooks/{site_wide['id']}").status_code == 404
        assert {h["id"] for h in ops.get("/v1/webhooks").json()["webhooks"]} == {mine["id"], site_wide["id"]}

        assert ops.delete(f"/v1/webhooks/{mine['id']}").status_code == 204
        assert ops.get(f"/v1/webhooks/{mine['id']}").status_code == 404
        assert ops.get(f"/v1/webhooks/{mine['id']}/deliveries").status_code == 404
        assert ops.delete(f"/v1/webhooks/{mine['id']}").status_code == 404
        audit = ops.get("/v1/events", params={"kind": "audit"}).json()["events"]
        assert [e["data"]["action"] for e in audit if e["data"]["action"].startswith("webhook")] == [
            "webhook_create",
            "webhook_create",
            "webhook_delete",
        ]
        assert SECRET not in ops.get("/v1/events", params={"kind": "audit"}).text
