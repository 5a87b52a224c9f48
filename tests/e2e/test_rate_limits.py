"""The endpoints that take no token are rate-limited per client address; the officials' API is not.

A stack of its own with a tiny budget (3 requests, then one every ~17 minutes), so each refusal is
certain whatever the machine's speed: the 4th request of an address is a 429 problem with
``Retry-After``, another address is still served. The shared stack runs with the generous defaults
(``RATE_LIMIT_*`` in shared/settings.py and deploy/k8s/base/common.env).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from tests.support.stack import Stack, random_unit

BURST = 3
LIMITS = {
    "RATE_LIMIT_PUBLIC_PER_SECOND": "0.001",
    "RATE_LIMIT_PUBLIC_BURST": str(BURST),
    "RATE_LIMIT_CALLBACK_PER_SECOND": "0.001",
    "RATE_LIMIT_CALLBACK_BURST": str(BURST),
    "INTAKE_PORTAL_WEBHOOK_SECRET": "portal-secret-for-rate-limit-tests",
    "PAYMENTS_CALLBACK_SECRETS": '{"vietinbank": "bank-secret-for-rate-limit-tests"}',
}

# (service, method, path): every endpoint without a bearer token, beyond health and the clock
LIMITED = [
    ("intake", "GET", "/api/v1/public/dossiers/000.00.01.H56-250101-0001"),
    ("intake", "POST", "/api/v1/portal/dossiers"),
    ("workflow", "GET", "/api/v1/public/cases/000.00.01.H56-250101-0001?sig=00"),
    ("workflow", "POST", "/api/v1/public/cases/000.00.01.H56-250101-0001/rating?sig=00"),
    ("workflow", "POST", "/api/v1/public/cases/000.00.01.H56-250101-0001/feedback?sig=00"),
    ("digitization", "GET", "/api/v1/public/documents/00000000-0000-0000-0000-000000000000/signature"),
    ("payments", "POST", "/api/v1/payments/callbacks/vietinbank"),
]


@pytest.fixture(scope="module")
async def limited(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake, workflow, digitization and payments with a budget of three requests per address."""
    workdir = Path(tmp_path_factory.mktemp("ratelimits"))
    stack = Stack.isolated(
        postgres, broker, workdir, services=["intake", "workflow", "digitization", "payments"],
        env={**LIMITS, "DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "MOTCUA_HOME": str(workdir / "home")},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def _send(client: httpx.AsyncClient, method: str, path: str, address: str) -> httpx.Response:
    return await client.request(method, path, json={} if method == "POST" else None, headers={"X-Forwarded-For": address})


@pytest.mark.parametrize(("service", "method", "path"), LIMITED, ids=[f"{s}:{m}:{p.split('?')[0]}" for s, m, p in LIMITED])
async def test_the_request_beyond_the_burst_is_a_429_problem_and_other_addresses_go_on(
    limited: Stack, service: str, method: str, path: str
) -> None:
    address = f"203.0.113.{LIMITED.index((service, method, path)) + 10}"
    async with httpx.AsyncClient(base_url=limited.url(service), timeout=10) as client:
        within = [await _send(client, method, path, address) for _ in range(BURST)]
        beyond = await _send(client, method, path, address)
        neighbour = await _send(client, method, path, "203.0.113.200")
    assert all(r.status_code != 429 for r in within), [r.status_code for r in within]
    assert beyond.status_code == 429, beyond.text
    assert beyond.headers["content-type"] == "application/problem+json"
    assert int(beyond.headers["retry-after"]) >= 1
    body = beyond.json()
    assert body["type"] == "urn:motcua:problem:rate-limited" and body["status"] == 429 and body["detail"]
    assert neighbour.status_code != 429


async def test_public_and_callback_budgets_are_separate(limited: Stack) -> None:
    address = "203.0.113.100"
    async with httpx.AsyncClient(base_url=limited.url("intake"), timeout=10) as client:
        spent = [await _send(client, "GET", "/api/v1/public/dossiers/X-250101-0001", address) for _ in range(BURST + 1)]
        callback = await _send(client, "POST", "/api/v1/portal/dossiers", address)
    assert spent[-1].status_code == 429
    assert callback.status_code == 401  # the portal's budget is its own: refused for its missing signature, not its rate


async def test_the_officials_api_is_not_rate_limited(limited: Stack) -> None:
    unit = random_unit()
    async with limited.client("workflow", "specialist", units=[unit]) as official:
        statuses = [(await official.get("/api/v1/cases", headers={"X-Forwarded-For": "203.0.113.150"})).status_code for _ in range(BURST * 4)]
    assert statuses == [200] * (BURST * 4)
