"""Back-digitization of results still in force (issue #22), against a real digitization process, Postgres and broker.

A ward's clerk files a batch of 200 scanned results (PNG, JPEG, two-page TIFF and PDF, with a UTF-8 sheet in
Vietnamese): 200 documents come back, each sealed with the unit's certificate. poppler's ``pdfsig`` (trusting the
test CA through an NSS database) accepts a sample of them, and the service's own verification all 200. A clerk of
another unit, receiving a new dossier of one of the owners, finds that owner's result by the id number and reuses
it at intake, with no upload. The progress report shows the digitized share of the declared results in force.

A batch with one bad file (or a duplicate, a missing file, a scan with no row, a legacy-encoded sheet) is refused
with every problem named and changes nothing: no document, no blob, no row of the access audit, no batch.
"""

from __future__ import annotations

import asyncio
import io
import random
import subprocess
import sys
import unicodedata
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
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
HEADER = "Tên tệp;Loại giấy tờ;Số, ký hiệu;Cơ quan cấp;Ngày cấp;Số định danh;Lĩnh vực;Hiệu lực đến"
KINDS = {"Hộ tịch": "Giấy khai sinh", "Chứng thực": "Bản sao chứng thực", "Đất đai": "Giấy chứng nhận quyền sử dụng đất"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return write_test_pki(tmp_path_factory.mktemp("pki"), unit_name=UNIT_NAME, unit_code="000.00.12.H56")


@pytest.fixture(scope="module")
def nss_db(pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database that trusts the test CA, for poppler's pdfsig."""
    directory = tmp_path_factory.mktemp("nss")
    subprocess.run(["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-A", "-n", "motcua-test-ca", "-t", "CT,CT,CT", "-i", str(pki.ca_pem), "-d", f"sql:{directory}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return f"sql:{directory}"


@pytest.fixture(scope="module")
async def archive(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, pki: PkiFiles, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Digitization with its own file store and the unit's certificate."""
    workdir = Path(tmp_path_factory.mktemp("backfile"))
    stack = Stack.isolated(
        postgres, broker, workdir, services=["digitization"],
        env={"DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "DIGITIZATION_SIGNING_PKCS12_FILE": str(pki.pkcs12),
             "DIGITIZATION_SIGNING_PKCS12_PASSWORD": pki.password, "MOTCUA_HOME": str(workdir / "home"),
             "DIGITIZATION_OWNER_KEY_SECRET": "owner-key-secret-for-backfile-9f2e"},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


# ---- scans and sheets --------------------------------------------------------------------------


def _page(text: str, size: tuple[int, int] = (600, 850)) -> Image.Image:
    image = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, size[0] - 30, size[1] - 30), outline=(120, 0, 0), width=4)
    draw.text((60, 70), text, fill=(0, 0, 0))
    return image


def scan(kind: str, text: str) -> tuple[str, bytes]:
    out = io.BytesIO()
    if kind == "pdf":
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=14)
        pdf.cell(text=text)
        return "pdf", bytes(pdf.output())
    if kind == "tif":
        first, second = _page(text), _page(text + " (mat sau)")
        first.save(out, format="TIFF", save_all=True, append_images=[second], dpi=(100, 100), compression="tiff_deflate")
        return "tif", out.getvalue()
    if kind == "jpg":
        _page(text).save(out, format="JPEG", quality=80, dpi=(100, 100))
        return "jpg", out.getvalue()
    _page(text).convert("L").save(out, format="PNG", dpi=(100, 100))
    return "png", out.getvalue()


def id_number(n: int, salt: int) -> str:
    """A valid citizen id number (province 079, born 1980-1999), distinct per n and test run."""
    return f"079{n % 2}{80 + n % 20:02d}{(salt + n) % 1_000_000:06d}"


def cp1258(text: str) -> bytes:
    """Vietnamese as Windows-1258 writes it: base letters (â, ơ, …) precomposed, tone marks as combining characters."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", ch)
        out.append(unicodedata.normalize("NFC", "".join(p for p in parts if p not in tones)) + "".join(p for p in parts if p in tones))
    return "".join(out).encode("cp1258")


def batch_zip(rows: list[list[str]], files: dict[str, bytes], *, sheet: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("so-theo-doi.csv", sheet if sheet is not None else "\n".join([HEADER, *(";".join(r) for r in rows)]).encode())
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def generated(count: int, *, issuer: str, salt: int) -> tuple[list[list[str]], dict[str, bytes]]:
    """``count`` results of three fields: mostly PNG, some JPEG, two-page TIFF and PDF."""
    rows, files = [], {}
    fields = list(KINDS)
    for n in range(count):
        field = fields[0] if n % 10 < 7 else fields[1] if n % 10 < 9 else fields[2]
        kind = "tif" if n % 20 == 3 else "pdf" if n % 20 == 7 else "jpg" if n % 5 == 1 else "png"
        ext, data = scan(kind, f"{field.encode('ascii', 'ignore').decode()} so {n}/{salt}")  # the core PDF font is Latin-1
        name = f"scans/{n:03d}.{ext}"
        files[name] = data
        issued = date(2010, 1, 1) + timedelta(days=17 * n)
        valid = "" if field != "Đất đai" else "31/12/2045"
        rows.append([name, KINDS[field], f"{n}/{salt}/KS", issuer, issued.strftime("%d/%m/%Y"), id_number(n, salt), field, valid])
    return rows, files


async def post_batch(client: httpx.AsyncClient, unit: str, data: bytes) -> httpx.Response:
    return await client.post("/api/v1/backfile/batches", data={"unit": unit}, files={"file": ("lo-1.zip", data, "application/zip")})


async def counts(stack: Stack) -> dict[str, int]:
    conn = await asyncpg.connect(stack.postgres.dsn(stack.database("digitization")))
    try:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("documents", "blobs", "document_accesses", "backfile_batches", "backfile_results", "outbox")
        }
    finally:
        await conn.close()


def stored_files(stack: Stack) -> set[str]:
    root = Path(stack.env["DIGITIZATION_STORAGE_ROOT"])
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts}


def pdfsig_accepts(nss: str, pdf: bytes, tmp: Path) -> str:
    path = tmp / f"{uuid.uuid4().hex}.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdfsig", "-nssdir", nss, str(path)], check=False, capture_output=True, text=True)
    return result.stdout + result.stderr


async def received(stack: Stack, unit: str) -> str:
    """A new dossier at ``unit``, once digitization knows it."""
    code = f"{unit}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(VN)
    await produce(
        stack,
        DossierReceived(
            dossier_code=code, unit=unit, occurred_at=now, procedure_code="1.001193", procedure_name="Đăng ký kết hôn",
            applicant_name="Trần Văn Bình", channel="counter", received_at=now, appointment_at=now + timedelta(days=3),
        ),
    )  # fmt: skip
    async with official(stack, "digitization", "clerk", unit) as clerk:

        async def known() -> bool:
            return (await clerk.get(f"/api/v1/dossiers/{code}/documents")).status_code == 200

        await eventually(known)
    return code


# ---- the tests -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_200_scans_become_200_sealed_documents_that_reuse_at_intake_finds_by_id_number(
    archive: Stack, nss_db: str, tmp_path: Path
) -> None:
    ward, other = random_unit(), random_unit()
    salt = random.randrange(1_000_000)
    rows, files = generated(200, issuer=UNIT_NAME, salt=salt)
    zipped = batch_zip(rows, files)
    async with (
        archive.client("digitization", "clerk", units=[ward], subject="van-thu-phu-hoi", timeout=600) as clerk,
        official(archive, "digitization", "admin", ward) as admin,
    ):
        made = await post_batch(clerk, ward, zipped)
        assert made.status_code == 201, made.text
        batch = made.json()
        assert batch["documents"] == 200 and len(batch["document_ids"]) == 200
        assert batch["pages"] == 200 + sum(1 for name in files if name.endswith(".tif"))  # two-page TIFFs
        ids = batch["document_ids"]

        # Each document carries its row's metadata and the unit's seal; pyHanko (the service) checks all 200.
        sem = asyncio.Semaphore(4)

        async def check(n: int) -> dict:
            async with sem:
                doc = (await clerk.get(f"/api/v1/documents/{ids[n]}")).json()
                report = (await clerk.get(f"/api/v1/documents/{ids[n]}/signature")).json()
            return {"doc": doc, "report": report}

        checked = await asyncio.gather(*(check(n) for n in range(200)))
        for n, c in enumerate(checked):
            doc, report = c["doc"], c["report"]
            assert (doc["kind"], doc["dossier_code"], doc["paper_number"], doc["issuer"]) == ("backfile", None, rows[n][2], UNIT_NAME)
            assert doc["owner"] == "*" * 9 + rows[n][5][-3:] and doc["signed"] is True
            assert (report["signed"], report["valid"], report["trusted"], report["modified_after_signing"]) == (True, True, True, False), report
            assert report["signer"] == UNIT_NAME

        # poppler's pdfsig, an independent verifier, accepts a sample: one of each kind of scan.
        sample = [0, 1, 3, 7, 199]  # PNG, JPEG, TIFF, PDF, PNG
        for n in sample:
            pdf = await clerk.get(f"/api/v1/documents/{ids[n]}/content")
            assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
            said = pdfsig_accepts(nss_db, pdf.content, tmp_path)
            assert said.count("Signature is Valid.") == 1, said
            assert said.count("Certificate is Trusted.") == 1, said
            assert UNIT_NAME in said and "Total document signed" in said, said
        (tmp_path / "sample-png.pdf").write_bytes((await clerk.get(f"/api/v1/documents/{ids[0]}/content")).content)

        # The same ZIP again is the same batch: nothing filed twice.
        again = await post_batch(clerk, ward, zipped)
        assert again.status_code == 200 and again.json()["id"] == batch["id"]

        # Progress: the admin declares the results in force of two fields; the share is what was filed.
        declared = await admin.put(f"/api/v1/backfile/results-in-force/{ward}/Hộ tịch", json={"results_in_force": 280, "note": "Sổ đăng ký khai sinh 2010-2026"})
        assert declared.status_code == 200, declared.text
        assert (await admin.put(f"/api/v1/backfile/results-in-force/{ward}/Đất đai", json={"results_in_force": 20})).status_code == 200
        progress = (await clerk.get("/api/v1/backfile/progress", params={"unit": ward})).json()
        by_field = {line["field"]: line for line in progress["data"]}
        expected = {f: sum(1 for r in rows if r[6] == f) for f in KINDS}
        assert {f: line["digitized"] for f, line in by_field.items()} == expected
        assert (by_field["Hộ tịch"]["results_in_force"], by_field["Hộ tịch"]["share_percent"]) == (280, round(100 * expected["Hộ tịch"] / 280, 1))
        assert (by_field["Đất đai"]["share_percent"], by_field["Đất đai"]["remaining"]) == (100.0, 0)
        assert by_field["Chứng thực"]["results_in_force"] is None and by_field["Chứng thực"]["share_percent"] is None
        assert progress["share_percent"] == round(100 * (expected["Hộ tịch"] + expected["Đất đai"]) / 300, 1)

    # Intake at another unit: the applicant of row 42 comes with a new dossier; the clerk finds the result by the id
    # number and reuses it; no upload.
    code = await received(archive, other)
    owner = rows[42][5]
    async with official(archive, "digitization", "clerk", other) as intake_clerk:
        declared_owner = await intake_clerk.post(f"/api/v1/dossiers/{code}/owners", json={"id_number": owner})
        assert declared_owner.status_code == 201, declared_owner.text
        found = await intake_clerk.post("/api/v1/citizen-documents/search", json={"id_number": owner, "dossier_code": code})
        assert found.status_code == 200, found.text
        hits = found.json()["data"]
        assert [(d["id"], d["paper_number"], d["paper_name"]) for d in hits] == [(ids[42], rows[42][2], rows[42][1])]
        reused = await intake_clerk.post(
            f"/api/v1/dossiers/{code}/reuses", json={"document_id": ids[42], "component_name": "Giấy khai sinh"}
        )
        assert reused.status_code == 201, reused.text
        assert reused.json()["reused_from"] == ids[42] and reused.json()["dossier_code"] == code
        content = await intake_clerk.get(f"/api/v1/documents/{ids[42]}/content", params={"for_dossier": code})
        assert content.status_code == 200 and content.content.startswith(b"%PDF")
        listed = (await intake_clerk.get(f"/api/v1/dossiers/{code}/documents")).json()
        assert [d["reused_from"] for d in listed["data"]] == [ids[42]]


async def test_a_batch_with_one_bad_file_files_nothing_and_names_every_problem(archive: Stack, tmp_path: Path) -> None:
    ward = random_unit()
    salt = random.randrange(1_000_000)
    rows, files = generated(6, issuer="UBND xã Thủy Bằng", salt=salt)
    async with archive.client("digitization", "clerk", units=[ward], timeout=120) as clerk:
        first = await post_batch(clerk, ward, batch_zip(rows[:2], {k: files[k] for k in list(files)[:2]}))
        assert first.status_code == 201, first.text

        before, blobs_before = await counts(archive), stored_files(archive)
        bad = dict(files)
        bad["scans/004.png"] = files["scans/004.png"][:300]  # a truncated scan
        bad["scans/extra.png"] = scan("png", "khong co dong")[1]  # a scan with no row
        del bad["scans/005.png"]  # listed, missing
        refused = await post_batch(clerk, ward, batch_zip(rows, bad))  # rows 0 and 1 were filed by the first batch
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"] == "urn:motcua:problem:backfile-refused"
        named = {(p["file"], p["line"]) for p in problem["problems"]}
        assert named == {
            ("scans/000.png", 2), ("scans/001.jpg", 3),  # filed already
            ("scans/004.png", 6),  # unreadable
            ("scans/005.png", 7),  # missing
            ("scans/extra.png", None),  # no metadata row
        }, problem
        reasons = {p["file"]: p["reason"] for p in problem["problems"]}
        assert "filed already" in reasons["scans/000.png"] and "not in the ZIP" in reasons["scans/005.png"]
        assert "cannot be read" in reasons["scans/004.png"] and "no row" in reasons["scans/extra.png"]
        assert await counts(archive) == before and stored_files(archive) == blobs_before

        # Only the bad file: still nothing.
        rest = {k: (v[:300] if k == "scans/004.png" else v) for k, v in list(files.items())[2:]}
        refused = await post_batch(clerk, ward, batch_zip(rows[2:], rest))
        assert refused.status_code == 422 and [p["file"] for p in refused.json()["problems"]] == ["scans/004.png"]
        assert await counts(archive) == before and stored_files(archive) == blobs_before

        # A sheet in Windows-1258 is refused, naming UTF-8.
        text = "\n".join([HEADER, *(";".join(r) for r in rows[2:4])])
        legacy = await post_batch(clerk, ward, batch_zip([], dict(list(files.items())[2:4]), sheet=cp1258(text)))
        assert legacy.status_code == 422 and legacy.json()["type"] == "urn:motcua:problem:sheet-not-utf8"
        assert "UTF-8" in legacy.json()["detail"]
        assert await counts(archive) == before and stored_files(archive) == blobs_before

    # Fixed, the rest is filed with the command a unit's archivist runs: the sheet and the folder of scans.
    folder = tmp_path / "lo-2"
    for name, data in list(files.items())[2:]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (tmp_path / "so.csv").write_text("\n".join([HEADER, *(";".join(r) for r in rows[2:])]), encoding="utf-8-sig")
    token = archive.token("leader", units=[ward])
    command = [sys.executable, "-m", "motcua", "backfile", "import", "--unit", ward, "--sheet", str(tmp_path / "so.csv"),
               "--scans", str(folder), "--url", archive.url("digitization"), "--token", token]  # fmt: skip
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 results, 5 pages sealed and filed" in done.stdout
    after = await counts(archive)
    assert (after["documents"], after["backfile_batches"]) == (before["documents"] + 4, before["backfile_batches"] + 1)

    async with (
        archive.client("digitization", "clerk", units=[random_unit()]) as stranger,
        official(archive, "digitization", "specialist", ward) as specialist,
        official(archive, "digitization", "leader", ward) as leader,
    ):
        outside = await post_batch(stranger, ward, batch_zip(rows[:1], {k: files[k] for k in list(files)[:1]}))
        assert outside.status_code == 403 and outside.json()["type"] == "urn:motcua:problem:unit-forbidden"
        assert (await post_batch(specialist, ward, b"PK")).status_code == 403  # clerk, leader or admin files batches
        assert (await stranger.get("/api/v1/backfile/progress", params={"unit": ward})).status_code == 403
        assert (await stranger.get(f"/api/v1/backfile/batches/{first.json()['id']}")).status_code == 404
        # Only an admin declares the denominator.
        declared = await leader.put(f"/api/v1/backfile/results-in-force/{ward}/Hộ tịch", json={"results_in_force": 5})
        assert declared.status_code == 403
        progress = (await leader.get("/api/v1/backfile/progress", params={"unit": ward})).json()
        assert {line["field"]: (line["digitized"], line["results_in_force"]) for line in progress["data"]} == {
            f: (sum(1 for r in rows if r[6] == f), None) for f in {r[6] for r in rows}
        }
