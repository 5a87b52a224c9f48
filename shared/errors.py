"""RFC 9457 problem details: one exception type, one set of handlers for every service."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import DataError as PgDataError
from asyncpg.exceptions._base import DataError as ArgumentDataError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import is_connection_error

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:motcua:problem:"
log = logging.getLogger("motcua.errors")

_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


class Problem(Exception):
    """A failure the client should see as ``application/problem+json``."""

    def __init__(self, status: int, slug: str, title: str, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {"type": TYPE_BASE + self.slug, "title": self.title, "status": self.status}
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc


class NotFound(Problem):
    """A named resource does not exist (or is outside the caller's units)."""

    def __init__(self, what: str, key: str) -> None:
        super().__init__(404, "not-found", f"{what} not found", f"No {what} with identifier {key!r}.")


class Conflict(Problem):
    """The request clashes with the current state."""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(409, "conflict", "Conflict with the current state", detail, **extensions)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    """Render a problem."""
    instance = str(request.url.path) if request is not None else None
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    if problem.status == 429:
        headers = {"Retry-After": str(problem.extensions.get("retry_after_seconds", 1))}
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def _refused_value(exc: BaseException) -> bool:
    """True when the database refused a value of the request (a number out of range, a NUL in text), not the connection.

    Such a value passed validation (a path id, an offset) yet cannot be stored or looked up: the client's error, a 422.
    """
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, PgDataError | ArgumentDataError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of the app a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": [str(p) for p in err.get("loc", ())], "message": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
        problem = Problem(422, "validation-error", "The request is not valid", summary, errors=errors)
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _STATUS_SLUGS.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(Problem(exc.status_code, slug, slug.replace("-", " ").capitalize(), detail), request)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if _refused_value(exc):
            return await _unexpected(request, exc)
        if is_connection_error(exc):  # also "the database system is shutting down" during a restart
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            problem = Problem(503, "database-unavailable", "Database unavailable", "The database did not answer; nothing was changed. Retry shortly.")
            response = problem_response(problem, request)
            response.headers["Retry-After"] = "1"
            return response
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if _refused_value(exc):
            problem = Problem(
                422, "value-out-of-range", "A value cannot be used",
                "A value of the request is outside what can be stored or looked up (a number too large, a NUL character).",
            )  # fmt: skip
            return problem_response(problem, request)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = Problem(500, "internal-error", "Internal error", "The server failed; the error was logged.")
        return problem_response(problem, request)
