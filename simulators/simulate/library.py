"""Scenario files: the shipped ones by name (`small-office`, `campus`, `faults`), any
other by path; read, validated, and refused with every problem and its path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rules.problems import describe
from simulators.simulate.schema import WORDS, Scenario, ScenarioError

_PACKAGE = "simulators.simulate.scenarios"


def shipped() -> list[str]:
    """Names of the scenarios that come with officegw."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in resources.files(_PACKAGE).iterdir()
        if entry.name.endswith(".yaml")
    )


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, else the file at that path."""
    if name_or_path in shipped():
        source = f"{name_or_path} (shipped)"
        text = resources.files(_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(shipped())
            raise ScenarioError(
                name_or_path, [f"no such file, and no shipped scenario of that name ({known})"]
            )
        source, text = str(path), path.read_text(encoding="utf-8")
    return parse_scenario(text, source)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ScenarioError(source, [f"{where}: not YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(document, dict):
        raise ScenarioError(source, ["(top level): a mapping of keys (name, buildings, fits, ...)"])
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        raise ScenarioError(source, describe(exc, vocabulary=WORDS)) from None
