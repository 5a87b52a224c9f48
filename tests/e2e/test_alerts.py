"""The production alerts, evaluated by a real Prometheus against the five running services' metrics.

A Prometheus of this module's own (Debian's, as in test_dashboards.py) scrapes the session stack every second and
loads the rule groups of the production overlay's PrometheusRule (built with ``kubectl kustomize``). After a few
dossiers have gone through the services:

- every rule has been evaluated by Prometheus without an error (its health is ``ok``), the CNPG, Kafka and kubelet
  ones included (they evaluate to nothing here);
- every motcua_* metric an alert reads comes out of the running services, and carries every label the alert
  filters or groups by, so an alert cannot silently watch a metric or label that does not exist;
- each alert's expression over motcua_* metrics is accepted by the query API.

What this cannot show: the expressions over CloudNativePG (cnpg_*), Kafka (kafka_*, from the JMX exporter and the
Kafka Exporter) and kubelet (kubelet_volume_stats_*) metrics have no source in the local stack; they are checked by
``promtool`` only (tests/unit/test_alert_rules.py: syntax, and synthetic series that make them fire). A healthy
stack fires none of the alerts, so whether each fires when it should is also promtool's part.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import yaml

from tests.e2e.test_dashboards import instant, running_prometheus, scrape_config
from tests.support.api import receive_dossier
from tests.support.stack import Stack, eventually, random_unit
from tests.unit.test_alert_rules import alerts, rule_groups

pytestmark = pytest.mark.timeout(900)  # the first run may download Prometheus and Debian's kubectl

# Series that exist only once the event they count has happened (a labelled counter has no series before its first
# increment): the stack must still expose the metric family (its HELP/TYPE reach Prometheus's metadata).
ONLY_ONCE_IT_HAPPENS = {"motcua_http_shed_total": "admission control has shed a request"}
SELECTOR = re.compile(r"\b(motcua_[a-z0-9_]+)\b(\{[^}]*\})?")
BY = re.compile(r"\bby \(([^)]*)\)")


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the stack and evaluating the production alert rules every second; its base URL."""
    workdir = tmp_path_factory.mktemp("prometheus-alerts")
    rules = workdir / "motcua-alerts.yml"
    rules.write_text(yaml.safe_dump({"groups": [{**g, "interval": "1s"} for g in rule_groups()]}, sort_keys=False))
    with running_prometheus(workdir, {**scrape_config(stack), "rule_files": [str(rules)]}) as url:
        yield url


@pytest.fixture
async def prom(prometheus: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:

        async def all_up() -> bool:
            try:
                targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            except httpx.TransportError:
                return False
            return bool(targets) and all(t["health"] == "up" for t in targets)

        await eventually(all_up, timeout=90, interval=0.5)
        yield client


async def rules_state(prom: httpx.AsyncClient) -> dict[str, dict]:
    body = (await prom.get("/api/v1/rules", params={"type": "alert"})).json()
    return {rule["name"]: rule for group in body["data"]["groups"] for rule in group["rules"]}


@pytest.mark.slow
async def test_every_alert_evaluates_on_the_live_metrics(stack: Stack, prom: httpx.AsyncClient) -> None:
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        for i in range(2):
            await receive_dossier(intake, applicant=f"Lê Thị Hồng Nhung {i}")

    # Every rule loaded and evaluated at least once, without an error.
    expected = set(alerts())

    async def all_evaluated() -> bool:
        state = await rules_state(prom)
        return set(state) == expected and all(r.get("lastEvaluation", "").startswith("20") and r["health"] != "unknown" for r in state.values())

    await eventually(all_evaluated, timeout=60, interval=1)
    state = await rules_state(prom)
    broken = {name: r.get("lastError") for name, r in state.items() if r["health"] != "ok"}
    assert not broken, f"rules Prometheus could not evaluate: {broken}"

    # The motcua_* metrics the alerts read, and the labels they filter or group by.
    needs: dict[str, set[str]] = {}
    for name, rule in alerts().items():
        expr = rule["expr"]
        grouped = {label.strip() for labels in BY.findall(expr) for label in labels.split(",") if label.strip() != "le"}
        for metric, matchers in SELECTOR.findall(expr):
            labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or "")) | grouped
            needs.setdefault(metric, set()).update(labels)
            # A series the rule's expression selects needs the labels it groups by on its own selector only.
        if SELECTOR.search(expr):
            response = await prom.get("/api/v1/query", params={"query": expr})
            assert response.status_code == 200 and response.json()["status"] == "success", f"{name}: {response.text}"
    assert len(needs) >= 10

    # The services' loops (relay, consumer polls, senders) set their gauges within a few scrapes.
    deadline = time.monotonic() + 90
    while True:
        missing = [m for m in needs if m not in ONLY_ONCE_IT_HAPPENS and not await instant(prom, f"count({m})")]
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    assert not missing, f"alerts read metrics the running services do not expose: {missing}"

    for metric, labels in needs.items():
        if metric in ONLY_ONCE_IT_HAPPENS:
            metadata = (await prom.get("/api/v1/metadata", params={"metric": metric})).json()["data"]
            assert metadata.get(metric), f"{metric} ({ONLY_ONCE_IT_HAPPENS[metric]}): the services do not expose it"
            continue
        series = (await prom.get("/api/v1/series", params={"match[]": metric})).json()["data"]
        carried = set().union(*(s.keys() for s in series))
        # Alerts that group a label-less gauge (max(...)) need none; every label named must be on the series.
        assert labels <= carried, f"{metric} lacks the labels {sorted(labels - carried)} that an alert uses"
