"""Bearer-key authentication and roles (viewer < booking < operator < admin).

With no keys configured the API has no authentication; the config then refuses
to bind anything but loopback (see `Settings`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gateway.config import ApiKey

ROLE_RANK = {"viewer": 0, "booking": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    # None: every building.
    buildings: frozenset[str] | None

    def can_see(self, building: str) -> bool:
        return self.buildings is None or building in self.buildings


ANONYMOUS_LOOPBACK = Principal("loopback", "admin", None)


def authenticate(keys: list[ApiKey], authorization: str | None) -> Principal:
    if not keys:
        return ANONYMOUS_LOOPBACK
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing bearer key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
    for key in keys:
        if hmac.compare_digest(digest, key.sha256.lower()):
            return Principal(key.name, key.role, frozenset(key.buildings) if key.buildings else None)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail="unknown API key", headers={"WWW-Authenticate": "Bearer"}
    )


def principal(request: Request) -> Principal:
    return authenticate(request.app.state.settings.api.keys, request.headers.get("authorization"))


def require(role: str) -> object:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if ROLE_RANK[who.role] < ROLE_RANK[role]:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"needs role {role!r}; key has {who.role!r}"
            )
        return who

    return Depends(check)


Viewer = Annotated[Principal, require("viewer")]
Operator = Annotated[Principal, require("operator")]
Admin = Annotated[Principal, require("admin")]
