"""Every query of the Grafana dashboards returns data from a real Prometheus scraping the five running services.

Prometheus is Debian's package (``prometheus``, 2.42 on bookworm). When no ``prometheus`` is on the PATH, its
``.deb`` is fetched with ``apt-get download`` and unpacked beside the venv (``dpkg-deb -x``): an ``apt-get
install`` would also register and, where an init system runs, start a system-wide Prometheus on :9090, which
a test must not leave behind. The test's own Prometheus scrapes the session stack every second from a
temporary storage directory and is stopped at the end.

A few dossiers go through intake first (and one refused request), so the events, HTTP and business series
exist; then each expression of each dashboard, its Grafana variables replaced by values a user could pick,
must return at least one series.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from motcua.devstack import free_port
from shared.events import PRODUCERS
from tests.support.api import VN, receive_dossier
from tests.support.debian import unpacked_package
from tests.support.stack import Stack, eventually, random_unit
from tests.unit.test_dashboards_json import DASHBOARDS, VARIABLE, load, queries

SERVICES = ("intake", "workflow", "digitization", "payments", "reporting")
# What the dashboards' Grafana variables become here: All for a service, the test's unit, a one-minute window.
RATE_WINDOW = "1m"

pytestmark = pytest.mark.timeout(900)  # the first run may download Prometheus


# ---- Debian's Prometheus ----------------------------------------------------------------------------------------


def prometheus_binary() -> Path:
    """``prometheus`` from the PATH, else Debian's package unpacked under the venv (downloaded once)."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    return unpacked_package("prometheus", "prometheus-deb") / "usr" / "bin" / "prometheus"


def scrape_config(stack: Stack) -> dict:
    """Every service's /metrics every second, as job ``motcua-<service>`` (the dashboards' ``up{job=~"motcua-.*"}``)."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": f"motcua-{service}",
                "honor_labels": True,  # keep the metrics' own service label, as the ServiceMonitors do
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [urlsplit(stack.url(service)).netloc]}],
            }
            for service in SERVICES
        ],
    }


@contextmanager
def running_prometheus(workdir: Path, config: dict) -> Iterator[str]:
    """A Prometheus with ``config`` (its data under ``workdir``), its base URL; stopped on leaving."""
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [str(prometheus_binary()), f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus of this module's own, scraping the stack; its base URL. Stopped at the end."""
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), scrape_config(stack)) as url:
        yield url


@pytest.fixture
async def prom(prometheus: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the test's Prometheus, once it is ready and every target is up."""
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/-/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.5)

        async def all_up() -> bool:
            targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            return len(targets) == len(SERVICES) and all(t["health"] == "up" for t in targets)

        await eventually(all_up, timeout=60, interval=0.5)
        yield client


async def instant(prom: httpx.AsyncClient, expr: str) -> list[dict]:
    """The series of an instant query; a query Prometheus refuses fails the test with its error."""
    response = await prom.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body.get('error', response.text)}"
    return body["data"]["result"]


def substitute(expr: str, values: dict[str, str]) -> str:
    """The expression Grafana sends: each ``$x``/``${x}``/``${x:fmt}`` replaced by the value picked for it."""
    return VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


async def equals(prom: httpx.AsyncClient, expr: str, expected: float) -> bool:
    """Whether a one-series query has this value now."""
    return await value(prom, expr) == expected


async def value(prom: httpx.AsyncClient, expr: str) -> float | None:
    """The value of a one-series query, None while there is none."""
    result = await instant(prom, expr)
    return float(result[0]["value"][1]) if result else None


# ---- the test ------------------------------------------------------------------------------------------------------


async def reporting_today(stack: Stack) -> date:
    """Today by reporting's clock (a test stack's clock may have been moved forward)."""
    async with stack.client("reporting", units=[]) as reporting:
        response = await reporting.get("/api/v1/admin/clock")
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["now"]).astimezone(VN).date()


async def test_every_dashboard_query_returns_data_from_a_live_scrape(stack: Stack, prom: httpx.AsyncClient) -> None:
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as intake:
        codes = [(await receive_dossier(intake, applicant=f"Trần Thị Ngọc Ánh {i}"))["code"] for i in range(3)]
        refused = await intake.post("/api/v1/dossiers", json={"procedure_code": "1.004194"})  # no applicant
        assert refused.status_code == 422, refused.text

    # The per-unit gauges reach Prometheus after reporting's next refresh; they count what the summary counts.
    received = f'motcua_dossiers_received{{unit="{unit}", period="day"}}'
    await eventually(lambda: equals(prom, received, len(codes)), timeout=90, interval=1)
    today = await reporting_today(stack)
    async with stack.client("reporting", "leader", units=[unit]) as reporting:
        summary = (await reporting.get("/api/v1/reports/summary", params={"unit": unit, "from": today.replace(day=1).isoformat(), "to": today.isoformat()})).json()
    assert await value(prom, f'motcua_dossiers_received{{unit="{unit}", period="month"}}') == summary["received_total"] == len(codes)
    assert await value(prom, f'motcua_dossiers_pending{{unit="{unit}"}}') == len(codes)
    assert await value(prom, f'motcua_dossiers_overdue{{unit="{unit}"}}') == 0

    # Reporting has applied those events, so once a poll has seen the new high watermark its lag on intake's
    # topic is back to 0; every topic it reads has a lag series.
    intake_lag = f'sum(motcua_consumer_lag{{service="reporting", topic="{stack.topic("intake")}"}})'
    await eventually(lambda: equals(prom, intake_lag, 0), timeout=60, interval=1)
    topics = {s["metric"]["topic"] for s in await instant(prom, 'motcua_consumer_lag{service="reporting"}')}
    assert topics == {stack.topic(producer) for producer in PRODUCERS}

    # Each dashboard's variables as a user would set them: All services, this unit.
    variables = {"service": ".*", "unit": unit, "__rate_interval": RATE_WINDOW, "__interval": "15s", "__range": "1h"}
    expressions = [(path.name, title, substitute(expr, variables)) for path in DASHBOARDS for title, expr in queries(load(path))]
    assert len(expressions) >= 30

    async def empty_ones() -> list[str]:
        return [f"{name} '{title}': {expr}" for name, title, expr in expressions if not await instant(prom, expr)]

    # Rates need two scrapes in their window and the consumers a moment to apply the events: wait for all, then report.
    deadline = time.monotonic() + 90
    missing = await empty_ones()
    while missing and time.monotonic() < deadline:
        await asyncio.sleep(2)
        missing = await empty_ones()
    assert not missing, "dashboard queries without data:\n" + "\n".join(missing)

    for path in DASHBOARDS:
        for variable in load(path)["templating"]["list"]:
            if variable["type"] == "query":  # label_values(metric, label): the values Grafana offers
                metric, label = variable["query"]["query"].removeprefix("label_values(").removesuffix(")").split(", ")
                response = await prom.get(f"/api/v1/label/{label}/values", params={"match[]": metric})
                offered = response.json()["data"]
                assert (unit if label == "unit" else "reporting") in offered, f"{path.name} ${variable['name']}: {offered}"
