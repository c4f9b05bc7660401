"""Declarative rules: load a rules file, compile it once, evaluate it per event.

    ruleset = load_rules(text, source="rules.yaml", tz="Europe/Paris")
    actions, memory = ruleset.evaluate(facts, event, now, memory)

Pure: no I/O except reading the file in `load_rules_file`/`default_rules`, no clock
(everything takes `now`). What rules remember lives in `RuleMemory`, which the
gateway persists; see rules.memory and rules.triggers for the catch-up semantics.

The pieces: rules.spec (the schema), rules.loader (YAML and error paths),
rules.triggers / rules.conditions / rules.actions (compiled closures), rules.memory.

Errors: ValueError
         +-- ProblemsError      (rules.problems: the tree of every file error)
              +-- RulesError    `problems`: one `path: reason` per mistake, all at once
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rules import spec
from rules.actions import ActionFn, compile_action, describe_action
from rules.conditions import Check, compile_condition, describe_condition
from rules.loader import RulesError, parse_rules
from rules.memory import MemoryDraft, RuleMemory
from rules.triggers import Key, Trigger, compile_trigger, key_of
from rules.types import Action, DeviceAvailabilityChanged, Priority, RoomFacts, RuleEvent

__all__ = [
    "RuleInfo",
    "RuleMemory",
    "RuleSet",
    "RulesError",
    "default_rules",
    "load_rules",
    "load_rules_file",
]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """One rule as `GET /v1/rules` shows it (last firing comes from `RuleMemory.last_fired`)."""

    name: str
    description: str
    priority: Priority
    enabled: bool
    trigger: str
    conditions: str | None
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    info: RuleInfo
    trigger: Trigger
    condition: Check | None
    actions: tuple[ActionFn, ...]


class RuleSet:
    def __init__(self, rules: Sequence[CompiledRule], *, source: str, tz: str) -> None:
        self.source = source
        self.tz = tz
        self._compiled = tuple(rules)
        self.rules: tuple[RuleInfo, ...] = tuple(rule.info for rule in self._compiled)
        # Rules by the event keys they listen to: an event nobody listens to (most
        # readings) costs one dict lookup.
        index: dict[Key, list[CompiledRule]] = {}
        for rule in self._compiled:
            if rule.info.enabled:
                for key in rule.trigger.keys:
                    index.setdefault(key, []).append(rule)
        self._index = {key: tuple(rules) for key, rules in index.items()}

    def __len__(self) -> int:
        return len(self._compiled)

    @property
    def watched_facts(self) -> frozenset[str]:
        """Facts whose changes some rule reacts to; the gateway sends no other changes."""
        return frozenset(key[1] for key in self._index if isinstance(key, tuple) and key[0] == "reading")

    def listens_to(self, event: RuleEvent) -> bool:
        """Whether `evaluate` can do anything with `event` (device availability is always
        recorded, so a later `for:` or a restart knows since when a device is gone)."""
        return isinstance(event, DeviceAvailabilityChanged) or key_of(event) in self._index

    def evaluate(
        self, facts: Mapping[str, RoomFacts], event: RuleEvent, now: float, memory: RuleMemory
    ) -> tuple[list[Action], RuleMemory]:
        """The actions `event` calls for, and the memory after it.

        The memory returned is `memory` itself when nothing changed.
        """
        rules = self._index.get(key_of(event), ())
        tracking = isinstance(event, DeviceAvailabilityChanged)
        if not rules and not tracking:
            return [], memory
        draft = MemoryDraft(memory)
        if isinstance(event, DeviceAvailabilityChanged):
            # Offline times are kept for every device, so a rule added later (or a
            # restart) still knows since when a device has been gone.
            if event.online:
                draft.offline.delete(event.room_id, event.device_id)
            elif draft.offline.get(event.room_id, event.device_id) is None:
                draft.offline.set(event.room_id, event.device_id, event.at)
        actions: list[Action] = []
        for rule in rules:
            name = rule.info.name
            for firing in rule.trigger.fire(name, event, facts, now, draft):
                if rule.condition is not None and not rule.condition(firing):
                    continue
                produced = [action for act in rule.actions for action in act(firing, now)]
                if produced:
                    actions += produced
                    draft.fired.set(name, firing.room_id, now)
        return actions, draft.build()


def load_rules(text: str, source: str = "<rules>", tz: str = "UTC") -> RuleSet:
    """Parse, validate and compile a rules file; raises RulesError listing every problem."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise RulesError(source, [f"tz: unknown time zone {tz!r}"]) from None
    parsed = parse_rules(text, source)
    return RuleSet([_compile(rule, zone) for rule in parsed.rules], source=source, tz=zone.key)


def load_rules_file(path: str | os.PathLike[str], tz: str = "UTC") -> RuleSet:
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(source, [f"(file): cannot read: {exc}"]) from None
    return load_rules(text, source=source, tz=tz)


def default_rules(tz: str = "UTC") -> RuleSet:
    """The built-in rule set (rules/default.yaml), in force when the config names none."""
    text = resources.files("rules").joinpath("default.yaml").read_text(encoding="utf-8")
    return load_rules(text, source="default.yaml", tz=tz)


def _compile(model: spec.RuleSpec, zone: ZoneInfo) -> CompiledRule:
    priority = Priority[model.priority.upper()]
    trigger = compile_trigger(model.trigger, zone)
    info = RuleInfo(
        name=model.name,
        description=model.description,
        priority=priority,
        enabled=model.enabled,
        trigger=trigger.summary,
        conditions=None if model.conditions is None else describe_condition(model.conditions),
        actions=tuple(describe_action(action) for action in model.actions),
    )
    return CompiledRule(
        info=info,
        trigger=trigger,
        condition=None if model.conditions is None else compile_condition(model.conditions, zone),
        actions=tuple(compile_action(action, model.name, priority, zone) for action in model.actions),
    )
