"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import GatewayDep
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Ready to serve live state: the broker is connected",
    responses={503: {"model": Readiness}},
)
def readyz(gateway: GatewayDep, response: Response) -> Readiness:
    checks = {"mqtt": gateway.ready}
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(status="ready" if ready else "not ready", checks=checks)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
