"""No citizen id number (12-digit CCCD, 9-digit CMND) appears whole in any service's log.

Dossiers carrying id numbers go through every service of the shared stack (reception, the case and a
piece of feedback that quotes the number, the owner's declaration and a search of the citizen's store,
the access audit, payments and the timeline), along with refused requests that carry them; then the
whole log of each service (everything the session's tests made it write, in JSON) is scanned for
every id number the session handed to intake and for the ones used here. shared/logs.py masks them
to their last three digits; tests/unit/test_logs.py checks the masking itself.
"""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from tests.support import api
from tests.support.events import dossier_code, dossier_received, envelope, raw_producer
from tests.support.stack import Stack, eventually, random_unit

SERVICES = ("intake", "workflow", "digitization", "payments", "reporting")


def cccd() -> str:
    """A valid 12-digit citizen id (province 001, born 2003) nobody else uses."""
    return f"001203{uuid.uuid4().int % 10**6:06d}"


def cmnd() -> str:
    """An old 9-digit id card number."""
    return f"0{uuid.uuid4().int % 10**8:08d}"


async def _ok(client: httpx.AsyncClient, path: str) -> bool:
    return (await client.get(path)).status_code == 200


async def _drive(stack: Stack, number: str, old_number: str) -> str:
    """One dossier of a unit of its own through every service, quoting the numbers wherever a person could."""
    unit = random_unit()
    async with stack.client("intake", "clerk", units=[unit]) as clerk:
        applicant = {"kind": "citizen", "name": "Đặng Thị Thu Hương", "id_number": number, "address": f"CMND cũ {old_number}"}
        response = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "channel": "counter", "applicant": applicant})
        assert response.status_code == 201, response.text
        code = response.json()["code"]
        assert number not in response.text and response.json()["applicant"]["id_number_masked"].endswith(number[-3:])
        bad = await clerk.post("/api/v1/dossiers", json={"procedure_code": "1.004194", "applicant": {**applicant, "id_number": number[:-1] + "x"}})
        assert bad.status_code == 422
    async with httpx.AsyncClient(base_url=stack.url("intake"), timeout=10) as anyone:
        assert (await anyone.get(f"/api/v1/public/dossiers/{number}")).status_code == 404
    async with stack.client("workflow", "clerk", units=[unit]) as clerk:
        assert await eventually(lambda: _ok(clerk, f"/api/v1/cases/{code}"))
        feedback = await clerk.post(
            f"/api/v1/cases/{code}/feedback",
            json={"channel": "counter", "content": f"Tôi là chủ hồ sơ, số CCCD {number}, CMND cũ {old_number}"},
        )
        assert feedback.status_code == 201, feedback.text
    async with stack.client("digitization", "clerk", units=[unit]) as clerk:
        assert await eventually(lambda: _ok(clerk, f"/api/v1/dossiers/{code}/documents"))
        declared = await clerk.post(f"/api/v1/dossiers/{code}/owners", json={"id_number": number})
        assert declared.status_code == 201, declared.text
        assert number not in declared.text
        found = await clerk.post("/api/v1/citizen-documents/search", json={"id_number": number, "dossier_code": code})
        assert found.status_code == 200, found.text
    async with stack.client("digitization", "auditor", units=["*"]) as auditor:
        audit = await auditor.post("/api/v1/document-accesses/search", json={"id_number": number})
        assert audit.status_code == 200, audit.text
    async with stack.client("payments", "clerk", units=[unit]) as clerk:
        assert await eventually(lambda: _ok(clerk, f"/api/v1/fee-assessments/{code}"))
    async with stack.client("reporting", "auditor", units=[unit]) as auditor:
        assert await eventually(lambda: _ok(auditor, f"/api/v1/dossiers/{code}/timeline"))
    return code


async def _poison_quoting(stack: Stack, number: str) -> str:
    """An event whose bad field quotes the number: each consumer logs the schema error, input included."""
    code = dossier_code(random_unit())
    good = envelope(dossier_received(code))
    value = json.dumps({**good.data, "channel": f"CCCD {number}"}, ensure_ascii=False).encode()
    async with raw_producer(stack.broker.bootstrap_servers) as producer:
        await producer.send(stack.topic("intake"), key=code, value=value, headers=good.kafka_headers())
    for service in ("workflow", "reporting"):  # both consumers of intake's topic file it
        async with stack.client(service, "auditor", units=["*"]) as auditor:
            assert await eventually(lambda: api.dead_letters(auditor, code))
    return code


async def _numbers_intake_took(stack: Stack) -> set[str]:
    connection = await asyncpg.connect(stack.postgres.dsn(stack.database("intake")))
    try:
        rows = await connection.fetch("SELECT DISTINCT applicant_id_number FROM dossiers WHERE applicant_id_number IS NOT NULL")
    finally:
        await connection.close()
    return {r["applicant_id_number"] for r in rows}


async def test_no_log_line_of_any_service_holds_a_whole_id_number(stack: Stack) -> None:
    number, old_number = cccd(), cmnd()
    code = await _drive(stack, number, old_number)
    poisoned = await _poison_quoting(stack, number)
    numbers = await _numbers_intake_took(stack) | {number, old_number}
    assert number in numbers
    leaks = []
    for service in SERVICES:
        log = stack.services[service].log_text()
        assert len(log.splitlines()) > 3, f"{service} wrote no log: nothing was scanned"
        for line in log.splitlines():
            leaks += [f"{service}: {line[:300]}" for n in numbers if n in line]
    assert code and not leaks, "\n".join(leaks[:20])
    # The number did reach a logger (the dead letter's error quotes the bad field), masked to its last three digits:
    masked = f"CCCD {'*' * 9}{number[-3:]}"
    for service in ("workflow", "reporting"):  # the line is written just after the dead letter's commit
        logged = await eventually(lambda: _contains(stack.services[service].log_text(), masked), timeout=10)
        assert logged, f"{service} did not log the dead letter of {poisoned}"


async def _contains(text: str, part: str) -> bool | None:
    return (part in text) or None
