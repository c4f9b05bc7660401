"""What a standby gateway serves while it waits for its shard's lock: the probes and
/metrics, nothing else. It has no gateway yet (it must not open the history or
connect to the broker before it holds the lock), so every other path is 404 and
/readyz says `standby` with 503: a load balancer keeps it out of rotation."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from api.auth import AuthGuard, SiteViewer
from api.errors import AUTH, responses
from api.schemas import Health, Readiness
from gateway.config import Settings
from gateway.logs import kv
from gateway.runtime.shard_role import ShardCollector, ShardRole

log = logging.getLogger("officegw.audit")


def _audit_to_log(actor: str, action: str, room_id: str | None, **detail: object) -> None:
    # The events store is the history's file, which a standby must not open: refusals
    # of /metrics requests are logged only.
    log.info(kv("audit", actor=actor, action=action, room=room_id, **detail))


def create_standby_app(settings: Settings, role: ShardRole) -> FastAPI:
    app = FastAPI(title="officegw (standby)", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.guard = AuthGuard(settings.api, _audit_to_log)
    registry = CollectorRegistry()
    registry.register(ShardCollector(role))
    app.state.metrics = registry

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, status_code=503)
    def readyz() -> Readiness:
        return Readiness(status="standby", checks={"shard_lock": False})

    @app.get("/metrics", response_class=Response, responses=responses(*AUTH))
    def metrics(request: Request, who: SiteViewer) -> Response:
        return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)

    return app
