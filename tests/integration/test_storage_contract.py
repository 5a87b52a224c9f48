"""One contract for the file store, run against the local file system and a real S3-protocol server.

The S3 server is moto in server mode, started here as its own process on 127.0.0.1: boto3 talks
HTTP to it exactly as it would to a bucket elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from services.digitization.storage import Blob, FileStore, LocalFileStore, S3FileStore

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server as a separate process; its endpoint URL."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto server did not start (exit {process.poll()})") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(params=["local", "s3"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    """Each backend, empty."""
    if request.param == "local":
        return LocalFileStore(tmp_path / "files")
    endpoint = request.getfixturevalue("s3_server")
    store = S3FileStore(
        bucket=f"motcua-{uuid.uuid4().hex[:12]}", prefix="blobs/", spool_dir=tmp_path / "spool", endpoint_url=endpoint,
        region="us-east-1", access_key_id="test", secret_access_key="test",
    )  # fmt: skip
    store.ensure_bucket()
    return store


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


async def read(files: FileStore, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in files.open_range(sha256, start, end)])


async def test_a_blob_is_named_by_the_hash_of_its_bytes(files: FileStore) -> None:
    data = os.urandom(700_000)
    blob = await files.put(chunks(data))
    assert blob == Blob(sha256=hashlib.sha256(data).hexdigest(), size=len(data), created=True)
    assert await files.exists(blob.sha256)
    assert await files.size(blob.sha256) == len(data)
    assert await read(files, blob.sha256) == data


async def test_the_same_bytes_are_stored_once(files: FileStore) -> None:
    data = os.urandom(10_000)
    first = await files.put(chunks(data, 1000))
    second = await files.put(chunks(data, 333))
    assert first.sha256 == second.sha256 and first.created and not second.created


async def test_ranges_read_exactly_the_bytes_asked_for(files: FileStore) -> None:
    data = os.urandom(300_000)
    blob = await files.put(chunks(data))
    assert await read(files, blob.sha256, 0, 0) == data[:1]
    assert await read(files, blob.sha256, 1000, 1999) == data[1000:2000]
    assert await read(files, blob.sha256, 299_000) == data[299_000:]
    assert await read(files, blob.sha256, 262_140, 262_150) == data[262_140:262_151]


async def test_a_deleted_or_unknown_blob_is_gone(files: FileStore) -> None:
    blob = await files.put(chunks(b"giay khai sinh"))
    await files.delete(blob.sha256)
    await files.delete(blob.sha256)  # twice: no error
    assert not await files.exists(blob.sha256)
    assert await files.size(blob.sha256) is None
    with pytest.raises(FileNotFoundError):
        await read(files, blob.sha256)


async def test_an_empty_file_is_a_blob_too(files: FileStore) -> None:
    blob = await files.put(chunks(b""))
    assert blob.sha256 == hashlib.sha256(b"").hexdigest() and blob.size == 0
    assert await files.exists(blob.sha256)


async def test_names_that_are_not_hashes_are_refused(files: FileStore) -> None:
    for name in ("../../etc/passwd", "ABC", "0" * 63):
        with pytest.raises(ValueError):
            await files.exists(name)


async def test_concurrent_puts_of_the_same_bytes_agree(files: FileStore) -> None:
    data = os.urandom(200_000)
    blobs = await asyncio.gather(*(files.put(chunks(data)) for _ in range(4)))
    assert len({b.sha256 for b in blobs}) == 1
    assert await read(files, blobs[0].sha256) == data


async def test_a_failed_stream_leaves_nothing_behind(files: FileStore, tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first part of a scan"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await files.put(broken())
    spool = tmp_path / ("files" if isinstance(files, LocalFileStore) else "spool")
    assert [p for p in spool.rglob("*") if p.is_file()] == []
