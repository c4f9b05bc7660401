"""Webhook signatures: HMAC-SHA256 of "<unix time>.<body>" with the subscription's secret.

The header `officegw-signature: t=<unix time>,v1=<hex digest>` lets a receiver check
both who sent the body and when (refusing old timestamps stops replays); README
"Webhooks" has the receiver's side.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "officegw-signature"


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the signature header for `body` sent at `timestamp` (Unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
