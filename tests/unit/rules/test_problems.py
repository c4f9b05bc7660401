"""The one formatter of `path: reason` problems, shared by the site config and rules files."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from rules.problems import Loc, LocatedProblems, ProblemsError, Vocabulary, describe, path_of


class Lamp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["lamp"] = "lamp"
    watts: float = Field(default=5.0, gt=0.5, le=100)
    name: str = Field(default="a", pattern=r"^[a-z]+$")


class Fan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["fan"]
    speed: int = 1


def _by_kind(value: object) -> str:
    return "F" if isinstance(value, dict) and value.get("kind") == "fan" else "L"


Thing = Annotated[Annotated[Lamp, Tag("L")] | Annotated[Fan, Tag("F")], Discriminator(_by_kind)]


class Room(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    things: list[Thing] = []

    @model_validator(mode="after")
    def _two_fans_at_most(self) -> Room:
        fans = [index for index, thing in enumerate(self.things) if isinstance(thing, Fan)]
        if len(fans) > 2:
            raise LocatedProblems([(("things", index), "a third fan") for index in fans[2:]])
        return self


def errors(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Room.model_validate(data)
    return caught.value


def test_paths_read_like_the_file_without_pydantic_branch_names() -> None:
    exc = errors({"id": "r", "things": [{"watts": 0}, {"kind": "fan", "speed": "x"}]})
    assert describe(exc, vocabulary=Vocabulary(tags={"L", "F"})) == [
        "things[0].watts: must be > 0.5",
        "things[1].speed: input should be a valid integer, unable to parse string as an integer",
    ]


def test_a_prefix_places_a_part_validated_on_its_own() -> None:
    exc = errors({"things": [{"watts": 101}]})
    assert describe(exc, ("site", "rooms", 3), vocabulary=Vocabulary(tags={"L", "F"})) == [
        "site.rooms[3].id: is required",
        "site.rooms[3].things[0].watts: must be <= 100",
    ]


def test_vocabulary_words_unknown_keys_patterns_and_literals() -> None:
    exc = errors({"id": "r", "things": [{"wats": 3, "name": "A1", "kind": "lamb"}]})
    assert describe(exc) == [  # without the vocabulary, the tag "L" is taken for a key
        "things[0].L.kind: input should be 'lamp'",
        "things[0].L.name: has characters that are not allowed (pattern ^[a-z]+$)",
        "things[0].L.wats: unknown key",
    ]
    worded = Vocabulary(
        keys={"watts", "name", "kind", "speed"},
        tags={"L", "F"},
        patterns={r"^[a-z]+$": "only lower-case letters"},
        literal="must be {expected}",
    )
    assert describe(exc, vocabulary=worded) == [
        "things[0].kind: must be 'lamp'",
        "things[0].name: only lower-case letters",
        "things[0].wats: unknown key (did you mean 'watts'?)",
    ]


def test_located_problems_of_a_validator_each_get_their_path() -> None:
    fan = {"kind": "fan"}
    exc = errors({"id": "r", "things": [fan, fan, fan, {}, fan]})
    assert describe(exc, ("site",)) == ["site.things[2]: a third fan", "site.things[4]: a third fan"]


def test_origin_names_where_a_value_came_from() -> None:
    def origin(loc: Loc, kind: str) -> str | None:
        return "from environment variable ROOM_ID" if loc == ("id",) else None

    exc = errors({"id": 3, "things": [{"watts": 0}]})
    assert describe(exc, vocabulary=Vocabulary(tags={"L", "F"}), origin=origin) == [
        "id: input should be a valid string (from environment variable ROOM_ID)",
        "things[0].watts: must be > 0.5",
    ]


def test_paths() -> None:
    assert path_of(()) == "(top level)"
    assert path_of(("rules", 3, "if", 1)) == "rules[3].if[1]"


def test_the_base_error_renders_every_problem() -> None:
    class WidgetError(ProblemsError):
        what = "widget"

    error = WidgetError("w.yaml", ["a: is required", "b: must be > 0"])
    assert isinstance(error, ValueError)
    assert str(error) == "w.yaml: a: is required; b: must be > 0"
    assert error.render() == "invalid widget w.yaml:\n  a: is required\n  b: must be > 0"
