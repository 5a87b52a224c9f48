"""Bad input found by fuzzing, pinned down: each is the client's error (a 4xx problem or a refusal), never a 500."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError

from services.digitization.upload import safe_filename
from services.workflow.domain import rating_link_valid, rating_signature
from shared.consumer import _no_nul
from shared.envelope import MAX_EVENT_BYTES, DecodeError, Envelope
from shared.errors import install_problem_handlers
from shared.webhooks import signature, signature_valid


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("giay-khai-sinh.pdf", True),
        ("Giấy khai sinh bản sao..pdf", True),
        ("../../etc/passwd", False),
        ("..\\..\\windows\\system32\\config", False),
        ("/etc/shadow", False),
        ("scans/page1.pdf", False),
        ("..", False),
        ("report\x00.pdf", False),
        ("line\nbreak.pdf", False),
    ],
)
def test_only_a_bare_file_name_is_taken(name: str, safe: bool) -> None:
    assert safe_filename(name) is safe


def test_an_oversized_event_is_refused_before_it_is_parsed() -> None:
    headers = [(k, v.encode()) for k, v in {"ce_id": "1", "ce_type": "t", "ce_source": "s", "ce_subject": "x", "ce_time": "2025-01-01T00:00:00+00:00"}.items()]
    with pytest.raises(DecodeError, match="exceeds the limit"):
        Envelope.from_kafka(b"{" + b" " * MAX_EVENT_BYTES + b"}", headers)


def test_a_nul_character_is_escaped_for_the_dead_letter_table() -> None:
    assert _no_nul("a\x00b") == "a\\x00b" and "\x00" not in _no_nul("\x00" * 3)


def test_a_forged_signature_with_non_ascii_characters_is_refused_not_an_error() -> None:
    body, timestamp = b"{}", "1700000000"
    assert signature_valid("s3cret", timestamp, body, signature("s3cret", timestamp, body))
    assert not signature_valid("s3cret", timestamp, body, "sha256=é" + "0" * 63)
    assert rating_link_valid("k", "HS-1", rating_signature("k", "HS-1"))
    assert not rating_link_valid("k", "HS-1", "chữ ký giả")


def _app_raising(exc: Exception) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "cause",
    [
        asyncpg.exceptions._base.DataError("invalid input for query argument $1: 26862741861 (value out of int32 range)"),
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding \"UTF8\": 0x00"),
    ],
)
def test_a_value_the_database_cannot_take_is_a_422_problem(cause: Exception) -> None:
    wrapped = DBAPIError("SELECT 1", {}, Exception("adapted"))
    wrapped.orig.__cause__ = cause
    response = _app_raising(wrapped).get("/boom")
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:motcua:problem:value-out-of-range"


def test_any_other_database_error_stays_a_500_problem() -> None:
    response = _app_raising(DBAPIError("SELECT 1", {}, Exception("syntax"))).get("/boom")
    assert response.status_code == 500 and response.json()["type"] == "urn:motcua:problem:internal-error"
