"""Typed dependencies: the pieces of the app that routes need, taken from `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.runtime.gateway import Gateway


async def get_gateway(request: Request) -> Gateway:
    # A coroutine, so FastAPI does not hand it to a worker thread (see api.auth.principal).
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
