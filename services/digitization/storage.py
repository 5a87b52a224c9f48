"""The content-addressed file store: a blob is named by the SHA-256 of its bytes, so the same bytes are stored once.

One small interface, two backends: the local file system (the default) and an S3-compatible
bucket. ``put`` streams: chunks are spooled to a temporary file while they are hashed, then the
file is moved (local) or uploaded (S3) under its hash; nothing holds a whole file in memory.

A use case stores files through ``put_blob``: the blob is registered in its unit of work, and a blob
that call created is deleted again when the unit of work rolls back, so a failed request leaves nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from services.digitization import store
from services.digitization.settings import DigitizationSettings
from shared.db import Database, UnitOfWork

CHUNK = 256 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Blob:
    """What ``put`` stored: its hash and size, and whether this call created it (False: it was there)."""

    sha256: str
    size: int
    created: bool


class FileStore(Protocol):
    """Where the bytes of documents live."""

    async def put(self, stream: AsyncIterable[bytes]) -> Blob:
        """Store the stream under its SHA-256 (a second put of the same bytes stores nothing)."""
        ...

    def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start..end`` (inclusive; ``end`` None: to the last byte), in chunks."""
        ...

    async def exists(self, sha256: str) -> bool:
        """Whether a blob is stored."""
        ...

    async def size(self, sha256: str) -> int | None:
        """A blob's size, or None when it is not stored."""
        ...

    async def delete(self, sha256: str) -> None:
        """Forget a blob (no error when it is not there)."""
        ...


def check_name(sha256: str) -> str:
    """Refuse anything that is not a lowercase hex SHA-256 (no path tricks)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 name: {sha256!r}")
    return sha256


async def file_chunks(path: Path, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
    """A local file's bytes ``start..end`` (inclusive), read off the event loop."""
    f = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(f.seek, start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            chunk = await asyncio.to_thread(f.read, CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(f.close)


async def spool(stream: AsyncIterable[bytes], directory: Path) -> tuple[Path, str, int]:
    """Write a stream to a temporary file in ``directory`` while hashing it: (path, sha256, size)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".spool-")
    path, digest, size = Path(name), hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in stream:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


class LocalFileStore:
    """Blobs as files ``<root>/ab/cd/<sha256>``; temporary files in ``<root>/.tmp`` (same file system, atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where a blob lives."""
        name = check_name(sha256)
        return self.root / name[:2] / name[2:4] / name

    async def put(self, stream: AsyncIterable[bytes]) -> Blob:
        tmp, sha256, size = await spool(stream, self.tmp)
        target = self.path(sha256)
        try:
            if target.exists():
                return Blob(sha256, size, created=False)
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(os.chmod, tmp, 0o640)
            # link() fails if another writer got there first: the bytes are the same, keep theirs.
            try:
                await asyncio.to_thread(os.link, tmp, target)
            except FileExistsError:
                return Blob(sha256, size, created=False)
            return Blob(sha256, size, created=True)
        finally:
            tmp.unlink(missing_ok=True)

    async def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self.path(sha256)
        if not path.exists():
            raise FileNotFoundError(sha256)
        async for chunk in file_chunks(path, start, end):
            yield chunk

    async def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    async def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    async def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)


class S3FileStore:
    """Blobs as objects ``<prefix><sha256>`` of one bucket (any S3-compatible service), through boto3 in threads."""

    def __init__(
        self,
        *,
        bucket: str,
        spool_dir: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.spool_dir = spool_dir
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )

    def key(self, sha256: str) -> str:
        """The object key of a blob."""
        return f"{self.prefix}{check_name(sha256)}"

    async def put(self, stream: AsyncIterable[bytes]) -> Blob:
        tmp, sha256, size = await spool(stream, self.spool_dir)
        try:
            if await self.exists(sha256):
                return Blob(sha256, size, created=False)
            await asyncio.to_thread(
                self.client.upload_file, str(tmp), self.bucket, self.key(sha256),
                ExtraArgs={"Metadata": {"sha256": sha256}},
            )  # fmt: skip
            return Blob(sha256, size, created=True)
        finally:
            tmp.unlink(missing_ok=True)

    async def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        ranged = f"bytes={start}-{'' if end is None else end}"
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self.key(sha256), Range=ranged)
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(sha256) from exc
        body = response["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def _head(self, sha256: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    async def exists(self, sha256: str) -> bool:
        return await self._head(sha256) is not None

    async def size(self, sha256: str) -> int | None:
        head = await self._head(sha256)
        return None if head is None else int(head["ContentLength"])

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.key(sha256))

    def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (development and tests; production buckets are provisioned). Blocking."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


def make_file_store(settings: DigitizationSettings) -> FileStore:
    """The configured file store (blocking: an S3 bucket may be checked or created)."""
    if settings.storage_backend == "s3":
        assert settings.s3_bucket is not None
        s3 = S3FileStore(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            spool_dir=settings.files_root / ".tmp",
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None,
        )
        if settings.s3_create_bucket:
            s3.ensure_bucket()
        return s3
    return LocalFileStore(settings.files_root)


# ---- blobs in a unit of work ------------------------------------------------------------


async def put_blob(tx: UnitOfWork, files: FileStore, path: Path, media_type: str) -> Blob:
    """Store a file and register it in ``tx``; if ``tx`` rolls back, a blob this call created is deleted again."""
    blob = await files.put(file_chunks(path))
    await store.lock_blob(session=tx.session, sha256=blob.sha256)
    if not await files.exists(blob.sha256):
        # A failed request deleted the bytes it had created between our put and our lock: put them again.
        blob = await files.put(file_chunks(path))
    if blob.created:
        tx.after_rollback(partial(_forget, tx.db, files, blob.sha256))
    await store.add_blob(
        session=tx.session,
        blob=store.StoredBlob(sha256=blob.sha256, size=blob.size, media_type=media_type, created_at=tx.now),
    )
    return blob


async def discard_unregistered(tx: UnitOfWork, files: FileStore, sha256s: Iterable[str]) -> None:
    """Delete the blobs no committed row registers, each under its lock (held until ``tx`` ends)."""
    for sha256 in sha256s:
        await store.lock_blob(session=tx.session, sha256=sha256)
        if not await store.blob_known(session=tx.session, sha256=sha256):
            with suppress(Exception):
                await files.delete(sha256)


async def _forget(db: Database, files: FileStore, sha256: str) -> None:
    """After a rollback: the blob is unreferenced unless another request registered it since."""
    async with db.unit_of_work() as cleanup:
        await discard_unregistered(cleanup, files, [sha256])
