"""SIGTERM under load: each service stops by itself inside its production grace period, and nothing is lost or doubled.

The grace period and the preStop pause are read from the service's Deployment (deploy/k8s/base/<service>), as the
kubelet reads them: it runs preStop, sends SIGTERM, and kills the process when the grace period is over. Here the
process gets SIGTERM while dossiers keep arriving and events keep being consumed, and it is killed (as the kubelet
would) if it has not exited when the grace period less the preStop pause is over. Each must exit 0 by itself; after
its restart every accepted dossier is in every service exactly once. The measured shutdown times are printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.faults.load import LoadDriver, own_shop
from tests.faults.test_mid_load import (
    SERVICES,
    at_work,
    everything_exactly_once,
    fault_unit,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(900)  # five services, five stops and restarts under load, on a shared 2-core machine
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base"


def kubelet_budget(service: str) -> tuple[float, float]:
    """(terminationGracePeriodSeconds, the preStop sleep) of the service's Deployment."""
    documents = yaml.safe_load_all((DEPLOY / service / "deployment.yaml").read_text(encoding="utf-8"))
    (deployment,) = [d for d in documents if d and d.get("kind") == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (main,) = [c for c in pod["containers"] if c["name"] == service]
    command = main.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop = float(command[1]) if command[:1] == ["sleep"] else 0.0
    return float(pod["terminationGracePeriodSeconds"]), pre_stop


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The five services on a Postgres and a broker of this module's own."""
    async with own_shop(tmp_path_factory.mktemp("shutdown")) as stack:
        yield stack


async def test_sigterm_under_load_finishes_inside_the_grace_period_and_loses_nothing(shop: Stack) -> None:
    measured: dict[str, float] = {}
    driver = LoadDriver(shop, fault_unit(), pace=0.8)  # about two receptions a second, each paid or not
    driver.start()
    try:
        await driver.accepted_at_least(10)
        await driver.paid_at_least(2)
        for service in SERVICES:
            await at_work(shop, driver, service)  # it is handling requests or events right now
            grace, pre_stop = kubelet_budget(service)
            process = shop.services[service]
            started = time.monotonic()
            await asyncio.to_thread(process.stop, grace - pre_stop)  # SIGTERM; SIGKILL when the kubelet would
            measured[service] = time.monotonic() - started
            code = process.exited()
            assert code == 0, f"{service} exited {code} after {measured[service]:.1f}s (-9: killed at the end of " \
                              f"the grace period):\n{process.log_tail()}"
            process.start()
            await process.wait_ready()
        await driver.accepted_at_least(len(driver.ledger.accepted) + 10)
        ledger = await driver.stop()
    except BaseException:
        await driver.cancel()
        raise
    print("\nshutdown after SIGTERM under load (seconds): "
          + ", ".join(f"{s} {t:.1f}" for s, t in measured.items())
          + f"; budget {grace - pre_stop:g}s (terminationGracePeriodSeconds {grace:g} - preStop {pre_stop:g})")
    await everything_exactly_once(shop, ledger)
