"""Alerts and their lifecycle: open -> acknowledged -> resolved, with who and when.

An alert's id is the sequence number of its `alert` event (as in `GET /v1/events`).
Operators acknowledge (someone is on it) and resolve (it is dealt with); resolving
an alert nobody acknowledged acknowledges it in the same instant. Who is the API
key's name, or "local" when no keys are configured (the API then serves loopback
only). A resolved alert stays resolved: another acknowledgement or resolution is a
409. Acknowledging an acknowledged alert changes nothing (the first acknowledgement
stays) and answers 200, so a retried request is harmless. Each change is audited
(`kind=audit`, actions `alert_ack`, `alert_resolve`, with the alert's room), so it is
also on the event stream and webhooks.

A key scoped to buildings sees, acknowledges and resolves only the alerts of rooms
in those buildings; any other alert is a 404, as a room of another building is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import ANONYMOUS_LOOPBACK, Operator, Principal, Viewer
from api.deps import GatewayDep
from api.errors import AUTH, BODY, responses
from api.schemas import as_time
from gateway.automation.alert_lifecycle import AlertView
from gateway.runtime.gateway import Gateway
from gateway.storage.alert_store import AlertStateName, AlreadyResolved

router = APIRouter(tags=["alerts"])

# Ids are SQLite integers.
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert event's sequence number")]
MAX_NOTE = 1000


class AlertOut(BaseModel):
    seq: int
    at: datetime | None
    kind: str
    room_id: str | None
    data: dict[str, Any]
    state: AlertStateName
    acked_at: datetime | None
    acked_by: str | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None

    @classmethod
    def of(cls, view: AlertView) -> AlertOut:
        e, life = view.event, view.lifecycle
        return cls(
            seq=e.seq,
            at=as_time(e.at),
            kind=e.kind,
            room_id=e.room_id,
            data=e.data,
            state=life.state,
            acked_at=as_time(life.acked_at),
            acked_by=life.acked_by,
            ack_note=life.ack_note,
            resolved_at=as_time(life.resolved_at),
            resolved_by=life.resolved_by,
            resolve_note=life.resolve_note,
        )


class AlertPage(BaseModel):
    # `events`, as GET /v1/events names its list: the same cursor and fields, plus the lifecycle.
    events: list[AlertOut]
    next_after: int


class AlertNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    note: str | None = Field(default=None, max_length=MAX_NOTE, description="why, what was done")


@router.get(
    "/v1/alerts",
    response_model=AlertPage,
    summary="Alerts (of the key's buildings) with their lifecycle, oldest first, after a cursor",
    responses=responses(*AUTH, 422),
)
def list_alerts(
    gateway: GatewayDep,
    who: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    room: str | None = None,
    state: Annotated[
        list[AlertStateName] | None,
        Query(description="only alerts in one of these states (repeat the parameter for several)"),
    ] = None,
) -> AlertPage:
    alerts = gateway.alerts_page(
        after=after, limit=limit, room_id=room, buildings=who.buildings, states=frozenset(state or ()) or None
    )
    return AlertPage(
        events=[AlertOut.of(view) for view in alerts], next_after=alerts[-1].event.seq if alerts else after
    )


def _visible(gateway: Gateway, who: Principal, alert_id: int) -> AlertView:
    view = gateway.alert(alert_id)
    if view is None or not (who.buildings is None or view.building in who.buildings):
        raise HTTPException(404, detail="alert not found")
    return view


@router.get(
    "/v1/alerts/{alert_id}",
    response_model=AlertOut,
    summary="One alert with its lifecycle",
    responses=responses(*AUTH, 404, 422),
)
def get_alert(alert_id: AlertId, gateway: GatewayDep, who: Viewer) -> AlertOut:
    return AlertOut.of(_visible(gateway, who, alert_id))


def _actor(who: Principal) -> str:
    return "local" if who is ANONYMOUS_LOOPBACK else who.name


def _already_resolved(exc: AlreadyResolved) -> HTTPException:
    life = exc.lifecycle
    when = as_time(life.resolved_at)
    at = when.isoformat().replace("+00:00", "Z") if when is not None else "?"
    return HTTPException(409, detail=f"alert already resolved (by {life.resolved_by} at {at})")


@router.post(
    "/v1/alerts/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge an alert (someone is on it); the body's note is optional",
    responses=responses(*AUTH, 404, 409, *BODY),
)
def acknowledge_alert(
    alert_id: AlertId, gateway: GatewayDep, who: Operator, body: AlertNoteIn | None = None
) -> AlertOut:
    _visible(gateway, who, alert_id)
    try:
        view = gateway.acknowledge_alert(alert_id, actor=_actor(who), note=body.note if body else None)
    except AlreadyResolved as exc:
        raise _already_resolved(exc) from None
    except LookupError:
        # Deleted by retention since `_visible` found it.
        raise HTTPException(404, detail="alert not found") from None
    return AlertOut.of(view)


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    summary="Resolve an alert (acknowledging it too if nobody had); the body's note is optional",
    responses=responses(*AUTH, 404, 409, *BODY),
)
def resolve_alert(
    alert_id: AlertId, gateway: GatewayDep, who: Operator, body: AlertNoteIn | None = None
) -> AlertOut:
    _visible(gateway, who, alert_id)
    try:
        view = gateway.resolve_alert(alert_id, actor=_actor(who), note=body.note if body else None)
    except AlreadyResolved as exc:
        raise _already_resolved(exc) from None
    except LookupError:
        # Deleted by retention since `_visible` found it.
        raise HTTPException(404, detail="alert not found") from None
    return AlertOut.of(view)
