"""Liveness, readiness and Prometheus metrics.

The probes are open. /metrics holds every room's series, so with keys configured it
needs a key without a building scope (any role); Prometheus sends it as a bearer
token (see the README)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import SiteViewer
from api.deps import GatewayDep, HealthDep
from api.errors import AUTH, responses
from api.schemas import ClockOut, Health, Readiness, as_time

# The probes, which an API replica serves too.
probes_router = APIRouter(tags=["health"])
# The gateway's own: its clock and metrics.
router = APIRouter(tags=["health"])


@probes_router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@probes_router.get(
    "/readyz",
    response_model=Readiness,
    summary="Ready to serve live state: the broker is connected (degraded: a store fails)",
    responses={503: {"model": Readiness}},
)
def readyz(source: HealthDep, response: Response) -> Readiness:
    # Without the broker there is no live state (a replica's room states may be
    # stale): not ready. A failing store is reported but does not take the process
    # out of service: live state is right, only history waits in memory. An
    # InfluxDB outage loses nothing (the export buffers on disk): reported only.
    return readiness(source.health_checks(), response)


def readiness(checks: dict[str, bool], response: Response) -> Readiness:
    """The readiness answer for a process's checks: not ready (503) without the
    broker, degraded with a failing store."""
    if not checks["mqtt"]:
        response.status_code = 503
        return Readiness(status="not ready", checks=checks)
    return Readiness(status="ready" if checks["storage"] else "degraded", checks=checks)


@router.get(
    "/v1/clock",
    response_model=ClockOut,
    summary="The gateway's time and how far it got (a simulator in device time waits on it)",
    responses=responses(*AUTH),
)
async def clock(gateway: GatewayDep, who: SiteViewer) -> ClockOut:
    # Async: no thread-pool hop for a few counters (no lock, no I/O); a simulator at
    # --speed max asks this after every step, so its latency is the run's pace.
    status = gateway.clock_status()
    return ClockOut(
        gateway=status.gateway,
        mode="device" if status.mode == "device" else "system",
        now=datetime.fromtimestamp(status.now, UTC),
        ticked_at=as_time(status.ticked_at),
        messages_processed=status.messages_processed,
        commands_sent=status.commands_sent,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (with keys configured: a key without a building scope)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **responses(*AUTH)},
)
def metrics(request: Request, who: SiteViewer) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
