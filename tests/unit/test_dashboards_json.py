"""The Grafana dashboards in deploy/grafana/dashboards: well-formed, every panel queries the provisioned Prometheus.

Whether the queries return data is tests/e2e/test_dashboards.py's job (a real Prometheus scraping the stack); this
checks what Grafana needs to load them: valid JSON, a unique uid, panels that name the data source variable and
carry at least one query, template variables that exist, and a layout within the 24-column grid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's own variables a query may use (https://grafana.com/docs/grafana/latest/dashboards/variables/add-template-variables/#global-variables).
BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms", "__dashboard", "__from", "__to"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def load(path: Path) -> dict[str, Any]:
    """A dashboard as Grafana reads it (UTF-8 JSON)."""
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that query (rows only group them), including those inside collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found += panel.get("panels", []) if panel["type"] == "row" else [panel]
    return found


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every target of every panel."""
    return [(panel["title"], target["expr"]) for panel in panels(dashboard) for target in panel["targets"]]


def variables_used(expr: str) -> set[str]:
    """The names of the template variables an expression refers to (``$x``, ``${x}``, ``${x:regex}``)."""
    return {a or b for a, b in VARIABLE.findall(expr)}


def test_there_are_the_ops_and_the_one_stop_boards() -> None:
    assert {path.name for path in DASHBOARDS} >= {"motcua-ops.json", "motcua-one-stop.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_the_dashboard_parses_and_every_panel_has_a_datasource_and_a_query(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40 and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for r in dashboard["panels"] for p in r.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert panels(dashboard), "a dashboard without a panel"
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, f"{panel['title']}: datasource must be the ${{datasource}} variable"
        assert panel["targets"], f"{panel['title']}: no query"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), f"{panel['title']}: duplicate refId"
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, f"{panel['title']} {target['refId']}"
            assert target["expr"].strip(), f"{panel['title']} {target['refId']}: empty expression"
            assert target["expr"].count("(") == target["expr"].count(")"), f"{panel['title']}: unbalanced parentheses"
        assert panel.get("description"), f"{panel['title']}: say what the panel shows"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_variable_a_query_uses_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert any(v["name"] == "datasource" and v["type"] == "datasource" and v["query"] == "prometheus" for v in dashboard["templating"]["list"])
    for title, expr in queries(dashboard):
        unknown = variables_used(expr) - defined - BUILTINS
        assert not unknown, f"{path.name} '{title}' uses undefined variables {sorted(unknown)}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
            assert re.fullmatch(r"label_values\(\w+, \w+\)", variable["query"]["query"]), variable["query"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_fit_the_grid_without_overlapping(path: Path) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in load(path)["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, f"{panel['title']} leaves the 24-column grid"
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_per_unit_gauges_are_counted_once_whatever_the_number_of_reporting_replicas(path: Path) -> None:
    """Every reporting replica exports the same per-unit figures: a query takes one per unit (``max by (unit)``)
    before adding units up, or two replicas would double the province's overdue count."""
    for title, expr in queries(load(path)):
        for selector in re.finditer(r"motcua_dossiers_\w+", expr):
            assert expr[: selector.start()].endswith("max by (unit) ("), f"{path.name} '{title}': {expr}"
