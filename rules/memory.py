"""What the rules remember between events, as plain data the gateway can persist.

Timers are never sleeps: a `for:` trigger remembers when its episode started (or
reads it from the room, `occupancy_since`), and fires on the first Tick past the
deadline. Because the memory round-trips through JSON (`to_dict`/`from_dict`), a
restarted gateway that loads it back fires each overdue deadline exactly once.

Every table is `group -> key -> value`:

- `fired`:    rule -> room -> when the rule last acted there (for `GET /v1/rules`)
- `episodes`: rule -> room | device | "*" -> start of the episode whose trigger has
              fired (a `for:` trigger fires once per episode); "*" holds the last
              handled occurrence of a time-of-day trigger
- `active`:   rule -> room -> since when a threshold/`is` trigger's condition holds
- `bursts`:   rule -> room -> times of recent matching access events
- `offline`:  room -> device -> since when the device is offline
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")
Table = Mapping[str, Mapping[str, T]]

MEMORY_VERSION = 1


@dataclass(frozen=True, slots=True, eq=True)
class RuleMemory:
    """Never mutated: `RuleSet.evaluate` returns a new one when something changed
    (and the very same object when nothing did, so `new is old` means "no need to save").
    """

    fired: Table[float] = field(default_factory=dict)
    episodes: Table[float] = field(default_factory=dict)
    active: Table[float] = field(default_factory=dict)
    bursts: Table[tuple[float, ...]] = field(default_factory=dict)
    offline: Table[float] = field(default_factory=dict)

    def last_fired(self, rule: str, room: str | None = None) -> float | None:
        """When `rule` last acted (in `room`, or anywhere); None when never."""
        rooms = self.fired.get(rule, {})
        if room is not None:
            return rooms.get(room)
        return max(rooms.values(), default=None)

    def retain(self, rules: Iterable[str]) -> RuleMemory:
        """This memory without what belongs to rules not in `rules` (after a reload)."""
        keep = set(rules)

        def only(table: Table[Any]) -> dict[str, Mapping[str, Any]]:
            return {rule: row for rule, row in table.items() if rule in keep}

        return RuleMemory(
            fired=only(self.fired),
            episodes=only(self.episodes),
            active=only(self.active),
            bursts=only(self.bursts),
            offline=self.offline,
        )

    def without(self, keys: Iterable[str]) -> RuleMemory:
        """This memory without anything about the given rooms and devices (forgotten
        by the registry); the very same memory when it holds none of them."""
        drop = set(keys)

        def strip(table: Table[T], groups_too: bool = False) -> Table[T]:
            if not any(drop.intersection(row) for row in table.values()) and not (
                groups_too and drop.intersection(table)
            ):
                return table
            return {
                group: {key: value for key, value in row.items() if key not in drop}
                for group, row in table.items()
                if not (groups_too and group in drop)
            }

        stripped = RuleMemory(
            fired=strip(self.fired),
            episodes=strip(self.episodes),
            active=strip(self.active),
            bursts=strip(self.bursts),
            offline=strip(self.offline, groups_too=True),  # room -> device
        )
        return self if stripped == self else stripped

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MEMORY_VERSION,
            "fired": _plain(self.fired),
            "episodes": _plain(self.episodes),
            "active": _plain(self.active),
            "bursts": {g: {k: list(v) for k, v in row.items()} for g, row in self.bursts.items()},
            "offline": _plain(self.offline),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleMemory:
        """Raises ValueError when `data` is not a memory this version wrote."""
        doc = _MemoryDoc.model_validate(data)
        if doc.version != MEMORY_VERSION:
            raise ValueError(f"rule memory version {doc.version} is not {MEMORY_VERSION}")
        return cls(
            fired=doc.fired,
            episodes=doc.episodes,
            active=doc.active,
            bursts={g: {k: tuple(v) for k, v in row.items()} for g, row in doc.bursts.items()},
            offline=doc.offline,
        )


def _plain(table: Table[float]) -> dict[str, dict[str, float]]:
    return {group: dict(row) for group, row in table.items()}


class _MemoryDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    fired: dict[str, dict[str, float]] = {}
    episodes: dict[str, dict[str, float]] = {}
    active: dict[str, dict[str, float]] = {}
    bursts: dict[str, dict[str, list[float]]] = {}
    offline: dict[str, dict[str, float]] = {}


class Draft(Generic[T]):
    """Copy-on-write edits of one table: only the rows written to are copied."""

    __slots__ = ("_base", "_own", "_rows")

    def __init__(self, base: Table[T]) -> None:
        self._base = base
        self._rows: dict[str, Mapping[str, T]] | None = None
        self._own: dict[str, dict[str, T]] = {}

    @property
    def rows(self) -> Table[T]:
        return self._base if self._rows is None else self._rows

    def get(self, group: str, key: str) -> T | None:
        row = self.rows.get(group)
        return None if row is None else row.get(key)

    def set(self, group: str, key: str, value: T) -> None:
        row = self.rows.get(group)
        if row is not None and key in row and row[key] == value:
            return
        self._writable(group)[key] = value

    def delete(self, group: str, key: str) -> None:
        row = self.rows.get(group)
        if row is None or key not in row:
            return
        writable = self._writable(group)
        del writable[key]
        if not writable:
            assert self._rows is not None  # _writable made it
            del self._rows[group]
            del self._own[group]

    @property
    def changed(self) -> bool:
        return self._rows is not None

    def _writable(self, group: str) -> dict[str, T]:
        if self._rows is None:
            self._rows = dict(self._base)
        own = self._own.get(group)
        if own is None:
            own = self._own[group] = dict(self._rows.get(group, {}))
            self._rows[group] = own
        return own


class MemoryDraft:
    """The memory being edited during one evaluation."""

    __slots__ = ("_base", "active", "bursts", "episodes", "fired", "offline")

    def __init__(self, base: RuleMemory) -> None:
        self._base = base
        self.fired = Draft(base.fired)
        self.episodes = Draft(base.episodes)
        self.active = Draft(base.active)
        self.bursts = Draft(base.bursts)
        self.offline = Draft(base.offline)

    def build(self) -> RuleMemory:
        tables = (self.fired, self.episodes, self.active, self.bursts, self.offline)
        if not any(table.changed for table in tables):
            return self._base
        return RuleMemory(
            fired=self.fired.rows,
            episodes=self.episodes.rows,
            active=self.active.rows,
            bursts=self.bursts.rows,
            offline=self.offline.rows,
        )
