"""`motcua clock set`: development stacks move time forward; the receipt follows the moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from tests.support.stack import Stack, random_unit


@pytest.fixture(scope="module")
async def intake_alone(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """An intake of its own: moving its clock must not disturb the shared stack."""
    stack = Stack.isolated(postgres, broker, Path(tmp_path_factory.mktemp("clock")), services=["intake"])
    await stack.start()
    yield stack
    stack.stop()


async def test_moving_the_clock_moves_what_intake_stamps_and_nothing_goes_back(intake_alone: Stack) -> None:
    async with intake_alone.client("intake", "admin", units=["*"]) as admin:
        now = datetime.fromisoformat((await admin.get("/api/v1/admin/clock")).json()["now"])
        target = now + timedelta(days=40)
        moved = await admin.put("/api/v1/admin/clock", json={"now": target.isoformat()})
        assert moved.status_code == 200, moved.text
        backwards = await admin.put("/api/v1/admin/clock", json={"now": now.isoformat()})
        assert backwards.status_code == 409
        assert backwards.headers["content-type"] == "application/problem+json"
    async with intake_alone.client("intake", "clerk", units=[random_unit()]) as clerk:
        receipt = (
            await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant_name": "Võ Thị Sáu"})
        ).json()
    received_at = datetime.fromisoformat(receipt["received_at"])
    assert received_at >= target
    assert receipt["code"].split("-")[-2] == received_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%y%m%d")


async def test_only_an_admin_moves_the_clock(intake_alone: Stack) -> None:
    async with intake_alone.client("intake", "clerk", units=[random_unit()]) as clerk:
        response = await clerk.put("/api/v1/admin/clock", json={"now": "2099-01-01T00:00:00+07:00"})
    assert response.status_code == 403
