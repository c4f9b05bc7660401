"""Webhook subscriptions (admin): signed deliveries of events through a persistent outbox.

The secret is write-only: it signs deliveries and is never returned. A key limited
to some buildings only sees, creates and deletes subscriptions within them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import Admin, Principal, guard_of
from api.deps import GatewayDep
from api.errors import AUTH, BODY, responses
from api.schemas import as_time
from gateway.automation.event_log import EventKind
from gateway.config import Identifier
from gateway.push.delivery import url_problem
from gateway.storage.webhook_store import Delivery, Subscription

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

EVENT_KINDS = frozenset(get_args(EventKind))


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http(s) URL that receives a POST per event")
    kinds: list[str] = Field(default=[], description="event kinds to deliver; empty: all")
    buildings: list[Identifier] = Field(
        default=[], description="only events of these buildings' rooms; empty: all the key may see"
    )
    secret: str = Field(
        min_length=16, max_length=256, description="signs every delivery (HMAC-SHA256); never returned"
    )

    @field_validator("url")
    @classmethod
    def _receiver(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - EVENT_KINDS)
        if unknown:
            raise ValueError(f"unknown kind; known: {', '.join(sorted(EVENT_KINDS))}")
        return kinds


class WebhookOut(BaseModel):
    id: str
    url: str
    kinds: list[str]
    buildings: list[str]
    status: Literal["active", "paused"]
    created_at: datetime | None
    created_by: str
    paused_at: datetime | None
    pause_reason: str | None
    consecutive_failures: int
    failing_since: datetime | None
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    delivered: int = Field(description="events delivered since the subscription was made")
    pending: int = Field(description="events waiting in the outbox")

    @classmethod
    def of(cls, s: Subscription) -> WebhookOut:
        return cls(
            id=s.id,
            url=s.url,
            kinds=list(s.kinds),
            buildings=list(s.buildings),
            status=s.status,
            created_at=as_time(s.created_at),
            created_by=s.created_by,
            paused_at=as_time(s.paused_at),
            pause_reason=s.pause_reason,
            consecutive_failures=s.failures,
            failing_since=as_time(s.failing_since),
            next_attempt_at=as_time(s.next_attempt_at) if s.failures else None,
            last_success_at=as_time(s.last_success_at),
            last_failure_at=as_time(s.last_failure_at),
            last_error=s.last_error,
            delivered=s.delivered,
            pending=s.pending,
        )


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]
    count: int


class DeliveryOut(BaseModel):
    id: int
    event_seq: int
    attempt: int
    at: datetime | None
    outcome: Literal["delivered", "failed", "expired"]
    status_code: int | None
    error: str | None
    duration_ms: float

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            event_seq=d.seq,
            attempt=d.attempt,
            at=as_time(d.at),
            outcome=d.outcome,
            status_code=d.status,
            error=d.error,
            duration_ms=round(d.duration * 1000, 3),
        )


class DeliveryList(BaseModel):
    webhook_id: str
    deliveries: list[DeliveryOut]


def _visible(who: Principal, subscription: Subscription) -> bool:
    """A scoped key sees a subscription only if it is limited to the key's buildings."""
    if who.buildings is None:
        return True
    return bool(subscription.buildings) and set(subscription.buildings) <= who.buildings


def _own(gateway: GatewayDep, who: Principal, webhook_id: str) -> Subscription:
    subscription = gateway.webhook(webhook_id)
    if subscription is None or not _visible(who, subscription):
        raise HTTPException(404, detail="webhook not found")
    return subscription


@router.get(
    "",
    response_model=WebhookList,
    summary="Webhook subscriptions (never their secrets)",
    responses=responses(*AUTH),
)
def list_webhooks(gateway: GatewayDep, who: Admin) -> WebhookList:
    hooks = [WebhookOut.of(s) for s in gateway.webhooks() if _visible(who, s)]
    return WebhookList(webhooks=hooks, count=len(hooks))


@router.post(
    "",
    response_model=WebhookOut,
    status_code=201,
    summary="Subscribe a URL to events (signed deliveries of events from now on)",
    responses=responses(*AUTH, *BODY),
)
def create_webhook(request: Request, body: WebhookIn, gateway: GatewayDep, who: Admin) -> WebhookOut:
    allowed = request.app.state.settings.push.webhooks.allowed_hosts
    if url_problem(body.url, allowed) is not None:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "url"),
                    "msg": "host not in push.webhooks.allowed_hosts",
                }
            ]
        )
    buildings = sorted(set(body.buildings))
    if who.buildings is not None:
        outside = sorted(set(buildings) - who.buildings)
        if outside:
            detail = "buildings outside this key's scope"
            raise guard_of(request).forbidden(request.scope, who, detail)
        # A scoped key's subscription is limited to what the key may see.
        buildings = buildings or sorted(who.buildings)
    kinds = sorted(set(body.kinds))
    return WebhookOut.of(gateway.create_webhook(body.url, kinds, buildings, body.secret, actor=who.name))


@router.get(
    "/{webhook_id}",
    response_model=WebhookOut,
    summary="One webhook subscription",
    responses=responses(*AUTH, 404),
)
def get_webhook(webhook_id: str, gateway: GatewayDep, who: Admin) -> WebhookOut:
    return WebhookOut.of(_own(gateway, who, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Unsubscribe (its outbox and log go too)",
    responses=responses(*AUTH, 404),
)
def delete_webhook(webhook_id: str, gateway: GatewayDep, who: Admin) -> Response:
    _own(gateway, who, webhook_id)
    if not gateway.delete_webhook(webhook_id, actor=who.name):
        raise HTTPException(404, detail="webhook not found")
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/resume",
    response_model=WebhookOut,
    summary="Deliver again to a paused subscription, starting with what waited meanwhile",
    # 413, 422: what any POST may get (a body, if one is sent, is checked first).
    responses=responses(*AUTH, 404, 413, 422),
)
def resume_webhook(webhook_id: str, gateway: GatewayDep, who: Admin) -> WebhookOut:
    _own(gateway, who, webhook_id)
    resumed = gateway.resume_webhook(webhook_id, actor=who.name)
    if resumed is None:
        raise HTTPException(404, detail="webhook not found")
    return WebhookOut.of(resumed)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="The subscription's delivery attempts, newest first",
    responses=responses(*AUTH, 404, 422),
)
def list_deliveries(
    webhook_id: str,
    gateway: GatewayDep,
    who: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    _own(gateway, who, webhook_id)
    return DeliveryList(
        webhook_id=webhook_id,
        deliveries=[DeliveryOut.of(d) for d in gateway.webhook_deliveries(webhook_id, limit)],
    )
