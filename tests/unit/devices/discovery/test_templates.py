"""The value_template forms read without a template engine, and those refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from devices.discovery.templates import (
    MISSING,
    Inputs,
    TemplateValueError,
    UnsupportedTemplate,
    compile_template,
)


def render(source: str, payload: str) -> Any:
    return compile_template(source).render(Inputs(payload, lambda: orjson.loads(payload)))


READ = [
    ("{{ value }}", "on", "on"),
    ("{{ value_json.temperature }}", '{"temperature": 21.5}', 21.5),
    ("{{value_json['DS18B20-2']['Temperature']}}", '{"DS18B20-2": {"Temperature": 21.8}}', 21.8),
    ('{{ value_json["ENERGY"].Power }}', '{"ENERGY": {"Power": 12}}', 12),
    ("{{ value_json.ENERGY.Power | int }}", '{"ENERGY": {"Power": "12.7"}}', 12),
    ("{{value|float|round(1)}}", "122.76", 122.8),
    ("{{ value | float | round }}", "21.5", 22.0),
    ("{{ (value|float/60)|round(2) }}", "600", 10.0),
    ("{{ value_json.t * 0.1 }}", '{"t": 215}', 21.5),
    ("{{ -value_json.t + 1 }}", '{"t": 2}', -1),
    ("{{ value_json.occupancy }}", '{"occupancy": true}', True),
    ("{{ value_json.list[1] }}", '{"list": [1, 2]}', 2),
    ("{{ value_json.x }}", "{}", MISSING),
    ("{{ value_json.x | float }}", "{}", MISSING),
    ("{{ value_json.x | default(0) }}", "{}", 0),
    ("{{ value_json.state | lower }}", '{"state": "ON"}', "on"),
    ("{{ value | float(0) }}", "n/a", 0),
    ("{{ value_json.on | bool }}", '{"on": "off"}', False),
]


@pytest.mark.parametrize(("source", "payload", "expected"), READ, ids=[case[0] for case in READ])
def test_supported_forms_read_the_value(source: str, payload: str, expected: Any) -> None:
    assert render(source, payload) == expected


REFUSED = [
    ("{% if value_json.output %}ON{% else %}OFF{% endif %}", "statements"),
    ("{{ 'ON' if value_json.x else 'OFF' }}", "'if'"),
    ("{{ value_json.x is defined }}", "'is'"),
    ("{{ value | timestamp_custom('%H') }}", "timestamp_custom"),
    ("{{ states('sensor.x') }}", "unknown name"),
    ("T: {{ value }}", "nothing around it"),
    ("{{ value }}{{ value }}", "only one"),
    ("{{ value_json[x] }}", "quoted key or an index"),
    ("{{ value_json. }}", "ends too early"),
]


@pytest.mark.parametrize(("source", "reason"), REFUSED, ids=[case[0] for case in REFUSED])
def test_other_forms_are_refused_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(UnsupportedTemplate, match=reason):
        compile_template(source)


def test_a_value_that_cannot_convert_is_an_error_not_a_guess() -> None:
    with pytest.raises(TemplateValueError, match="not a number"):
        render("{{ value | float }}", "abc")
    with pytest.raises(TemplateValueError, match="division by zero"):
        render("{{ value | float / 0 }}", "1")


def test_the_json_is_parsed_once_and_only_when_read() -> None:
    calls: list[int] = []

    def parse() -> Any:
        calls.append(1)
        return {"a": 1, "b": 2}

    inputs = Inputs("{}", parse)
    assert compile_template("{{ value }}").render(inputs) == "{}"
    assert calls == []
    assert compile_template("{{ value_json.a }}").render(inputs) == 1
    assert compile_template("{{ value_json.b }}").render(inputs) == 2
    assert calls == [1]
