"""From the text of a rules file to validated `rules.spec` models, or to every problem.

Two jobs sit here so that the schema (rules.spec) and the engine stay free of them:
reading YAML the way people write rule files, and turning pydantic's errors into
one `path: reason` line per mistake (`rules[3].trigger.for: must be >= 0`) with the
shared formatter of rules.problems, in the words of a rules file (`WORDS`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import ValidationError

from rules import spec
from rules.problems import ProblemsError, Vocabulary, describe


class RulesError(ProblemsError):
    """A rules file that cannot be used; `problems` holds one `path: reason` per error."""

    what = "rules"


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
        problems = describe(exc, vocabulary=WORDS) + problems
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


# Every key a rules file may use, for "did you mean" on a misspelt one.
_KEYS = frozenset(
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
)

WORDS = Vocabulary(
    keys=_KEYS,
    tags=spec.UNION_TAGS,
    patterns={spec.NAME_PATTERN: "only letters, digits, '-', '_' and '.' (starting with a letter or digit)"},
    literal="must be {expected}",
)
"""How the problems of a rules file are worded."""


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
