"""Revoking a certified electronic copy, against real processes: the route, its event and reporting's timeline.

Digitization and reporting run as processes on the session's Postgres and broker (as in test_digitization.py);
a dossier of procedure 2.000815 arrives as ``dossier.received`` on the intake topic, a clerk certifies a copy,
and a leader of the unit revokes it: once (a second revocation answers the first), only a leader of that unit,
only a certified copy. ``copy.revoked`` is chained into the dossier's audit trail by reporting. The check page
saying so in a browser is tests/e2e/test_pages_digitization.py.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.digitization.pki import PkiFiles, write_test_pki
from shared.events import DossierReceived
from tests.support.stack import Stack, eventually, official, produce, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
UNIT_NAME = "UBND phường Phú Hội"
REVOKED = "vn.motcua.copy.revoked.v1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return write_test_pki(tmp_path_factory.mktemp("pki"), unit_name=UNIT_NAME, unit_code="000.00.12.H56")


@pytest.fixture(scope="module")
async def scanner(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Digitization (with its own file store and certificate) and reporting."""
    workdir = Path(tmp_path_factory.mktemp("copy-revocation"))
    stack = Stack.isolated(
        postgres, broker, workdir, services=["digitization", "reporting"],
        env={"DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "DIGITIZATION_SIGNING_PKCS12_FILE": str(pki.pkcs12),
             "DIGITIZATION_SIGNING_PKCS12_PASSWORD": pki.password, "DIGITIZATION_PUBLIC_BASE_URL": "https://motcua.example.vn",
             "DIGITIZATION_OWNER_KEY_SECRET": "owner-key-secret-for-revocation-3c7d", "MOTCUA_HOME": str(workdir / "home")},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


async def received(stack: Stack, unit: str) -> str:
    """A dossier of 2.000815 intake accepted, once digitization knows it."""
    code = f"{unit}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(VN)
    await produce(
        stack,
        DossierReceived(
            dossier_code=code, unit=unit, occurred_at=now, procedure_code="2.000815", procedure_name="Chứng thực bản sao từ bản chính",
            applicant_name="Nguyễn Thị Hồng Nhung", channel="counter", received_at=now, appointment_at=now + timedelta(days=1),
        ),
    )  # fmt: skip
    async with official(stack, "digitization", "clerk", unit) as clerk:

        async def known() -> bool:
            return (await clerk.get(f"/api/v1/dossiers/{code}/documents")).status_code == 200

        await eventually(known)
    return code


def scan() -> bytes:
    image = Image.new("RGB", (827, 1169), (250, 248, 240))
    ImageDraw.Draw(image).text((80, 80), f"Bang tot nghiep {uuid.uuid4().hex}", fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(100, 100))
    return out.getvalue()


def result_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    pdf.add_page()
    pdf.cell(text=f"Ket qua {uuid.uuid4().hex}")
    return bytes(pdf.output())


async def certified_copy(clerk: httpx.AsyncClient, code: str) -> dict:
    original = scan()
    made = await clerk.post(
        "/api/v1/certified-copies", files={"file": ("bang.png", original, "image/png")},
        headers={"X-Content-SHA256": hashlib.sha256(original).hexdigest()},
        data={"dossier_code": code, "paper_name": "Bằng tốt nghiệp đại học", "owner_id_number": f"001203{uuid.uuid4().int % 1_000_000:06d}"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    return made.json()


async def revoked_in_outbox(stack: Stack, code: str) -> list[dict]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("digitization")))
    try:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE key = $1 AND type = $2 ORDER BY id", code, REVOKED)
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def test_a_leader_of_the_unit_revokes_a_certified_copy_once_and_reporting_chains_it(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with (
        official(scanner, "digitization", "clerk", unit) as clerk,
        official(scanner, "digitization", "specialist", unit) as specialist,
        official(scanner, "digitization", "leader", unit, subject="lanh-dao-phu-hoi") as leader,
        official(scanner, "digitization", "leader", random_unit()) as other_leader,
        httpx.AsyncClient(base_url=scanner.url("digitization")) as anyone,
    ):
        copy = await certified_copy(clerk, code)
        path = f"/api/v1/certified-copies/{copy['id']}/revocation"
        reason = {"reason": "Bản chính được xuất trình là giả mạo"}

        # Only a leader, only of the copy's unit, only with a reason.
        assert (await anyone.post(path, json=reason)).status_code == 401
        for not_a_leader in (clerk, specialist):
            refused = await not_a_leader.post(path, json=reason)
            assert refused.status_code == 403 and refused.json()["type"].endswith("role-forbidden"), refused.text
        assert (await other_leader.post(path, json=reason)).status_code == 404, "another unit's copy is not even found"
        for blank in ({}, {"reason": ""}, {"reason": "   "}):
            assert (await leader.post(path, json=blank)).status_code == 422
        assert await revoked_in_outbox(scanner, code) == [], "nothing refused was recorded"

        first = await leader.post(path, json=reason)
        assert first.status_code == 201, first.text
        revocation = first.json()
        assert revocation["document_id"] == copy["id"] and revocation["copy_number"] == copy["copy_number"]
        assert revocation["reason"] == "Bản chính được xuất trình là giả mạo" and revocation["revoked_by"] == "lanh-dao-phu-hoi"
        assert revocation["check_url"] == f"https://motcua.example.vn/kiem-tra/ban-sao/{copy['id']}"
        assert datetime.fromisoformat(revocation["revoked_at"]) <= datetime.now(VN)

        # Revoking again (another reason, even) answers the first revocation and records nothing new.
        again = await leader.post(path, json={"reason": "Lý do khác"})
        assert again.status_code == 200 and again.json() == revocation

        # The page reads the register: revoked, when and why (the browser test looks at it).
        page = await anyone.get(f"/kiem-tra/ban-sao/{copy['id']}")
        assert page.status_code == 200 and "Bản sao đã bị thu hồi" in page.text and "Không hợp lệ" in page.text

    outbox = await revoked_in_outbox(scanner, code)
    assert len(outbox) == 1
    async with scanner.client("reporting", "leader", units=[unit]) as reporting:

        async def chained() -> list[dict] | None:
            response = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
            data = response.json().get("data", []) if response.status_code == 200 else []
            return data if any(e["type"] == REVOKED for e in data) else None

        entries = await eventually(chained)
        verdict = (await reporting.get(f"/api/v1/dossiers/{code}/timeline/verify")).json()
    types = [e["type"] for e in entries]
    assert types.index("vn.motcua.copy.certified.v1") < types.index(REVOKED) and types.count(REVOKED) == 1
    data = next(e["data"] for e in entries if e["type"] == REVOKED)
    assert data["document_id"] == copy["id"] and data["reason"] == "Bản chính được xuất trình là giả mạo"
    assert data["revoked_by"] == "lanh-dao-phu-hoi" and data["dossier_code"] == code
    assert verdict["intact"] is True and verdict["events"] == len(entries), verdict


async def test_only_a_certified_copy_is_revoked_and_an_unknown_one_is_not_found(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with (
        official(scanner, "digitization", "specialist", unit) as specialist,
        official(scanner, "digitization", "leader", unit) as leader,
    ):
        result = await specialist.post(
            "/api/v1/documents", files={"file": ("ket-qua.pdf", result_pdf(), "application/pdf")},
            data={"dossier_code": code, "stage": "result", "component_name": "Kết quả"},
        )  # fmt: skip
        assert result.status_code == 201, result.text
        signed = await leader.post(f"/api/v1/documents/{result.json()['id']}/sign")
        assert signed.status_code == 200 and signed.json()["signed"], signed.text

        conflict = await leader.post(f"/api/v1/certified-copies/{result.json()['id']}/revocation", json={"reason": "Nhầm"})
        assert conflict.status_code == 409 and conflict.headers["content-type"].startswith("application/problem+json")
        assert "not a certified copy" in conflict.json()["detail"]
        unknown = await leader.post(f"/api/v1/certified-copies/{uuid.uuid4()}/revocation", json={"reason": "Nhầm"})
        assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    assert await revoked_in_outbox(scanner, code) == []
