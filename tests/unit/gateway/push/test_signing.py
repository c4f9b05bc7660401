"""Webhook signatures, checked by the code the README gives receivers."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.push.signing import signature

ROOT = Path(__file__).resolve().parents[4]
SECRET = "0123456789abcdef-secret"
BODY = b'{"id":"gw:1","seq":1,"kind":"occupancy"}'


def readme_verifier() -> Callable[..., bool]:
    text = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify_signature" in b]
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    verify: Callable[..., bool] = namespace["verify_signature"]
    return verify


def test_the_format() -> None:
    header = signature(SECRET, BODY, 1_700_000_000)
    digest = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


def test_the_readme_snippet_accepts_a_signature_and_refuses_everything_else() -> None:
    verify = readme_verifier()
    now = int(time.time())
    header = signature(SECRET, BODY, now)
    assert verify(SECRET, header, BODY)
    assert not verify(SECRET, header, BODY.replace(b"occupancy", b"alert"))
    assert not verify(SECRET + "x", header, BODY)
    assert not verify(SECRET, signature(SECRET, BODY, now - 3600), BODY), "a replayed old delivery"
    assert verify(SECRET, signature(SECRET, BODY, now - 3600), BODY, tolerance=7200)
    for garbage in ("", "t=abc,v1=00", "v1=00", f"t={now}", "nonsense"):
        assert not verify(SECRET, garbage, BODY), garbage
