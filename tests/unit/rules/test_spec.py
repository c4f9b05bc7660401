"""The schema of a rules file (rules.spec)."""

from __future__ import annotations

from rules.spec import FACT_KINDS
from rules.types import FACT_NAMES


def test_fact_kinds_cover_every_fact() -> None:
    assert set(FACT_KINDS) == FACT_NAMES
    assert FACT_KINDS["co2_ppm"] == "number" and FACT_KINDS["door_open"] == "bool"
    assert FACT_KINDS["occupancy"] == "str" and FACT_KINDS["capacity"] == "number"
