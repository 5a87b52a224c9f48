"""Issue #22: a unit's paper register (Sổ theo dõi hồ sơ) brought into the system through intake's API.

A stack of its own (intake, workflow, reporting): the last test moves the workflow's clock. The 50,000-line register is
generated once for the module and imported once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from shared.clock import VN_TZ
from tests.support import registers as gen
from tests.support.stack import Stack, eventually, official, random_unit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
async def stack(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Intake, workflow and reporting whose workflow clock this module moves."""
    s = Stack.isolated(
        postgres, broker, Path(tmp_path_factory.mktemp("register-import")), services=["intake", "workflow", "reporting"],
        env={"WORKFLOW_SWEEP_INTERVAL_SECONDS": "1"},
    )  # fmt: skip
    await s.start()
    yield s
    s.stop()


async def _upload(client: httpx.AsyncClient, data: bytes, *, commit: bool, name: str = "so.csv", unit: str | None = None) -> httpx.Response:
    params = {"dry_run": "false" if commit else "true", **({"unit": unit} if unit else {})}
    kind = XLSX if name.endswith(".xlsx") else "text/csv"
    return await client.post("/api/v1/registers/imports", params=params, files={"file": (name, data, kind)}, timeout=600)


async def _month(client: httpx.AsyncClient, unit: str, first: date) -> dict:
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    response = await client.get("/api/v1/reports/summary", params={"unit": unit, "from": first.isoformat(), "to": last.isoformat()})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_small_register_dry_run_commit_again_and_corrected(stack: Stack) -> None:
    unit = random_unit()
    now = datetime.now(UTC)
    lines = gen.generate(unit, 80, now, days=400, seed=5)
    spoiled, bad = gen.spoil(lines, 0.05, now)
    async with (
        official(stack, "intake", "clerk", unit, "mc-1") as clerk,
        official(stack, "reporting", "leader", unit, "ld-1") as leader,
    ):
        dry = await _upload(clerk, gen.to_csv(spoiled), commit=False)
        assert dry.status_code == 200, dry.text
        report = dry.json()
        assert sorted(e["line"] for e in report["errors"]) == sorted(bad)
        assert (report["lines"], report["valid"], report["import_id"]) == (80, 80 - len(bad), None)

        refused = await _upload(clerk, gen.to_csv(spoiled), commit=True)
        assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"].endswith("register-rows-invalid") and sorted(e["line"] for e in problem["errors"]) == sorted(bad)
        untouched = lines[0].code
        assert (await clerk.get(f"/api/v1/dossiers/{untouched}")).status_code == 404  # nothing partial

        # the corrected file, all but its last ten lines: every line added
        first_part = [x.cells for x in lines[:70]]
        added = await _upload(clerk, gen.to_xlsx(first_part), commit=True, name="so.xlsx")
        assert added.status_code == 201, added.text
        body = added.json()
        assert (body["added"], body["skipped"], body["errors"]) == (70, 0, [])
        dossier = (await clerk.get(f"/api/v1/dossiers/{untouched}")).json()
        assert dossier["channel"] == "imported" and dossier["applicant"]["name"] == lines[0].cells[3]
        assert datetime.fromisoformat(dossier["received_at"]) == lines[0].received_at

        # the same lines again (as CSV this time): nothing changes
        again = await _upload(clerk, gen.to_csv(first_part), commit=True)
        assert again.status_code == 200, again.text
        assert (again.json()["added"], again.json()["skipped"], again.json()["import_id"]) == (0, 70, None)

        # the whole corrected file: only the ten new lines
        whole = await _upload(clerk, gen.to_csv([x.cells for x in lines]), commit=True)
        assert whole.status_code == 201 and (whole.json()["added"], whole.json()["skipped"]) == (10, 70)

        # reporting counts every dossier in the months of its register dates: the hand count of the file
        expected = gen.expected_months(lines)
        whole_period = {"unit": unit, "from": min(expected).isoformat(), "to": now.astimezone(VN_TZ).date().isoformat()}

        async def all_received() -> int | None:
            r = await leader.get("/api/v1/reports/summary", params=whole_period)
            return r.json()["received_total"] if r.status_code == 200 and r.json()["received_total"] == 80 else None

        await eventually(all_received, timeout=120, interval=1)
        seen = {m: {k: (await _month(leader, unit, m))[k] for k in c} for m, c in expected.items()}
        assert seen == expected

        # a line of an imported dossier with other content: a clash, and nothing of the file is added
        changed = list(lines[5].cells)
        changed[3] = "Người khác"
        clash = await _upload(clerk, gen.to_csv([tuple(changed)]), commit=True)
        assert clash.status_code == 422 and clash.json()["errors"][0]["line"] == 2
        assert "imported before with other content" in clash.json()["errors"][0]["reason"]

        # the audit chain of an imported dossier begins with the import
        async def chain() -> list | None:
            r = await leader.get(f"/api/v1/dossiers/{untouched}/timeline")
            return r.json()["data"] if r.status_code == 200 and r.json()["count"] else None

        events = await eventually(chain, timeout=60)
        assert events[0]["type"] == "vn.motcua.dossier.imported.v1" and events[0]["actor"] == "mc-1"


async def test_a_legacy_encoding_and_a_unit_outside_the_token_are_refused(stack: Stack) -> None:
    unit = random_unit()
    text = gen.to_csv([x.cells for x in gen.generate(unit, 3, datetime.now(UTC), days=100)], bom=False).decode("utf-8")
    async with official(stack, "intake", "clerk", unit, "mc-2") as clerk:
        for data, name in ((gen.to_cp1258(text), "Windows-1258"), (gen.to_tcvn3(text), "TCVN3 (ABC)")):
            response = await _upload(clerk, data, commit=True)
            assert response.status_code == 422, response.text
            assert response.json()["detected"] == name and "UTF-8" in response.json()["detail"]
        other = await _upload(clerk, text.encode(), commit=False, unit=random_unit())
        assert other.status_code == 403
    async with official(stack, "intake", "specialist", unit, "cv-1") as specialist:
        assert (await _upload(specialist, text.encode(), commit=False)).status_code == 403
    async with httpx.AsyncClient(base_url=stack.url("intake")) as anyone:
        template = await anyone.get("/api/v1/registers/template.csv")
        assert template.status_code == 200 and "Mã hồ sơ" in template.content.decode("utf-8-sig")


@pytest.mark.slow
@pytest.mark.timeout(4200)
async def test_fifty_thousand_lines_over_two_years(stack: Stack) -> None:
    unit = random_unit()
    now = datetime.now(UTC)
    lines = gen.generate(unit, 50_000, now, days=730, seed=22)
    spoiled, bad = gen.spoil(lines, 0.03, now)
    assert len(bad) == 1500
    corrected = gen.to_csv([x.cells for x in lines])
    async with (
        official(stack, "intake", "clerk", unit, "mc-3") as clerk,
        official(stack, "reporting", "leader", unit, "ld-3") as leader,
    ):
        dry = await _upload(clerk, gen.to_csv(spoiled), commit=False)
        assert dry.status_code == 200, dry.text[:2000]
        assert sorted(e["line"] for e in dry.json()["errors"]) == sorted(bad)

        done = await _upload(clerk, corrected, commit=True)
        assert done.status_code == 201, done.text[:2000]
        assert done.json()["added"] == 50_000

        expected = gen.expected_months(lines)
        assert len(expected) >= 24
        whole = {"unit": unit, "from": min(expected).isoformat(), "to": now.astimezone(VN_TZ).date().isoformat()}

        async def all_received() -> int | None:  # one query over the two years while the projections catch up
            r = await leader.get("/api/v1/reports/summary", params=whole)
            return r.json()["received_total"] if r.status_code == 200 and r.json()["received_total"] == 50_000 else None

        await eventually(all_received, timeout=3400, interval=30)
        seen = {m: {k: (await _month(leader, unit, m))[k] for k in c} for m, c in expected.items()}
        wrong = {m.isoformat(): (seen[m], expected[m]) for m in expected if seen[m] != expected[m]}
        assert wrong == {}, f"months that differ from the hand count: {wrong}"

        again = await _upload(clerk, corrected, commit=True)
        assert again.status_code == 200 and (again.json()["added"], again.json()["skipped"]) == (0, 50_000)
        first = min(expected)
        assert {k: (await _month(leader, unit, first))[k] for k in expected[first]} == expected[first]


async def test_an_open_imported_dossier_goes_late_on_the_legal_day(stack: Stack) -> None:
    unit = random_unit()
    now = datetime.now(VN_TZ)
    received_day = gen._back(now.date(), 1)
    appointment = gen._at(gen._add(now.date(), 3), 17 * 60)
    code = gen.code_of(unit, received_day, 1)
    cells = ("1", code, "1.004194", "Hoàng Văn Nam", gen.registers.vn(gen._at(received_day, 9 * 60)), gen.registers.vn(appointment),
             "", "", "Đang xử lý", "", "", "")  # fmt: skip
    async with (
        official(stack, "intake", "clerk", unit, "mc-4") as clerk,
        official(stack, "workflow", "specialist", unit, "cv-4") as specialist,
        official(stack, "workflow", "admin", "*", "ops") as admin,
    ):
        response = await _upload(clerk, gen.to_csv([cells]), commit=True)
        assert response.status_code == 201, response.text

        async def case() -> dict | None:
            r = await specialist.get(f"/api/v1/cases/{code}")
            return r.json() if r.status_code == 200 else None

        opened = await eventually(case, timeout=60)
        assert datetime.fromisoformat(opened["due_at"]) == appointment and not opened["is_late"]
        assert opened["status"] == "accepted" and opened["holder_officer"] is None

        moved = await admin.put("/api/v1/admin/clock", json={"now": (appointment - timedelta(hours=2)).isoformat()})
        assert moved.status_code == 200, moved.text
        before = await eventually(lambda: _flag(specialist, code, "warning_sent_at"), timeout=60)
        assert not before["is_late"]

        moved = await admin.put("/api/v1/admin/clock", json={"now": (appointment + timedelta(minutes=5)).isoformat()})
        assert moved.status_code == 200, moved.text
        late = await eventually(lambda: _flag(specialist, code, "overdue_sent_at"), timeout=60)
        assert late["is_late"] and datetime.fromisoformat(late["late_at"]) == appointment


async def _flag(client: httpx.AsyncClient, code: str, name: str) -> dict | None:
    body = (await client.get(f"/api/v1/cases/{code}")).json()
    return body if body.get(name) else None
