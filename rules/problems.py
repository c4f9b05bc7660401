"""Problems of a file people write: one `path: reason` line per mistake, all at once.

Shared by the site config (gateway.config) and the rules file (rules.loader), so
both speak the same way; it lives below `gateway` so that rules can use it too.

    try:
        spec.RulesFile.model_validate(document)
    except ValidationError as exc:
        raise RulesError(source, describe(exc, vocabulary=WORDS)) from None

Paths read like the file: `site.rooms[2].capacity`, `rules[3].trigger.for`. Each
file kind words its messages with a `Vocabulary` (gateway.config.WORDS,
rules.loader.WORDS): its keys for "did you mean", its union tags, its patterns.

The errors:

    ValueError
     +-- ProblemsError          rules.problems: `source`, `problems: list[str]`, `render()`;
     |    |                     what the CLI catches (exit status 2, no traceback)
     |    +-- ConfigError       gateway.config: the site config (+ `data`, as far as read)
     |    +-- RulesError        rules.loader: a rules file (also the 422 of a rules reload)
     +-- LocatedProblems        rules.problems: raised inside a model validator only;
                                pydantic wraps it, `describe` unfolds it path by path
    Exception
     +-- DecodeError            devices.dialects.base: one device message that cannot be
                                decoded (rejected and counted per `reason`; not a file problem)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]
"""Where a problem is: keys and list indexes from the top of the file."""

Origin = Callable[[Loc, str], str | None]
"""`(loc, error type)` -> where the value came from when it was not the file
(`from environment variable OFFICEGW_MQTT__KEEPALIVE`), or None."""


class ProblemsError(ValueError):
    """Something people wrote that cannot be used; `problems` holds one `path: reason` per mistake."""

    what = "input"  # the header's noun: `invalid <what> <source>:`

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems

    def render(self) -> str:
        """The report for a terminal: a header naming the source, then one indented line per problem."""
        return "\n".join(
            [f"invalid {self.what} {self.source}:", *(f"  {problem}" for problem in self.problems)]
        )


class LocatedProblems(ValueError):
    """Raised by a model validator that checks across fields (duplicate ids, references):
    each problem is reported at its own path below the model instead of at the model."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        super().__init__("\n".join(f"{path_of(loc)}: {reason}" for loc, reason in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Vocabulary:
    """What one kind of file calls things, for the messages about it."""

    # Every key the file may use, for "did you mean" on an unknown one.
    keys: Collection[str] = ()
    # The keys that may stand where an unknown key stands (given the path of the
    # mapping that holds it), None when the file kind cannot tell: then `keys`. A key
    # of another section is no suggestion (`mqtt.colour` is not `reports.comfort`).
    keys_at: Callable[[Loc], Collection[str] | None] | None = None
    # Tags of tagged unions: pydantic puts them into error locations; paths leave them out.
    tags: Collection[str] = frozenset()
    # Regular expressions of `pattern=` fields, in words.
    patterns: Mapping[str, str] = field(default_factory=dict)
    # A value outside a Literal: pydantic's "input should be 'a' or 'b'", or "must be 'a' or 'b'".
    literal: str = "input should be {expected}"


PLAIN = Vocabulary()


def keys_of(loc: Loc, tags: Collection[str] = ()) -> Loc:
    """`loc` without pydantic's names for union branches and validators: the keys of the file."""
    return tuple(part for part in loc if isinstance(part, int) or not (part in tags or _is_branch(part)))


def path_of(loc: Loc) -> str:
    """`('site', 'rooms', 2, 'capacity')` -> `site.rooms[2].capacity`; `()` -> `(top level)`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


# pydantic's names for the branches of untagged unions and for validator functions.
_BRANCH_PREFIXES = ("function-", "literal[", "list[", "dict[", "tuple[", "set[", "constrained-")
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "bytes", "none"})


def _is_branch(part: str) -> bool:
    return part.startswith(_BRANCH_PREFIXES) or part in _BRANCH_NAMES


def describe(
    exc: ValidationError,
    prefix: Loc = (),
    *,
    vocabulary: Vocabulary = PLAIN,
    origin: Origin | None = None,
) -> list[str]:
    """One `path: reason` line per problem of `exc`, in pydantic's order.

    `prefix` is where the validated value sits in the file (`('site', 'devices', 3)`
    when one device was validated on its own); `origin`, when given, may add where a
    value came from when it was not the file.
    """
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        for loc, reason in _explain(error, vocabulary):
            lines.append(line(prefix + loc, reason, vocabulary, origin, error["type"]))
    return lines


def line(
    loc: Loc,
    reason: str,
    vocabulary: Vocabulary = PLAIN,
    origin: Origin | None = None,
    kind: str = "value_error",
) -> str:
    """One problem as a line: `path: reason`, and where the value came from when `origin` knows."""
    keys = keys_of(loc, vocabulary.tags)
    where = origin(keys, kind) if origin is not None else None
    return f"{path_of(keys)}: {reason}" + (f" ({where})" if where else "")


def _explain(error: ErrorDetails, vocabulary: Vocabulary) -> list[tuple[Loc, str]]:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "value_error" and isinstance(ctx.get("error"), LocatedProblems):
        return [(loc + sub, reason) for sub, reason in ctx["error"].problems]
    return [(loc, _reason(kind, ctx, error["msg"], loc, vocabulary))]


_BOUNDS = {
    "greater_than": ("must be > {}", "gt"),
    "greater_than_equal": ("must be >= {}", "ge"),
    "less_than": ("must be < {}", "lt"),
    "less_than_equal": ("must be <= {}", "le"),
}


def _reason(kind: str, ctx: dict[str, Any], message: str, loc: Loc, vocabulary: Vocabulary) -> str:
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        here = vocabulary.keys_at(keys_of(loc[:-1], vocabulary.tags)) if vocabulary.keys_at else None
        return "unknown key" + _suggest(loc, vocabulary.keys if here is None else here)
    if kind in _BOUNDS:
        template, bound = _BOUNDS[kind]
        return template.format(_number(ctx[bound]))
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        words = vocabulary.patterns.get(pattern)
        return words if words is not None else f"has characters that are not allowed (pattern {pattern})"
    if kind == "literal_error":
        return vocabulary.literal.format(expected=ctx.get("expected", "one of the allowed values"))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", message))
    return message[:1].lower() + message[1:]


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _suggest(loc: Loc, keys: Collection[str]) -> str:
    key = loc[-1] if loc else None
    if not isinstance(key, str) or not keys:
        return ""
    close = difflib.get_close_matches(key, sorted(keys), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
