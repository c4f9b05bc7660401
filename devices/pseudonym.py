"""Badge credentials never leave the ingest edge in clear: they become keyed pseudonyms."""

from __future__ import annotations

import hashlib
import hmac

from devices.credentials import credential_text


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

    def pseudonym_of(self, value: object) -> str | None:
        """The pseudonym of a credential of any JSON type (see `credential_text`)."""
        text = credential_text(value)
        return None if text is None else self.pseudonym(text)
