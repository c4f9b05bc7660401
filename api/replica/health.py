"""Probes of a replica: alive, and ready when its broker connection is up (without it
the room states it serves may be stale)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.replica.deps import ReplicaDep
from api.routes.health import readiness
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Ready to serve: the broker is connected and the store was read",
    responses={503: {"model": Readiness}},
)
def readyz(replica: ReplicaDep, response: Response) -> Readiness:
    return readiness(replica.health_checks(), response)
