"""From the text of a rules file to validated `rules.spec` models, or to every problem.

Two jobs sit here so that the schema (rules.spec) and the engine stay free of them:
reading YAML the way people write rule files, and turning pydantic's errors into
one `path: reason` line per mistake (`rules[3].trigger.for: must be >= 0`).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml
from pydantic import ValidationError

from rules import spec


class RulesError(ValueError):
    """A rules file that cannot be used; `problems` holds one `path: reason` per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems

    def render(self) -> str:
        return "\n".join([f"invalid rules {self.source}:", *(f"  {problem}" for problem in self.problems)])


def parse_rules(text: str, source: str) -> spec.RulesFile:
    """The validated rules file in `text`; raises RulesError listing every problem."""
    try:
        document = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise RulesError(source, [_yaml_problem(exc)]) from None
    if document is None:
        document = []
    if isinstance(document, list):
        document = {"rules": document}
    if not isinstance(document, dict):
        raise RulesError(source, ["(top level): must be a list of rules or a mapping with a rules: list"])
    problems = _duplicate_names(document.get("rules"))
    try:
        parsed = spec.RulesFile.model_validate(document)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)] + problems
    if problems:
        raise RulesError(source, sorted(problems, key=_rule_index))
    return parsed


def _duplicate_names(rules: Any) -> list[str]:
    if not isinstance(rules, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(
                f"rules[{index}].name: duplicate rule name {name!r} (first at rules[{first[name]}])"
            )
        else:
            first[name] = index
    return problems


def _rule_index(problem: str) -> int:
    """Problems sorted by rule, in file order; a stable sort keeps each rule's own order."""
    match = re.match(r"rules\[(\d+)\]", problem)
    return int(match.group(1)) if match else -1


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else "(yaml)"
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: not valid YAML: {problem}"


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in spec.UNION_TAGS or part.startswith("function-"):
            continue  # pydantic's names for union branches, not keys of the file
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_BOUNDS = {
    "greater_than": "must be > {}",
    "greater_than_equal": "must be >= {}",
    "less_than": "must be < {}",
    "less_than_equal": "must be <= {}",
}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _describe(error: Any) -> str:
    path = _path(tuple(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return f"{path}: is required"
    if kind == "extra_forbidden":
        return f"{path}: unknown key{_suggest(error['loc'])}"
    if kind in _BOUNDS:
        return f"{path}: {_BOUNDS[kind].format(_num(ctx[_BOUND_KEYS[kind]]))}"
    if kind in ("too_short", "string_too_short"):
        return f"{path}: must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{path}: only letters, digits, '-', '_' and '.' (starting with a letter or digit)"
    if kind == "literal_error":
        return f"{path}: must be {ctx.get('expected', 'one of the allowed values')}"
    if kind == "value_error":
        return f"{path}: {ctx.get('error', error['msg'])}"
    message: str = error["msg"]
    return f"{path}: {message[0].lower()}{message[1:]}"


# Every key a rules file may use, for "did you mean" on a misspelt one.
_KEYS = sorted(
    {
        field.alias or name
        for model in (
            spec.RuleSpec,
            spec.OccupancyTrigger,
            spec.FactTrigger,
            spec.TimeTrigger,
            spec.DeviceTrigger,
            spec.AccessTrigger,
            spec.FactCondition,
            spec.TimeCondition,
            spec.DaylightParams,
            spec.HvacParams,
            spec.AlertParams,
            spec.PublishParams,
            spec.LightsLevel,
        )
        for name, field in model.model_fields.items()
    }
)


def _suggest(loc: tuple[Any, ...]) -> str:
    key = loc[-1] if loc else None
    if not isinstance(key, str):
        return ""
    close = difflib.get_close_matches(key, _KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# YAML


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: `off` and `on` stay strings and `19:00` stays a time, not 1140.

    PyYAML follows YAML 1.1, where `lights: off` would be the boolean false and an
    unquoted `at: 19:00` a base-60 integer; both are classic rule-file traps.
    Duplicate keys are errors instead of silently keeping the last one.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_RESOLVED_BY_US = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _RESOLVED_BY_US]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """The document in `text`; raises yaml.YAMLError (with a line mark) on bad YAML."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: plain data only
