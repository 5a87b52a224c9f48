"""Uploads named like paths are refused with a problem, and nothing of them is stored.

Oversized, wrongly typed and truncated uploads (and cut multipart bodies, checksum mismatches) are
covered by tests/e2e/test_digitization.py::test_refused_uploads_leave_nothing_behind; this adds the
file names a client could use to reach outside the store: the name is only ever metadata, but a name
with a folder part is refused outright rather than kept.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fpdf import FPDF

from motcua.devstack import EmbeddedBroker, EmbeddedPostgres
from tests.support.events import dossier_code, dossier_received, envelope, raw_producer
from tests.support.stack import Stack, eventually, random_unit

PATH_LIKE = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "scans/../../../root/.ssh/authorized_keys",
    "..",
    "%2e%2e/%2e%2e/etc/passwd",
    "\\\\server\\share\\scan.pdf",
]  # (control characters in a name: tests/unit/test_bad_input.py)
# An absolute Windows path (what old browsers sent) is cut to its base name by the multipart parser itself.
WINDOWS_PATH = "C:\\Users\\canbo\\Desktop\\to-khai-goc.pdf"


def multipart(name: str, data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart body written byte for byte (a client library would escape the file name)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: application/pdf\r\n\r\n'
    body = b"".join(parts) + head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
async def store(postgres: EmbeddedPostgres, broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Digitization alone, with a file store of its own to count."""
    workdir = Path(tmp_path_factory.mktemp("uploads"))
    stack = Stack.isolated(
        postgres, broker, workdir, services=["digitization"],
        env={"DIGITIZATION_STORAGE_ROOT": str(workdir / "files"), "MOTCUA_HOME": str(workdir / "home")},
    )  # fmt: skip
    await stack.start()
    yield stack
    stack.stop()


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=16)
    pdf.add_page()
    pdf.cell(text=f"Giay to {uuid.uuid4().hex}")
    return bytes(pdf.output())


def stored(stack: Stack) -> set[str]:
    root = stack.workdir / "files"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def test_path_like_file_names_are_refused_and_leave_nothing(store: Stack) -> None:
    unit = random_unit()
    code = dossier_code(unit)
    async with raw_producer(store.broker.bootstrap_servers) as producer:
        await producer.send_envelope(store.topic("intake"), envelope(dossier_received(code)))
    async with store.client("digitization", "clerk", units=[unit]) as clerk:

        async def known() -> bool:
            return (await clerk.get(f"/api/v1/dossiers/{code}/documents")).status_code == 200

        assert await eventually(known)
        good = await clerk.post("/api/v1/documents", files={"file": ("to-khai.pdf", pdf_bytes(), "application/pdf")},
                                data={"dossier_code": code, "component_name": "Tờ khai"})  # fmt: skip
        assert good.status_code == 201, good.text
        before = stored(store)
        refused: list[httpx.Response] = []
        for name in PATH_LIKE:
            body, content_type = multipart(name, pdf_bytes(), {"dossier_code": code, "component_name": f"Giấy {len(refused)}"})
            refused.append(await clerk.post("/api/v1/documents", content=body, headers={"Content-Type": content_type}))
        documents = (await clerk.get(f"/api/v1/dossiers/{code}/documents")).json()
        after = stored(store)
        body, content_type = multipart(WINDOWS_PATH, pdf_bytes(), {"dossier_code": code, "component_name": "Bản gốc"})
        windows = await clerk.post("/api/v1/documents", content=body, headers={"Content-Type": content_type})
    for name, response in zip(PATH_LIKE, refused, strict=True):
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:motcua:problem:unsafe-filename", (name, response.text)
    assert after == before, after ^ before
    assert documents["count"] == 1 and documents["data"][0]["original_filename"] == "to-khai.pdf"
    assert windows.status_code == 201 and windows.json()["original_filename"] == "to-khai-goc.pdf", windows.text
    assert not (store.workdir / "etc").exists() and not Path("/etc/passwd.pdf").exists()
