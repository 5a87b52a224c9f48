"""Scanning at the counter, signing results, the citizen's store and certified copies, against real processes.

Digitization and reporting run as processes on the session's Postgres and broker; dossiers
arrive as ``dossier.received`` events on the intake topic, as intake would send them. Every
signature the service makes is checked by pyHanko (through the API) and by poppler's ``pdfsig``
with the test CA in an NSS database, an independent verifier.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from services.digitization.pki import PkiFiles, write_test_pki
from services.digitization.storage import LocalFileStore, put_blob
from services.digitization.store import blob_known
from shared.clock import SystemClock
from shared.db import Database
from shared.envelope import Envelope
from shared.events import CaseReturned, DossierReceived, Event
from tests.support.stack import Stack, eventually, random_unit

VN = ZoneInfo("Asia/Ho_Chi_Minh")
LIMIT = 3 * 1024 * 1024
UNIT_NAME = "UBND phường Phú Hội"


# ---- the independent verifier -------------------------------------------------------------------


def _apt_install(*packages: str) -> None:
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


@pytest.fixture(scope="session")
def pdfsig() -> str:
    """poppler's pdfsig (and NSS's certutil for its trust store), installed from Debian when missing."""
    if shutil.which("pdfsig") is None or shutil.which("certutil") is None:
        _apt_install("poppler-utils", "libnss3-tools")
    path = shutil.which("pdfsig")
    assert path, "pdfsig is not available"
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """A test CA and the unit's certificate."""
    return write_test_pki(tmp_path_factory.mktemp("pki"), unit_name=UNIT_NAME, unit_code="000.00.12.H56")


@pytest.fixture(scope="module")
def nss_db(pki: PkiFiles, pdfsig: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database that trusts the test CA, for pdfsig."""
    directory = tmp_path_factory.mktemp("nss")
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-A", "-n", "motcua-test-ca", "-t", "CT,CT,CT", "-i", str(pki.ca_pem), "-d", f"sql:{directory}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return f"sql:{directory}"


def pdfsig_says(pdfsig: str, nss: str, pdf: bytes, tmp: Path) -> str:
    path = tmp / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([pdfsig, "-nssdir", nss, str(path)], capture_output=True, text=True)
    return result.stdout + result.stderr


def assert_accepted_by_pdfsig(output: str, signatures: int = 1) -> None:
    assert output.count("Signature is Valid.") == signatures, output
    assert output.count("Certificate is Trusted.") == signatures, output
    assert "Total document signed" in output, output
    assert UNIT_NAME in output, output


# ---- the stack --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def scanner(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Digitization (with its own file store and certificate) and reporting."""
    workdir = Path(tmp_path_factory.mktemp("digitization"))
    stack = Stack.isolated(
        postgres, broker, workdir, services=["digitization", "reporting"],
        env={"DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "DIGITIZATION_SIGNING_PKCS12_FILE": str(pki.pkcs12),
             "DIGITIZATION_SIGNING_PKCS12_PASSWORD": pki.password, "DIGITIZATION_MAX_UPLOAD_BYTES": str(LIMIT),
             "DIGITIZATION_OWNER_KEY_SECRET": "owner-key-secret-for-tests-5d1e", "DIGITIZATION_SIGNING_LOCATION": "Phường Phú Hội",
             "MOTCUA_HOME": str(workdir / "home")},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


def citizen() -> str:
    """A valid id number no other test uses (province 001, born 2003)."""
    return f"001203{uuid.uuid4().int % 1_000_000:06d}"


def masked(id_number: str) -> str:
    return "*********" + id_number[-3:]


def files_root(stack: Stack) -> Path:
    return stack.workdir / "files"


def stored_files(stack: Stack) -> set[str]:
    """Every file under the store's root, temporary ones included."""
    root = files_root(stack)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def db_counts(stack: Stack) -> dict[str, int]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("digitization")))
    try:
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("documents", "blobs", "outbox", "document_accesses")}
    finally:
        await conn.close()


async def publish(stack: Stack, event: Event, producer: str) -> None:
    envelope = Envelope.wrap(event, source=f"/motcua/{producer}", time=datetime.now(VN), traceparent=None, actor="test")
    client = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers, enable_idempotence=False)
    await client.start()
    try:
        await client.send_and_wait(stack.topic(producer), envelope.kafka_value(), key=event.dossier_code.encode(), headers=envelope.kafka_headers())
    finally:
        await client.stop()


async def received(stack: Stack, unit: str, procedure_code: str = "1.004194") -> str:
    """A dossier intake accepted, once digitization knows it."""
    code = f"{unit}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(VN)
    event = DossierReceived(
        dossier_code=code, unit=unit, occurred_at=now, procedure_code=procedure_code, procedure_name="Thủ tục thử nghiệm",
        applicant_name="Nguyễn Thị Hồng Nhung", channel="counter", received_at=now, appointment_at=now + timedelta(days=3),
    )  # fmt: skip
    await publish(stack, event, "intake")
    async with stack.client("digitization", "clerk", units=[unit]) as clerk:

        async def known() -> bool:
            return (await clerk.get(f"/api/v1/dossiers/{code}/documents")).status_code == 200

        await eventually(known)
    return code


async def timeline_types(stack: Stack, unit: str, code: str, *, until: str) -> list[dict]:
    async with stack.client("reporting", "leader", units=[unit]) as reporting:

        async def entries() -> list[dict] | None:
            response = await reporting.get(f"/api/v1/dossiers/{code}/timeline")
            data = response.json().get("data", []) if response.status_code == 200 else []
            return data if any(e["type"] == until for e in data) else None

        return await eventually(entries)


# ---- sample papers -----------------------------------------------------------------------------


def image_bytes(fmt: str, *, pages: int = 1, size: tuple[int, int] = (827, 1169), label: str = "Giấy khai sinh") -> bytes:
    frames = []
    for n in range(pages):
        image = Image.new("RGB", size, (250, 248, 240))
        draw = ImageDraw.Draw(image)
        draw.rectangle((40, 40, size[0] - 40, size[1] - 40), outline=(20, 20, 120), width=4)
        draw.text((80, 80), f"{label} - trang {n + 1} - {uuid.uuid4().hex}", fill=(0, 0, 0))
        frames.append(image)
    out = io.BytesIO()
    if fmt == "TIFF":
        frames[0].save(out, format="TIFF", save_all=True, append_images=frames[1:], dpi=(100, 100), compression="tiff_deflate")
    else:
        frames[0].save(out, format=fmt, dpi=(100, 100))
    return out.getvalue()


def pdf_bytes(pages: int = 1, text: str = "Quyet dinh") -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    for n in range(pages):
        pdf.add_page()
        pdf.cell(text=f"{text} page {n + 1} {uuid.uuid4().hex}")
    return bytes(pdf.output())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(
    client: httpx.AsyncClient, data: bytes, *, filename: str = "scan.bin", content_type: str = "application/octet-stream",
    headers: dict[str, str] | None = None, path: str = "/api/v1/documents", **fields: str,
) -> httpx.Response:
    return await client.post(path, files={"file": (filename, data, content_type)}, data=fields, headers=headers or {})


def pages_of(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


# ---- scanning at intake ------------------------------------------------------------------------


async def test_a_clerk_scans_every_paper_and_each_becomes_a_sealed_pdf(scanner: Stack, pdfsig: str, nss_db: str, tmp_path: Path) -> None:
    unit = random_unit()
    owner = citizen()
    code = await received(scanner, unit)
    papers = [
        ("to-khai.png", image_bytes("PNG"), "image/png", 1, "TK01", "Tờ khai thay đổi thông tin cư trú"),
        ("hop-dong.jpg", image_bytes("JPEG"), "image/jpeg", 1, "HD01", "Hợp đồng thuê nhà"),
        ("so-ho-khau.tif", image_bytes("TIFF", pages=3), "image/tiff", 3, "SHK", "Giấy tờ chứng minh chỗ ở"),
        ("giay-khai-sinh.pdf", pdf_bytes(2), "application/pdf", 2, "GKS", "Giấy khai sinh"),
    ]
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        documents = []
        for filename, data, ctype, pages, component, name in papers:
            response = await upload(
                clerk, data, filename=filename, content_type=ctype, headers={"X-Content-SHA256": sha(data)},
                dossier_code=code, component_code=component, component_name=name, paper_name=name,
                issuer="Công an phường Phú Hội", issued_on="2024-05-02", owner_id_number=owner,
            )  # fmt: skip
            assert response.status_code == 201, response.text
            body = response.json()
            assert body["media_type"] == "application/pdf" and body["original_media_type"] == ctype
            assert body["pages"] == pages and body["original_sha256"] == sha(data) and body["original_size"] == len(data)
            assert body["signed"] and body["signature"]["signer"] == UNIT_NAME
            assert body["owner"] == masked(owner) and owner not in response.text
            documents.append(body)
        pdf = await clerk.get(documents[2]["content_url"])
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pages_of(pdf.content) == 3 and sha(pdf.content) == documents[2]["sha256"]
        original = await clerk.get(documents[1]["content_url"], params={"variant": "original"})
        assert original.headers["content-type"] == "image/jpeg" and sha(original.content) == documents[1]["original_sha256"]
        report = (await clerk.get(f"/api/v1/documents/{documents[0]['id']}/signature")).json()
        listing = (await clerk.get(f"/api/v1/dossiers/{code}/documents")).json()
    assert report["signed"] and report["valid"] and report["trusted"] and report["sha256_matches"]
    assert report["signer"] == UNIT_NAME and not report["modified_after_signing"]
    assert_accepted_by_pdfsig(pdfsig_says(pdfsig, nss_db, pdf.content, tmp_path))
    assert listing["count"] == 4
    async with scanner.client("reporting", "leader", units=[unit]) as reporting:

        async def four() -> list[dict] | None:
            data = (await reporting.get(f"/api/v1/dossiers/{code}/timeline")).json()["data"]
            found = [e["data"] for e in data if e["type"] == "vn.motcua.document.digitized.v1"]
            return found if len(found) == 4 else None

        digitized = await eventually(four)
    assert {d["component_code"] for d in digitized} == {"TK01", "HD01", "SHK", "GKS"}
    assert all(d["stage"] == "intake" and d["signed"] and d["owner_filed"] and d["mandatory"] for d in digitized)
    assert sorted(d["pages"] for d in digitized) == [1, 1, 2, 3]


async def test_the_type_is_read_from_the_content_not_from_the_name(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        disguised = await upload(clerk, image_bytes("PNG"), filename="quyet-dinh.pdf", content_type="application/pdf", dossier_code=code, component_name="Ảnh")
        text = await upload(clerk, b"%PDX not really\n" * 50, filename="giay-to.pdf", content_type="application/pdf", dossier_code=code, component_name="Đơn")
        gif = await upload(clerk, b"GIF89a" + b"\x00" * 100, filename="anh.png", content_type="image/png", dossier_code=code, component_name="Ảnh")
    assert disguised.status_code == 201 and disguised.json()["original_media_type"] == "image/png"
    assert text.status_code == 415 and text.headers["content-type"] == "application/problem+json"
    assert gif.status_code == 415 and gif.json()["type"] == "urn:motcua:problem:unsupported-media-type"


async def test_refused_uploads_leave_nothing_behind(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    good_pdf = pdf_bytes(1)
    jpeg = image_bytes("JPEG")
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        # Warm up: one good upload, so the store's directories exist and the counts below are a baseline.
        assert (await upload(clerk, pdf_bytes(1), dossier_code=code, component_name="Tờ khai")).status_code == 201
        before_files, before_rows = stored_files(scanner), await db_counts(scanner)
        too_large = await upload(clerk, os.urandom(LIMIT + 10), filename="big.pdf", dossier_code=code, component_name="Lớn")
        wrong_type = await upload(clerk, b"PK\x03\x04 a zip file" * 100, filename="scan.pdf", dossier_code=code, component_name="Zip")
        truncated_pdf = await upload(clerk, good_pdf[: len(good_pdf) // 2], filename="cut.pdf", dossier_code=code, component_name="Cụt")
        truncated_jpeg = await upload(clerk, jpeg[: len(jpeg) // 3], filename="cut.jpg", dossier_code=code, component_name="Cụt ảnh")
        wrong_sum = await upload(
            clerk, good_pdf, headers={"X-Content-SHA256": sha(good_pdf[:-1])}, dossier_code=code, component_name="Sai tổng"
        )
        wrong_digest = await upload(
            clerk, good_pdf, headers={"Repr-Digest": f"sha-256=:{base64.b64encode(hashlib.sha256(b'x').digest()).decode()}:"},
            dossier_code=code, component_name="Sai tổng",
        )  # fmt: skip
        no_dossier = await upload(clerk, good_pdf, component_name="Thiếu mã")
        bad_date = await upload(clerk, good_pdf, dossier_code=code, component_name="Ngày", issued_on="2024-02-30")
        boundary = "cutcutcut"
        cut_body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"dossier_code\"\r\n\r\n{code}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n"
        ).encode() + good_pdf  # no closing boundary: the body stops mid-file
        cut_multipart = await clerk.post(
            "/api/v1/documents", content=cut_body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        not_multipart = await clerk.post("/api/v1/documents", json={"dossier_code": code})
        after_files, after_rows = stored_files(scanner), await db_counts(scanner)
    assert too_large.status_code == 413 and too_large.json()["limit_bytes"] == LIMIT
    assert wrong_type.status_code == 415
    assert truncated_pdf.status_code == 422 and truncated_pdf.json()["type"].endswith("damaged-file")
    assert truncated_jpeg.status_code == 422 and truncated_jpeg.json()["type"].endswith("damaged-file")
    assert wrong_sum.status_code == 422 and wrong_sum.json()["type"].endswith("checksum-mismatch")
    assert wrong_sum.json()["received_sha256"] == sha(good_pdf)
    assert wrong_digest.status_code == 422 and wrong_digest.json()["type"].endswith("checksum-mismatch")
    assert no_dossier.status_code == 422 and "dossier_code" in no_dossier.json()["detail"]
    assert bad_date.status_code == 422 and "issued_on" in bad_date.json()["detail"]
    assert cut_multipart.status_code == 400 and cut_multipart.json()["type"].endswith("upload-incomplete")
    assert not_multipart.status_code == 415
    for response in (too_large, wrong_type, truncated_pdf, truncated_jpeg, wrong_sum, cut_multipart):
        assert response.headers["content-type"] == "application/problem+json"
    assert after_files == before_files, after_files ^ before_files
    assert after_rows == before_rows


async def test_the_same_bytes_are_stored_once(scanner: Stack) -> None:
    unit = random_unit()
    first_dossier, second_dossier = await received(scanner, unit), await received(scanner, unit)
    scan = image_bytes("PNG")
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        first = await upload(clerk, scan, dossier_code=first_dossier, component_code="CT01", component_name="Tờ khai CT01")
        again = await upload(clerk, scan, dossier_code=first_dossier, component_code="CT01", component_name="Tờ khai CT01")
        elsewhere = await upload(clerk, scan, dossier_code=second_dossier, component_code="CT01", component_name="Tờ khai CT01")
    assert (first.status_code, again.status_code, elsewhere.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert elsewhere.json()["id"] != first.json()["id"]
    assert elsewhere.json()["original_sha256"] == first.json()["original_sha256"] == sha(scan)
    named = [p for p in stored_files(scanner) if p.endswith(sha(scan))]
    assert len(named) == 1
    conn = await asyncpg.connect(scanner.postgres.dsn(scanner.database("digitization")))
    try:
        assert await conn.fetchval("SELECT count(*) FROM blobs WHERE sha256 = $1", sha(scan)) == 1
    finally:
        await conn.close()


async def test_the_same_upload_sent_at_once_keeps_one_document_and_no_stray_file(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    scan = image_bytes("PNG", size=(1600, 2200))
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        before = stored_files(scanner)
        responses = await asyncio.gather(
            *(upload(clerk, scan, dossier_code=code, component_code="CT01", component_name="Tờ khai") for _ in range(5))
        )
        after = stored_files(scanner)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    first = responses[0].json()
    # Each request sealed its own PDF; only the one that won the insert keeps its file.
    assert {Path(p).name for p in after - before} == {first["sha256"], first["original_sha256"]}
    conn = await asyncpg.connect(scanner.postgres.dsn(scanner.database("digitization")))
    try:
        assert await conn.fetchval("SELECT count(*) FROM documents WHERE dossier_code = $1", code) == 1
        assert await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND type = 'vn.motcua.document.digitized.v1'", code
        ) == 1
    finally:
        await conn.close()


async def test_a_failed_transaction_deletes_the_files_it_stored(scanner: Stack, tmp_path: Path) -> None:
    db = Database(scanner.postgres.dsn(scanner.database("digitization")), service="digitization", namespace="t", clock=SystemClock())
    files = LocalFileStore(tmp_path / "files")
    fresh, known = tmp_path / "fresh.bin", tmp_path / "known.bin"
    fresh.write_bytes(uuid.uuid4().bytes * 100)
    known.write_bytes(uuid.uuid4().bytes * 100)
    try:
        async with db.unit_of_work() as tx:
            kept = await put_blob(tx, files, known, "application/octet-stream")
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as tx:
                made = await put_blob(tx, files, fresh, "application/octet-stream")
                again = await put_blob(tx, files, known, "application/octet-stream")
                assert made.created and not again.created and await files.exists(made.sha256)
                raise RuntimeError("the request fails after storing its files")
        assert not await files.exists(made.sha256) and await files.exists(kept.sha256)
        async with db.reading() as tx:
            assert not await blob_known(session=tx.session, sha256=made.sha256)
            assert await blob_known(session=tx.session, sha256=kept.sha256)
    finally:
        await db.dispose()


async def test_content_is_served_in_ranges(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        doc = (await upload(clerk, pdf_bytes(3), dossier_code=code, component_name="Văn bản")).json()
        whole = await clerk.get(doc["content_url"])
        head = await clerk.get(doc["content_url"], headers={"Range": "bytes=0-99"})
        tail = await clerk.get(doc["content_url"], headers={"Range": "bytes=-50"})
        middle = await clerk.get(doc["content_url"], headers={"Range": "bytes=100-"})
        outside = await clerk.get(doc["content_url"], headers={"Range": f"bytes={doc['size'] + 10}-"})
        cached = await clerk.get(doc["content_url"], headers={"If-None-Match": whole.headers["etag"]})
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes" and len(whole.content) == doc["size"]
    assert head.status_code == 206 and head.content == whole.content[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{doc['size']}"
    assert tail.status_code == 206 and tail.content == whole.content[-50:]
    assert middle.status_code == 206 and middle.content == whole.content[100:]
    assert outside.status_code == 416 and outside.headers["content-range"] == f"bytes */{doc['size']}"
    assert cached.status_code == 304


# ---- signing results ---------------------------------------------------------------------------


async def test_a_leader_signs_the_result_and_an_independent_verifier_accepts_it(
    scanner: Stack, pdfsig: str, nss_db: str, tmp_path: Path
) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with (
        scanner.client("digitization", "specialist", units=[unit]) as specialist,
        scanner.client("digitization", "leader", units=[unit]) as leader,
    ):
        result = (await upload(specialist, pdf_bytes(2, "Giay xac nhan"), dossier_code=code, stage="result", component_name="Kết quả")).json()
        assert result["stage"] == "result" and not result["signed"]
        refused = await specialist.post(f"/api/v1/documents/{result['id']}/sign")
        signed = await leader.post(f"/api/v1/documents/{result['id']}/sign")
        again = await leader.post(f"/api/v1/documents/{result['id']}/sign")
        report = (await leader.get(f"/api/v1/documents/{result['id']}/signature")).json()
        pdf = (await leader.get(f"/api/v1/documents/{result['id']}/content")).content
        # Someone edits the signed file afterwards: an appended update, then a changed byte.
        editor = PdfWriter(io.BytesIO(pdf), incremental=True)
        editor.add_metadata({"/Title": "Đã sửa sau khi ký"})
        edited = io.BytesIO()
        editor.write(edited)
        appended = edited.getvalue()
        extended = (await leader.post("/api/v1/signatures/verify", files={"file": ("x.pdf", appended, "application/pdf")})).json()
        flipped = pdf[:300] + bytes([pdf[300] ^ 0x01]) + pdf[301:]  # inside the first signed byte range
        broken = (await leader.post("/api/v1/signatures/verify", files={"file": ("y.pdf", flipped, "application/pdf")})).json()
    assert refused.status_code == 403
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["signed"] and body["signature"]["signer"] == UNIT_NAME and body["sha256"] != result["sha256"]
    assert again.json()["sha256"] == body["sha256"], "signing twice does not sign twice"
    assert report["valid"] and report["trusted"] and report["signer"] == UNIT_NAME and report["sha256_matches"]
    assert report["signing_time"] and not report["modified_after_signing"] and len(report["signatures"]) == 1
    assert report["certificate_serial"] == body["signature"]["certificate_serial"]
    assert_accepted_by_pdfsig(pdfsig_says(pdfsig, nss_db, pdf, tmp_path))
    reader = PdfReader(io.BytesIO(pdf))
    widgets = [a.get_object() for a in reader.pages[-1].get("/Annots", []) if a.get_object().get("/FT") == "/Sig"]
    assert widgets and float(widgets[0]["/Rect"][2]) - float(widgets[0]["/Rect"][0]) > 100, "a visible signature block"
    assert extended["modified_after_signing"] and extended["signatures"][0]["intact"]
    assert not broken["valid"]
    assert "Signature is Valid." not in pdfsig_says(pdfsig, nss_db, flipped, tmp_path)
    entries = await timeline_types(scanner, unit, code, until="vn.motcua.document.signed.v1")
    signed_events = [e["data"] for e in entries if e["type"] == "vn.motcua.document.signed.v1"]
    assert len(signed_events) == 1 and signed_events[0]["certificate_serial"] == report["certificate_serial"]
    assert signed_events[0]["kind"] == "result" and signed_events[0]["pages"] == 2


async def test_a_result_signed_twice_at_once_is_signed_once(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with (
        scanner.client("digitization", "specialist", units=[unit]) as specialist,
        scanner.client("digitization", "leader", units=[unit]) as leader,
    ):
        result = (await upload(specialist, pdf_bytes(2), dossier_code=code, stage="result", component_name="Kết quả")).json()
        before = stored_files(scanner)
        responses = await asyncio.gather(*(leader.post(f"/api/v1/documents/{result['id']}/sign") for _ in range(4)))
        after = stored_files(scanner)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({r.json()["sha256"] for r in responses}) == 1
    assert {Path(p).name for p in after - before} == {responses[0].json()["sha256"]}
    conn = await asyncpg.connect(scanner.postgres.dsn(scanner.database("digitization")))
    try:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND type = 'vn.motcua.document.signed.v1'", code) == 1
    finally:
        await conn.close()


# ---- the citizen's store -------------------------------------------------------------------------


async def test_a_second_dossier_of_the_same_citizen_reuses_a_paper_without_a_new_upload(scanner: Stack) -> None:
    unit, elsewhere = random_unit(), random_unit()
    owner = citizen()
    first, second = await received(scanner, unit), await received(scanner, unit)
    async with (
        scanner.client("digitization", "clerk", units=[unit]) as clerk,
        scanner.client("digitization", "clerk", units=[elsewhere]) as stranger,
        scanner.client("digitization", "auditor", units=["*"]) as auditor,
    ):
        paper = (
            await upload(
                clerk, image_bytes("JPEG", label="CCCD"), dossier_code=first, component_code="GKS", component_name="Giấy khai sinh",
                paper_code="GKS", paper_name="Giấy khai sinh", valid_until="2099-12-31", owner_id_number=owner,
            )
        ).json()  # fmt: skip
        undeclared = await clerk.post("/api/v1/citizen-documents/search", json={"dossier_code": second, "id_number": owner})
        declared = await clerk.post(f"/api/v1/dossiers/{second}/owners", json={"id_number": owner})
        found = await clerk.post("/api/v1/citizen-documents/search", json={"dossier_code": second, "id_number": owner})
        nobody = await clerk.post("/api/v1/citizen-documents/search", json={"dossier_code": second, "id_number": citizen()})
        foreign = await stranger.post("/api/v1/citizen-documents/search", json={"dossier_code": second, "id_number": owner})
        reused = await clerk.post(f"/api/v1/dossiers/{second}/reuses", json={"document_id": paper["id"], "component_code": "GKS"})
        reused_again = await clerk.post(f"/api/v1/dossiers/{second}/reuses", json={"document_id": paper["id"], "component_code": "GKS"})
        incomplete = await clerk.post(f"/api/v1/dossiers/{second}/intake-digitization", json={"required_components": ["GKS", "CT01"]})
        await upload(clerk, pdf_bytes(1), dossier_code=second, component_code="CT01", component_name="Tờ khai")
        complete = await clerk.post(f"/api/v1/dossiers/{second}/intake-digitization", json={"required_components": ["GKS", "CT01"]})
        complete_again = await clerk.post(f"/api/v1/dossiers/{second}/intake-digitization", json={"required_components": ["GKS", "CT01"]})
        copy = await clerk.get(reused.json()["content_url"])
        audit = (await auditor.post("/api/v1/document-accesses/search", json={"id_number": owner, "dossier_code": second})).json()
        clerk_audit = await clerk.get("/api/v1/document-accesses")
    assert undeclared.status_code == 403 and undeclared.json()["type"].endswith("not-an-owner")
    assert declared.status_code == 201 and declared.json()["owner"] == masked(owner)
    assert found.status_code == 200 and [d["id"] for d in found.json()["data"]] == [paper["id"]]
    assert nobody.status_code == 403
    assert foreign.status_code == 404
    assert reused.status_code == 201 and reused.json()["reused_from"] == paper["id"] and reused.json()["kind"] == "reuse"
    assert reused.json()["sha256"] == paper["sha256"], "no new file: the stored one serves"
    assert reused_again.status_code == 200 and reused_again.json()["id"] == reused.json()["id"]
    assert incomplete.status_code == 409 and incomplete.json()["missing"] == ["CT01"]
    assert complete.status_code == 201 and complete.json() == {**complete.json(), "required": 2, "digitized": 1, "reused": 1}
    assert complete_again.status_code == 200
    assert sha(copy.content) == paper["sha256"]
    actions = [(a["action"], a["outcome"]) for a in audit["data"]]
    assert ("search", "denied") in actions and ("search", "granted") in actions
    assert ("declare_owner", "granted") in actions and ("reuse", "granted") in actions and ("download", "granted") in actions
    assert all(a["owner"] == masked(owner) and owner not in str(a) for a in audit["data"])
    assert clerk_audit.status_code == 403
    entries = await timeline_types(scanner, unit, second, until="vn.motcua.dossier.digitized.v1")
    by_type = {e["type"]: e["data"] for e in entries}
    assert by_type["vn.motcua.document.reused.v1"]["source_dossier_code"] == first
    assert by_type["vn.motcua.document.reused.v1"]["source_document_id"] == paper["id"]
    assert by_type["vn.motcua.dossier.digitized.v1"] == {**by_type["vn.motcua.dossier.digitized.v1"], "required": 2, "reused": 1}


async def test_a_returned_dossier_no_longer_opens_the_owners_store(scanner: Stack) -> None:
    unit = random_unit()
    owner = citizen()
    code = await received(scanner, unit)
    async with scanner.client("digitization", "clerk", units=[unit]) as clerk:
        assert (await clerk.post(f"/api/v1/dossiers/{code}/owners", json={"id_number": owner})).status_code == 201
        now = datetime.now(VN)
        await publish(scanner, CaseReturned(dossier_code=code, unit=unit, occurred_at=now, returned_at=now, return_channel="counter", timeliness="on_time"), "workflow")

        async def closed() -> httpx.Response | None:
            r = await clerk.post("/api/v1/citizen-documents/search", json={"dossier_code": code, "id_number": owner})
            return r if r.status_code == 409 else None

        response = await eventually(closed)
    assert "closed" in response.json()["detail"]


# ---- certified electronic copies -----------------------------------------------------------------


async def test_a_certified_copy_is_made_signed_filed_and_charged_by_the_page(scanner: Stack, pdfsig: str, nss_db: str, tmp_path: Path) -> None:
    unit = random_unit()
    owner = citizen()
    code = await received(scanner, unit, procedure_code="2.000815")
    other = await received(scanner, unit)
    original = image_bytes("TIFF", pages=2, label="Bang tot nghiep")
    async with (
        scanner.client("digitization", "clerk", units=[unit]) as clerk,
        httpx.AsyncClient(base_url=scanner.url("digitization")) as anyone,
    ):
        made = await upload(
            clerk, original, filename="bang.tif", path="/api/v1/certified-copies", headers={"X-Content-SHA256": sha(original)},
            dossier_code=code, paper_name="Bằng tốt nghiệp đại học", paper_code="BTN", issuer="Trường Đại học Huế",
            owner_id_number=owner,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        copy = made.json()
        pdf = (await clerk.get(copy["content_url"])).content
        report = (await clerk.get(f"/api/v1/documents/{copy['id']}/signature")).json()
        public = await anyone.get(f"/api/v1/public/documents/{copy['id']}/signature")
        stored = await clerk.post("/api/v1/citizen-documents/search", json={"dossier_code": code, "id_number": owner})
        wrong_procedure = await upload(
            clerk, original, path="/api/v1/certified-copies", dossier_code=other, paper_name="Bằng", owner_id_number=owner
        )
        without_owner = await upload(clerk, original, path="/api/v1/certified-copies", dossier_code=code, paper_name="Bằng")
    assert copy["kind"] == "certified_copy" and copy["stage"] == "result" and copy["pages"] == 3
    assert copy["copy_number"].startswith("00001/") and copy["signed"]
    reader = PdfReader(io.BytesIO(pdf))
    statement = reader.pages[-1].extract_text()
    assert "LỜI CHỨNG" in statement and "đúng với bản chính" in statement and copy["copy_number"] in statement
    assert "Bằng tốt nghiệp đại học" in statement and code in statement
    assert report["valid"] and report["trusted"] and report["copy_number"] == copy["copy_number"]
    assert public.status_code == 200 and public.json()["valid"] and "owner" not in public.text
    assert_accepted_by_pdfsig(pdfsig_says(pdfsig, nss_db, pdf, tmp_path))
    assert stored.status_code == 200 and copy["id"] in [d["id"] for d in stored.json()["data"]]
    assert wrong_procedure.status_code == 409
    assert without_owner.status_code == 422 and "owner_id_number" in without_owner.json()["detail"]
    entries = await timeline_types(scanner, unit, code, until="vn.motcua.copy.certified.v1")
    by_type = {e["type"]: e["data"] for e in entries}
    assert by_type["vn.motcua.copy.certified.v1"]["pages"] == 2 and by_type["vn.motcua.copy.certified.v1"]["total_pages"] == 3
    assert by_type["vn.motcua.copy.certified.v1"]["copy_id"] == copy["id"]
    assert by_type["vn.motcua.document.signed.v1"]["kind"] == "certified_copy"


async def test_only_officials_of_the_dossiers_unit_touch_its_documents(scanner: Stack) -> None:
    unit = random_unit()
    code = await received(scanner, unit)
    async with (
        scanner.client("digitization", "clerk", units=[unit]) as clerk,
        scanner.client("digitization", "clerk", units=[random_unit()]) as stranger,
        httpx.AsyncClient(base_url=scanner.url("digitization")) as anonymous,
    ):
        doc = (await upload(clerk, pdf_bytes(1), dossier_code=code, component_name="Đơn")).json()
        assert (await stranger.get(f"/api/v1/documents/{doc['id']}")).status_code == 404
        assert (await stranger.get(doc["content_url"])).status_code == 404
        assert (await upload(stranger, pdf_bytes(1), dossier_code=code, component_name="Đơn")).status_code == 404
        assert (await anonymous.get(doc["content_url"])).status_code == 401
        assert (await upload(anonymous, pdf_bytes(1), dossier_code=code, component_name="Đơn")).status_code == 401
