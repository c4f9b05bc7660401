"""deploy/grafana/officegw.json: valid JSON whose Flux queries ask only for what the exporter writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gateway.storage.influx.lines import (
    COUNT_FIELD,
    EVENT_FIELDS,
    EVENT_TAGS,
    EVENTS_MEASUREMENT,
    READING_MEASUREMENTS,
    READING_TAGS,
)

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "officegw.json"
_FILTER = re.compile(r"filter\(fn: \(r\) => (.*?)\)\n", re.S)


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["query"]) for panel in dashboard()["panels"] for target in panel["targets"]
    ]


def written() -> set[tuple[str, str | None, str]]:
    """(measurement, event kind, field) for everything the exporter writes."""
    fields: set[tuple[str, str | None, str]] = {
        (measurement, None, metric) for metric, measurement in READING_MEASUREMENTS.items()
    }
    for kind, names in EVENT_FIELDS.items():
        fields |= {(EVENTS_MEASUREMENT, kind, name) for name in names | {COUNT_FIELD}}
    return fields


def test_the_dashboard_has_the_promised_panels_on_a_datasource_variable() -> None:
    data = dashboard()
    titles = {panel["title"] for panel in data["panels"]}
    assert {"Room occupancy", "CO2 per room", "Temperature per room"} <= titles
    assert any("energy today" in title for title in titles)
    assert any("wasted" in title for title in titles)
    variables = {variable["name"]: variable for variable in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "influxdb"
    for panel in data["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(target["query"].strip() for target in panel["targets"])
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_reads_measurements_and_fields_the_exporter_writes() -> None:
    allowed = written()
    for title, query in queries():
        assert 'from(bucket: "${bucket}")' in query, title
        selections = 0
        for condition in _FILTER.findall(query):
            measurement = re.search(r'r\._measurement == "([^"]+)"', condition)
            if measurement is None:
                continue
            field = re.search(r'r\._field == "([^"]+)"', condition)
            kind = re.search(r'r\.kind == "([^"]+)"', condition)
            assert field is not None, f"{title}: every selection names its field"
            wanted = (measurement[1], kind[1] if kind else None, field[1])
            assert wanted in allowed, f"{title}: {wanted} is not written by gateway.storage.influx.lines"
            selections += 1
        assert selections, f"{title}: no measurement selected"


def test_queries_filter_only_on_tags_the_exporter_sets() -> None:
    tags = set(READING_TAGS) | set(EVENT_TAGS)
    for title, query in queries():
        for name in re.findall(r"\br\.([a-z_]+)\b", query):
            assert name.startswith("_") or name in tags, f"{title}: r.{name} is not a tag the exporter writes"
