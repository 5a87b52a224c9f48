"""Streaming multipart uploads: the file part goes to a temporary file as it arrives, hashed on the way.

Starlette's form parser would buffer the whole body before the route runs; this reads
``request.stream()`` through python-multipart's push parser instead, so a size limit is enforced
while the bytes arrive and nothing but a small spool file ever holds an upload.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from services.digitization.domain import SNIFF_BYTES
from shared.errors import Problem

FIELD_ALLOWANCE = 256 * 1024  # room for the metadata parts and the multipart framing
MAX_FIELDS = 40
MAX_FIELD_BYTES = 8 * 1024
DRAIN_LIMIT = 64 * 1024 * 1024  # read (and drop) this much of a refused body so the client hears the 413


@dataclass
class SpooledFile:
    """The file part, on disk."""

    path: Path
    sha256: str
    size: int
    head: bytes
    filename: str | None
    declared_type: str | None

    def discard(self) -> None:
        """Delete the spool file."""
        self.path.unlink(missing_ok=True)


@dataclass
class Upload:
    """A parsed multipart request: its text fields and the one file."""

    fields: dict[str, str]
    file: SpooledFile | None

    def discard(self) -> None:
        """Delete whatever was spooled."""
        if self.file is not None:
            self.file.discard()


def too_large(limit: int) -> Problem:
    """The 413 problem."""
    return Problem(
        413, "payload-too-large", "The file is too large",
        f"Uploads are limited to {limit} bytes ({limit / 1048576:.1f} MiB).", limit_bytes=limit,
    )  # fmt: skip


def safe_filename(name: str) -> bool:
    """A bare file name: no folder part, not '.' or '..', no control characters (kept as metadata, never used as a path)."""
    return (
        name.strip() not in ("", ".", "..")
        and not any(sep in name for sep in ("/", "\\"))
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
    )


@dataclass
class _State:
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, bytes] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    kind: str = ""  # "field" | "file" | "skip"
    name: str = ""
    value: bytearray = field(default_factory=bytearray)
    pending: list[bytes] = field(default_factory=list)
    files: int = 0
    filename: str | None = None
    declared_type: str | None = None
    ended: bool = False
    error: Problem | None = None


async def receive(request: Request, *, spool_dir: Path, max_file_bytes: int, file_field: str = "file") -> Upload:
    """Parse the request; the caller must ``discard()`` the result when done. Problems: 400, 413, 415, 422."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Problem(415, "unsupported-media-type", "Send multipart/form-data", "Upload the file as multipart/form-data with a 'file' part.")
    declared = request.headers.get("content-length")
    oversized = False
    if declared and declared.isdigit() and int(declared) > max_file_bytes + FIELD_ALLOWANCE:
        if int(declared) > DRAIN_LIMIT:
            raise too_large(max_file_bytes)
        oversized = True

    state = _State()

    def on_part_begin() -> None:
        state.headers, state.kind, state.name, state.value = {}, "", "", bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_name.decode("latin-1").lower()] = state.header_value
        state.header_name, state.header_value = b"", b""

    def on_headers_finished() -> None:
        _, params = parse_options_header(state.headers.get("content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        state.name = name
        if b"filename" in params or name == file_field:
            state.files += 1
            if name != file_field or state.files > 1:
                state.error = state.error or Problem(
                    422, "validation-error", "The request is not valid", f"Send exactly one file, in the '{file_field}' part."
                )
                state.kind = "skip"
                return
            state.kind = "file"
            raw = params.get(b"filename")
            state.filename = raw.decode("utf-8", "replace")[:255] if raw else None
            if state.filename is not None and not safe_filename(state.filename):
                state.error = state.error or Problem(
                    422, "unsafe-filename", "The file name is not allowed",
                    "filename: a bare name is expected, without folders ('/', '\\', '..') or control characters.",
                )  # fmt: skip
            ctype = state.headers.get("content-type")
            state.declared_type = ctype.decode("latin-1")[:100] if ctype else None
        else:
            if len(state.fields) >= MAX_FIELDS:
                state.error = state.error or Problem(422, "validation-error", "The request is not valid", "Too many form fields.")
                state.kind = "skip"
                return
            state.kind = "field"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.kind == "file":
            state.pending.append(bytes(data[start:end]))
        elif state.kind == "field":
            state.value += data[start:end]
            if len(state.value) > MAX_FIELD_BYTES:
                state.error = state.error or Problem(
                    422, "validation-error", "The request is not valid", f"{state.name}: longer than {MAX_FIELD_BYTES} bytes."
                )
                state.kind = "skip"

    def on_part_end() -> None:
        if state.kind == "field":
            try:
                state.fields[state.name] = state.value.decode("utf-8")
            except UnicodeDecodeError:
                state.error = state.error or Problem(422, "validation-error", "The request is not valid", f"{state.name}: not UTF-8.")

    def on_end() -> None:
        state.ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
            "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished, "on_end": on_end,
        },  # fmt: skip
    )
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix=".upload-")
    path = Path(name)
    out = os.fdopen(fd, "wb")
    digest, size, head, received = hashlib.sha256(), 0, bytearray(), 0
    try:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if oversized:
                    if received > DRAIN_LIMIT:
                        break
                    continue
                try:
                    parser.write(chunk)
                except MultipartParseError as exc:
                    raise Problem(400, "malformed-upload", "The multipart body is malformed", str(exc)) from None
                for piece in state.pending:
                    size += len(piece)
                    if size > max_file_bytes:
                        oversized = True
                        break
                    digest.update(piece)
                    if len(head) < SNIFF_BYTES:
                        head += piece[: SNIFF_BYTES - len(head)]
                    await asyncio.to_thread(out.write, piece)
                state.pending.clear()
        except ClientDisconnect:
            raise Problem(400, "upload-incomplete", "The upload was cut off", "The client went away before the body ended.") from None
        if oversized:
            raise too_large(max_file_bytes)
        if not state.ended:
            raise Problem(
                400, "upload-incomplete", "The upload was cut off",
                "The multipart body ended before its closing boundary: the upload is truncated.",
            )  # fmt: skip
        if state.error is not None:
            raise state.error
        out.close()
        if state.files == 0:
            path.unlink(missing_ok=True)
            return Upload(fields=state.fields, file=None)
        spooled = SpooledFile(
            path=path, sha256=digest.hexdigest(), size=size, head=bytes(head), filename=state.filename,
            declared_type=state.declared_type,
        )  # fmt: skip
        return Upload(fields=state.fields, file=spooled)
    except BaseException:
        out.close()
        path.unlink(missing_ok=True)
        raise
