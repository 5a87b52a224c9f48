"""Payments alone, fed facts published straight to the broker: an unpaid request expires (the sweep) and is
announced once, a clerk reissues it; a certified copy's pages price its per-page fee, whichever fact comes first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.events import CopyCertified
from tests.support.events import (
    dossier_code,
    dossier_received,
    envelope,
    raw_producer,
    read_topic,
    unit_of,
)
from tests.support.stack import Stack, eventually

CERTIFIED = [{"code": "CT-BS", "name": "Lệ phí chứng thực bản sao từ bản chính", "amount": 2000, "unit": "per_page",
              "reduced_from_page": 3, "reduced_amount": 1000, "cap_per_copy": 200000}]  # fmt: skip
TAM_TRU = [{"code": "CT-TTU", "name": "Lệ phí đăng ký tạm trú", "amount": 15000, "unit": "per_case", "online_amount": 7000}]


@pytest.fixture(scope="module")
async def till(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Payments with two seconds to pay and a fast sweep."""
    stack = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("payments-expiry")), services=["payments"],
        env={"PAYMENTS_PAYMENT_TTL_SECONDS": "2", "PAYMENTS_SWEEP_INTERVAL_SECONDS": "0.3",
             "PAYMENTS_COLLECTION_ACCOUNT": json.dumps({"bin": "970415", "account": "113366668888"})},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def test_an_unpaid_request_expires_once_and_a_clerk_reissues_it(till: Stack) -> None:
    code = dossier_code()
    unit = unit_of(code)
    async with raw_producer(till.broker.bootstrap_servers) as producer:
        await producer.send_envelope(till.topic("intake"), envelope(dossier_received(code, fee_lines=TAM_TRU, fee_due=15000)))
    async with till.client("payments", "clerk", units=[unit]) as clerk:

        async def _expired() -> dict | None:
            data = (await clerk.get("/api/v1/payments", params={"dossier_code": code})).json()["data"]
            return data[0] if data and data[0]["status"] == "expired" else None

        expired = await eventually(_expired, timeout=30)
        assert expired["amount"] == 15000 and expired["failure_reason"].startswith("not paid by")
        cash = await clerk.post(f"/api/v1/payments/{expired['id']}/cash", json={"amount": 15000})
        reissued = await clerk.post(f"/api/v1/payments/{expired['id']}/reissue")
        trail = (await clerk.get(f"/api/v1/payments/{expired['id']}/audit")).json()
        metrics = (await clerk.get("/metrics")).text
    assert cash.status_code == 409 and cash.json()["payment_status"] == "expired"
    assert "motcua_payments_pending " in metrics and "motcua_payment_transfers_held " in metrics
    assert reissued.status_code == 201 and reissued.json()["replaces_payment_id"] == expired["id"]
    assert [(a["action"], a["to_status"], a["actor"]) for a in trail] == [
        ("requested", "pending", "payments"), ("expired", "expired", "payments-sweep"),
    ]  # fmt: skip
    await asyncio.sleep(2)  # several sweep rounds: the expiry is announced once
    records = await read_topic(till.broker.bootstrap_servers, till.topic("payments"), until=3)
    failed = [json.loads(r.value) for r in records if (r.key or b"").decode() == code and dict(r.headers)["ce_type"] == b"vn.motcua.payment.failed.v1"]
    assert [(f["payment_id"], f["status"]) for f in failed if f["payment_id"] == expired["id"]] == [(expired["id"], "expired")]


async def test_a_dossier_announced_twice_is_assessed_once(till: Stack) -> None:
    code = dossier_code()
    fact = dossier_received(code, fee_lines=TAM_TRU, fee_due=15000, channel="online")
    async with raw_producer(till.broker.bootstrap_servers) as producer:
        await producer.send_envelope(till.topic("intake"), envelope(fact))
        await producer.send_envelope(till.topic("intake"), envelope(fact))  # a new event id: the inbox cannot tell
    async with till.client("payments", "auditor", units=["*"]) as auditor:

        async def _assessed() -> dict | None:
            response = await auditor.get(f"/api/v1/fee-assessments/{code}")
            return response.json() if response.status_code == 200 and response.json()["payments"] else None

        known = await eventually(_assessed)
        await asyncio.sleep(1)
        payments = (await auditor.get("/api/v1/payments", params={"dossier_code": code})).json()
    assert known["channel"] == "online" and payments["count"] == 1 and payments["data"][0]["amount"] == 7000


def copy_certified(code: str, copy_id: str, *, pages: int, copies: int = 1) -> CopyCertified:
    return CopyCertified(
        dossier_code=code, unit=unit_of(code), occurred_at=datetime.now(UTC), document_id=copy_id, copy_id=copy_id,
        copy_number=f"{copy_id}/2026/SCT-BS", pages=pages, total_pages=pages + 1, copies=copies, sha256="0" * 64,
        certificate_serial="54010203",
    )  # fmt: skip


async def test_each_certified_copy_is_charged_by_its_pages_once_even_when_it_arrives_before_its_dossier(till: Stack) -> None:
    code = dossier_code()
    received = dossier_received(code, procedure_code="2.000815", procedure_name="Chứng thực bản sao từ bản chính",
                                fee_lines=CERTIFIED, fee_pending=True)  # fmt: skip
    async with raw_producer(till.broker.bootstrap_servers) as producer:
        await producer.send_envelope(till.topic("digitization"), envelope(copy_certified(code, "doc-1", pages=10)))
        await asyncio.sleep(2)  # the copy is counted before payments knows the dossier: it waits for it
        await producer.send_envelope(till.topic("intake"), envelope(received))
        await producer.send_envelope(till.topic("digitization"), envelope(copy_certified(code, "doc-1", pages=10)))  # again
        await producer.send_envelope(till.topic("digitization"), envelope(copy_certified(code, "doc-2", pages=300, copies=2)))
    async with till.client("payments", "auditor", units=["*"]) as auditor:

        async def _both() -> list[dict] | None:
            data = (await auditor.get("/api/v1/payments", params={"dossier_code": code})).json()["data"]
            return data if len(data) >= 2 else None

        payments = await eventually(_both)
        await asyncio.sleep(1)
        assert (await auditor.get("/api/v1/payments", params={"dossier_code": code})).json()["count"] == 2
        known = (await auditor.get(f"/api/v1/fee-assessments/{code}")).json()
    by_basis = {p["basis"]: p for p in payments}
    assert by_basis["copy:doc-1"]["amount"] == 12_000  # 2 pages at 2,000 and 8 at 1,000
    assert by_basis["copy:doc-2"]["amount"] == 400_000  # capped at 200,000 a copy, two copies
    assert known["waiting_for_pages"] == ["CT-BS"] and known["assessed_at_reception"] == 0
