"""The replica behind the routes, from `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.replica.replica import Replica


async def get_replica(request: Request) -> Replica:
    replica: Replica = request.app.state.replica
    return replica


ReplicaDep = Annotated[Replica, Depends(get_replica)]
