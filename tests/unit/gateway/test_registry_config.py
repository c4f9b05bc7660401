"""The `registry` section: defaults, bounds, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_registry_defaults() -> None:
    registry = load_settings(None).registry
    assert registry.auto_register is True
    assert (registry.max_auto_rooms, registry.max_auto_devices) == (1_000, 10_000)
    assert (registry.max_fields, registry.max_field_bytes) == (64, 1_024)
    assert registry.forget_after == 3 * 86_400


def test_registry_bounds_are_reported_with_their_path(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("registry: {max_auto_rooms: -1, max_fields: 0, forget_after: 0, auto: true}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == [
        "registry.auto",
        "registry.forget_after",
        "registry.max_auto_rooms",
        "registry.max_fields",
    ]


def test_registry_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICEGW_REGISTRY__AUTO_REGISTER", "false")
    monkeypatch.setenv("OFFICEGW_REGISTRY__FORGET_AFTER", "3600")
    registry = load_settings(None).registry
    assert (registry.auto_register, registry.forget_after) == (False, 3600.0)
