"""The rules in force, hot reload, and why a room's occupancy is what it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from api.auth import SiteAdmin, Viewer
from api.deps import GatewayDep
from api.errors import AUTH, ErrorOut, responses
from api.schemas import as_time
from gateway.runtime.gateway import RulesInForce
from rules.engine import RulesError

router = APIRouter(tags=["rules"])


class RuleOut(BaseModel):
    name: str
    description: str
    priority: str
    enabled: bool
    trigger: str
    conditions: str | None
    actions: list[str]
    last_fired: datetime | None


class RuleList(BaseModel):
    source: str
    rules: list[RuleOut]
    count: int


def _rules(in_force: RulesInForce, *, site_wide: bool) -> RuleList:
    rule_set, memory = in_force.rules, in_force.memory
    rules = [
        RuleOut(
            name=info.name,
            description=info.description,
            priority=info.priority.name.lower(),
            enabled=info.enabled,
            trigger=info.trigger,
            conditions=info.conditions,
            actions=list(info.actions),
            # When a rule last fired, in any building: for keys that see every building.
            last_fired=as_time(memory.last_fired(info.name)) if site_wide else None,
        )
        for info in rule_set.rules
    ]
    return RuleList(source=rule_set.source, rules=rules, count=len(rules))


@router.get(
    "/v1/rules",
    response_model=RuleList,
    summary="Rules in force, with their last firing (null for keys scoped to buildings)",
    responses=responses(*AUTH),
)
def list_rules(gateway: GatewayDep, who: Viewer) -> RuleList:
    return _rules(gateway.rules_in_force(), site_wide=who.buildings is None)


@router.post(
    "/v1/rules/reload",
    response_model=RuleList,
    summary="Reload the rules file (an admin key without a building scope); an invalid file is "
    "refused (422) and the old rules stay",
    responses={
        **responses(*AUTH, 413),
        422: {"model": ErrorOut, "description": "every problem of the file, with its path"},
    },
)
def reload_rules(gateway: GatewayDep, who: SiteAdmin) -> RuleList:
    try:
        in_force = gateway.reload_rules(actor=who.name)
    except RulesError as exc:
        raise HTTPException(422, detail=exc.problems) from None
    except OSError as exc:
        raise HTTPException(422, detail=[f"cannot read rules file: {exc.strerror or exc}"]) from None
    return _rules(in_force, site_wide=True)


@router.get(
    "/v1/rooms/{room_id}/occupancy/explain",
    summary="The evidence, timers and reasoning behind a room's occupancy",
    responses=responses(*AUTH, 404, 422),
)
def explain_occupancy(room_id: str, gateway: GatewayDep, who: Viewer) -> dict[str, Any]:
    room = gateway.room(room_id)
    explanation = None
    if room is not None and who.can_see(room.config.building):
        explanation = gateway.explain_occupancy(room_id)
    if explanation is None:
        raise HTTPException(404, detail="room not found")
    explained: dict[str, Any] = _iso_times(explanation)
    return explained


# Keys of the explanation that hold instants (epoch seconds in the pure core).
_INSTANTS = frozenset(
    {"since", "at", "last_seen", "last_granted", "cleared_at", "vacancy_deadline", "hold_until", "vacant_at"}
)


def _iso_times(value: Any, key: str = "") -> Any:
    """The explanation with every instant as ISO 8601 UTC, as everywhere in the API."""
    if isinstance(value, dict):
        return {k: _iso_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_times(item) for item in value]
    if key in _INSTANTS and isinstance(value, int | float) and not isinstance(value, bool):
        moment = as_time(value)
        return moment.isoformat().replace("+00:00", "Z") if moment else None
    return value
