from __future__ import annotations

import time

import pytest

from devices.credentials import (
    CREDENTIAL_KEYS,
    HINTS,
    credential_text,
    is_credential_key,
    redact_text,
    scrub,
)
from devices.dialects.base import DecodeError
from devices.dialects.native import decode_state
from devices.pseudonym import Pseudonymizer


@pytest.mark.parametrize(
    "key",
    [
        "credential",
        "Credential",
        "CREDENTIAL",
        "card_id",
        "Card-ID",
        "badge id",
        "\uff23\uff32\uff25\uff24\uff25\uff2e\uff34\uff29\uff21\uff2c",  # fullwidth
        "UID",
    ],
)
def test_credential_keys_whatever_the_spelling(key: str) -> None:
    assert is_credential_key(key)


@pytest.mark.parametrize("key", ["co2", "access", "occupancy", "credit", "cards_played", "linkquality"])
def test_other_keys(key: str) -> None:
    assert not is_credential_key(key)


def test_every_key_has_a_hint() -> None:
    """The cheap first look of `redact_text` relies on it."""
    assert all(any(hint in key for hint in HINTS) for key in CREDENTIAL_KEYS)


def test_a_credential_of_any_type_becomes_text() -> None:
    assert credential_text("04A1") == "04A1"
    assert credential_text(12345678) == "12345678"
    assert credential_text({"b": 1, "a": "x"}) == '{"a":"x","b":1}'
    assert credential_text(["x"]) == '["x"]'
    assert credential_text(None) is None
    pseudonyms = Pseudonymizer(b"k")
    assert pseudonyms.pseudonym_of(12345678) == pseudonyms.pseudonym_of("12345678")


def test_the_payload_model_takes_any_credential_type() -> None:
    assert decode_state(b'{"credential": 12345678}').credential == "12345678"
    assert decode_state(b'{"credential": {"id": "X"}}').credential == '{"id":"X"}'
    with pytest.raises(DecodeError) as error:
        decode_state(b'{"credential": "' + b"x" * 300 + b'"}')
    assert error.value.reason == "out_of_range"


def test_scrub_replaces_nested_credentials_and_shares_the_rest() -> None:
    untouched = {"a": [1, {"b": 2}]}
    assert scrub(untouched, str.upper) is untouched
    value = {"reader": {"Card_ID": "x", "n": 1}, "list": [{"uid": "y"}, 3]}
    assert scrub(value, lambda v: "P") == {"reader": {"Card_ID": "P", "n": 1}, "list": [{"uid": "P"}, 3]}
    assert value["reader"]["Card_ID"] == "x"  # a copy, not changed in place


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"co2": -5}', '{"co2": -5}'),
        ('{"credential": "04A1", "battery": 500}', '{"credential": "<redacted>", "battery": 500}'),
        ('{"credential": 12345678, "x": 1}', '{"credential": "<redacted>", "x": 1}'),
        ('{"credential": {"id": "04A1", "n": [1, "}"]}, "x": 1}', '{"credential": "<redacted>", "x": 1}'),
        ('{"cred\\u0065ntial": "04A1"}', '{"cred\\u0065ntial": "<redacted>"}'),
        ('{"Card_ID":"04A1"}', '{"Card_ID":"<redacted>"}'),
        ("{credential: 04A1, x: 1}", '{credential: "<redacted>", x: 1}'),
        ("credential=04A1&x=1", 'credential="<redacted>"&x=1'),
        ('{"credential": "04A1', '{"credential": "<redacted>"'),
        ('{"credential": {"id": "04A1"', '{"credential": "<redacted>"'),
        ('"{\\"credential\\": \\"04A1\\"}"', '"<redacted>"'),
        ('{"note": "my badge 04A1"}', '{"note": "<redacted>"}'),
        ("credential 04A1", '"<redacted>"'),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert "04A1" not in redact_text(text)


def test_redact_text_stays_cheap_on_junk() -> None:
    junk = ['\\"' * 120, '"a' * 120, "'\\''" * 60, "[" * 240, '"card:' * 40]
    started = time.perf_counter()
    for text in junk:
        redact_text(text)
    # Linear scans of 240 characters; a quadratic one took seconds on these.
    assert time.perf_counter() - started < 0.5
