"""Which payload keys carry badge ids, and how their values are kept out of sight.

A badge id may come under `credential` or under another spelling of it (any
case, `_`/`-`/space separators, JSON escapes in the key), under a common alias
(`card_id`, `badge`, `uid`, ...), as any JSON type (a number, an object), and
at any depth. Accepted messages get keyed pseudonyms (`Pseudonymizer`); the
previews of rejected messages get `"<redacted>"`.

Pure functions over decoded values and text: no key, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

# Key names (normalised: NFKC, case-folded, letters and digits only) that carry a
# badge id, a card number or a PIN. Over-inclusive on purpose: a pseudonym where a
# device meant something harmless costs little; a badge id in clear is a leak.
CREDENTIAL_KEYS = frozenset(
    {
        "credential",
        "credentials",
        "badge",
        "badgeid",
        "badgeno",
        "badgenumber",
        "card",
        "cardid",
        "cardno",
        "cardnumber",
        "rfid",
        "rfidtag",
        "rfiduid",
        "nfcid",
        "nfcuid",
        "tagid",
        "uid",
        "pin",
        "pincode",
        "accesscode",
        "actioncode",
    }
)
REDACTED = "<redacted>"
# Every key above contains one of these: text with no backslash (no escapes) and
# none of them (once normalised and stripped of separators) holds no credential key.
HINTS = ("cred", "badge", "card", "rfid", "nfc", "tag", "uid", "pin", "code")


@lru_cache(maxsize=4096)
def is_credential_key(key: str) -> bool:
    """Whether a (decoded) key names a credential, whatever its case and separators."""
    folded = unicodedata.normalize("NFKC", key).casefold()
    return "".join(ch for ch in folded if ch.isalnum()) in CREDENTIAL_KEYS


def credential_text(value: object) -> str | None:
    """The text a credential is pseudonymised from, whatever its JSON type: a
    string as is, a number as its decimal text (so `12345678` and `"12345678"` are
    the same badge), an object or array as canonical JSON. None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dict | list):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return str(value)


def scrub(value: Any, replace: Callable[[Any], Any]) -> Any:
    """`value` with every credential-like key's value (at any depth) put through
    `replace`; containers without one are returned as they are."""
    if isinstance(value, dict):
        out: dict[str, Any] | None = None
        for key, item in value.items():
            new = replace(item) if is_credential_key(key) else scrub(item, replace)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [scrub(item, replace) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


# Text redaction (previews of rejected payloads, valid JSON or not).
#
# A token is a double- or single-quoted string (escapes allowed; running to the
# end of the text when it is not closed, which keeps the scan linear) or a bare
# word. A token that decodes to a credential-like key and is followed by `:` or
# `=` has its value blanked (a string, a bracketed object/array, or a bare run up
# to the next separator; to the end of the text when it never ends). Any other
# credential-like token blanks everything after it: in text that is not JSON we
# cannot tell where its value ends. A quoted string holding a credential (JSON
# inside a JSON string) is blanked whole.
_TOKEN = re.compile(r""""(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^\s"'{}\[\]:=,;&]+""", re.DOTALL)
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?""", re.DOTALL)
_NOT_ALNUM = re.compile(r"[\W_]+")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SEPARATOR = re.compile(r"\s*[:=]")
_BARE_END = re.compile(r"[\s,;&}\]]")


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES.get(code, code)

    return _ESCAPE.sub(one, text) if "\\" in text else text


def _value_end(text: str, start: int) -> int:
    """Where the value starting at or after `start` ends (len(text) if it never does)."""
    i = start
    while i < len(text) and text[i].isspace():
        i += 1
    if i == len(text):
        return i
    if text[i] in "\"'":
        return _STRING.match(text, i).end()  # type: ignore[union-attr]  # a quote always matches
    if text[i] in "{[":
        depth = 0
        while i < len(text):
            ch = text[i]
            if ch in "\"'":
                i = _STRING.match(text, i).end()  # type: ignore[union-attr]
                continue
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return len(text)
    end = _BARE_END.search(text, i)
    return end.start() if end else len(text)


def _may_hold_credential(text: str) -> bool:
    """A cheap first look: most rejected payloads mention no credential at all."""
    if "\\" in text:
        return True  # escapes may spell a key: the scan decodes them token by token
    probe = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", text).casefold())
    return any(hint in probe for hint in HINTS)


def redact_text(text: str) -> str:
    """`text` with the values of credential-like keys replaced by `"<redacted>"`."""
    if not _may_hold_credential(text):
        return text
    out: list[str] = []
    done = 0
    pos = 0
    while True:
        token = _TOKEN.search(text, pos)
        if token is None:
            break
        raw = token.group()
        quoted = raw[0] in "\"'"
        closed = quoted and len(raw) > 1 and raw[-1] == raw[0]
        word = _unescape(raw[1 : -1 if closed else None] if quoted else raw)
        if is_credential_key(word):
            separator = _SEPARATOR.match(text, token.end())
            if separator is None:
                out.append(text[done : token.start()])
                out.append(f'"{REDACTED}"')
                return "".join(out)
            value_at = separator.end()
            out.append(text[done:value_at])
            out.append(' "' if text[value_at : value_at + 1] == " " else '"')
            out.append(REDACTED + '"')
            done = pos = _value_end(text, value_at)
            continue
        if quoted and len(word) > 2 and redact_text(word) != word:
            out.append(text[done : token.start()])
            out.append(f'"{REDACTED}"')
            done = token.end()
        pos = token.end()
    out.append(text[done:])
    return "".join(out)
