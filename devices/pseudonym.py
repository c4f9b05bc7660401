"""Badge credentials never leave the ingest edge in clear: they become keyed pseudonyms."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonymizer:
    """HMAC-SHA256 of a credential under a site key.

    A keyed hash (not a bare SHA-256) so that nobody holding the pseudonyms can
    confirm a guessed badge id without the key. Same key, same pseudonym: events of
    one badge stay linkable for audits.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def pseudonym(self, credential: str) -> str:
        digest = hmac.new(self._key, credential.encode(), hashlib.sha256).hexdigest()
        return f"cred-{digest[:16]}"
