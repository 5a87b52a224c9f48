"""A database that is away is told apart from a statement that failed: 503 and waiting, not 500 and dead letters.

During a Postgres restart asyncpg refuses new connections with "the database
system is shutting down" (57P03); SQLAlchemy hands that on as a plain
``DBAPIError`` that is neither an ``OperationalError`` nor marked invalidated.
The fault test that restarts Postgres under load saw intake and payments answer
500 to it; these tests pin the classification down without a server.
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.consumer import TransientError, is_infrastructure_error
from shared.db import is_connection_error
from shared.errors import install_problem_handlers


def _wrapped(orig: BaseException, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    """What SQLAlchemy raises for an asyncpg error: the adapter's error, caused by asyncpg's, wrapped again."""
    adapted = Exception(str(orig))
    adapted.__cause__ = orig
    error = kind("SELECT 1", {}, adapted)
    error.__cause__ = adapted
    return error


SERVER_AWAY = [
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ConnectionRefusedError(111, "Connection refused"),
]


@pytest.mark.parametrize("orig", SERVER_AWAY, ids=lambda e: type(e).__name__)
def test_a_server_that_is_away_is_a_connection_error(orig: BaseException) -> None:
    assert is_connection_error(_wrapped(orig))
    assert is_infrastructure_error(_wrapped(orig))


def test_a_refused_statement_is_not_a_connection_error() -> None:
    duplicate = _wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key value"), IntegrityError)
    assert not is_connection_error(duplicate)
    assert not is_infrastructure_error(duplicate)
    assert not is_connection_error(ValueError("no such procedure"))


def test_a_handlers_transient_verdict_is_waited_out_but_is_no_connection_error() -> None:
    assert is_infrastructure_error(TransientError("the catalogue is not loaded yet"))
    assert not is_connection_error(TransientError("the catalogue is not loaded yet"))


def _app(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/dossiers")
    async def receive() -> None:
        raise error

    return app


async def _post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/dossiers")


async def test_a_request_during_a_database_restart_gets_a_503_problem_to_retry() -> None:
    response = await _post(_app(_wrapped(SERVER_AWAY[0])))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:motcua:problem:database-unavailable"
    assert response.headers["Retry-After"] == "1"


async def test_a_request_whose_statement_fails_gets_a_500_problem() -> None:
    response = await _post(_app(_wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key value"), IntegrityError)))
    assert response.status_code == 500 and response.json()["type"] == "urn:motcua:problem:internal-error"
