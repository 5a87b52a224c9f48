"""A client of a province's LGSP (the integration platform in front of the national portal DVCQG), DOMAIN.md §7.1.

The transport observed in public implementations (OpenCPS ``DVCQGIntegrationAction``, the Thanh Hóa and Hà Giang
adapters), not a published specification, so every name is configuration (``LgspConfig``):

1. ``POST {base_url}{auth_endpoint}``, header ``dstcode``, body ``{"username", "password"}`` → ``{"session": …}``.
2. ``POST {base_url}{integration_endpoint}``, header ``dstcode``, body ``{"session", "madonvi", "service", …}``.
3. ``error_code`` 0 or ``"00"`` is success; anything else is a refusal with its code and message.

The session is kept and shared by every call of one client. It is refreshed when it is older than
``session_ttl_seconds`` (if set), and when the LGSP refuses a call with one of ``session_invalid_codes`` (or HTTP
401/403): the client logs in again and repeats the call once. Two calls that find the session refused at the same
time log in once.

    async with LgspClient(config) as lgsp:
        answer = await lgsp.call("TraCuuHoSo", {"MaHoSo": "000.00.12.H56-261126-0001"})
        answer.body                    # the LGSP's JSON answer

``call`` raises ``LgspRefused`` (the LGSP answered and said no: ``code``, ``message``, the answer) or
``LgspUnavailable`` (no usable answer: connection refused, timeout, HTTP 5xx/408/429, not JSON): the first is the
LGSP's decision about this request, the second says nothing about it and is worth trying again later.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_SUCCESS_CODES = ("0", "00")
DEFAULT_MESSAGE_KEYS = ("error_message", "message", "error_msg", "msg", "error")


@dataclass(frozen=True, kw_only=True)
class LgspConfig:
    """Where the LGSP is and how to talk to it; a province corrects any of it from its onboarding papers."""

    base_url: str
    username: str = ""
    password: str = ""
    dstcode: str = ""  # the destination code header (the national portal's code at the LGSP)
    madonvi: str = ""  # the unit code a call is made for, unless the call names another
    auth_endpoint: str = "/auth"
    integration_endpoint: str = "/integration"
    session_key: str = "session"  # where the auth answer puts the session
    error_code_key: str = "error_code"
    message_keys: tuple[str, ...] = DEFAULT_MESSAGE_KEYS
    success_codes: tuple[str, ...] = DEFAULT_SUCCESS_CODES
    # Codes with which the LGSP says "this session is not valid (any more)": log in again and repeat once.
    session_invalid_codes: tuple[str, ...] = ()
    session_ttl_seconds: float | None = None  # refresh a session older than this before using it (None: only when refused)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class LgspRequest:
    """What was posted (the session masked), for a history an operator reads."""

    url: str
    service: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LgspAnswer:
    """An accepted call: the LGSP's JSON answer and what was sent."""

    request: LgspRequest
    body: dict[str, Any]
    status_code: int
    relogged: bool = False  # the session was refused and renewed on the way


class LgspError(Exception):
    """Base of the client's errors; ``request`` is what was sent (None when nothing was)."""

    def __init__(self, message: str, *, request: LgspRequest | None = None) -> None:
        super().__init__(message)
        self.request = request


class LgspUnavailable(LgspError):
    """No usable answer: the LGSP is down, slow, overloaded or answered something that is not its JSON. Retry later."""


class LgspRefused(LgspError):
    """The LGSP answered and refused: ``code`` (its ``error_code``, or ``HTTP 4xx``), ``message`` and the answer."""

    def __init__(self, code: str, message: str, *, body: Mapping[str, Any] | None = None, request: LgspRequest | None = None,
                 status_code: int | None = None) -> None:  # fmt: skip
        super().__init__(f"LGSP refused ({code}): {message}" if message else f"LGSP refused ({code})", request=request)
        self.code = code
        self.message = message
        self.body = dict(body or {})
        self.status_code = status_code


class LgspAuthFailed(LgspRefused):
    """The login itself was refused (wrong credentials, unknown dstcode)."""


def error_code(body: Mapping[str, Any], key: str = "error_code") -> str | None:
    """The answer's error code as text (``0`` and ``"0"`` alike), or None when it has none."""
    value = body.get(key)
    if value is None:
        return None
    return str(value).strip()


def is_success(code: str | None, success_codes: tuple[str, ...] = DEFAULT_SUCCESS_CODES) -> bool:
    """Whether an ``error_code`` means success (0 or "00" unless configured otherwise)."""
    return code is not None and code in success_codes


@dataclass
class _Session:
    token: str
    obtained: float = field(default_factory=time.monotonic)


class LgspClient:
    """An async LGSP client: one session shared by every call, renewed on expiry or refusal. Close it after use."""

    def __init__(self, config: LgspConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds, transport=transport)
        self._session: _Session | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0  # how many times this client logged in (an operator's clue to a session that keeps expiring)

    async def __aenter__(self) -> LgspClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def forget_session(self) -> None:
        """Drop the session: the next call logs in first."""
        self._session = None

    # ---- the two requests ------------------------------------------------------------------------------------------

    async def call(self, service: str, payload: Mapping[str, Any] | None = None, *, madonvi: str | None = None) -> LgspAnswer:
        """Post ``{"session", "madonvi", "service", **payload}`` to the integration endpoint; the accepted answer.

        A refusal that says the session is not valid logs in again and repeats the call once.
        """
        session = await self._current_session()
        try:
            return await self._post_service(service, payload, madonvi=madonvi, session=session)
        except LgspRefused as refused:
            if not self._session_refused(refused):
                raise
        await self._renew(session)
        answer = await self._post_service(service, payload, madonvi=madonvi, session=await self._current_session())
        return LgspAnswer(answer.request, answer.body, answer.status_code, relogged=True)

    async def login(self) -> str:
        """``POST auth`` with the credentials and ``dstcode``: a new session (kept for the calls)."""
        config = self.config
        url = _join(config.base_url, config.auth_endpoint)
        request = LgspRequest(url=url, service="auth", body={"username": config.username, "password": "***"})
        body, status = await self._post(url, {"username": config.username, "password": config.password}, request)
        code = error_code(body, config.error_code_key)
        token = body.get(config.session_key)
        if status >= 400 or (code is not None and not is_success(code, config.success_codes)) or not token:
            raise LgspAuthFailed(code or f"HTTP {status}", self._message(body) or "no session in the answer", body=body,
                                 request=request, status_code=status)  # fmt: skip
        self._session = _Session(str(token))
        self.logins += 1
        return str(token)

    # ---- internals ----------------------------------------------------------------------------------------------------

    async def _current_session(self) -> str:
        async with self._login_lock:
            ttl = self.config.session_ttl_seconds
            if self._session is not None and (ttl is None or time.monotonic() - self._session.obtained < ttl):
                return self._session.token
            return await self.login()

    async def _renew(self, refused_token: str) -> None:
        """Log in again unless another call already replaced the refused session."""
        async with self._login_lock:
            if self._session is None or self._session.token == refused_token:
                await self.login()

    def _session_refused(self, refused: LgspRefused) -> bool:
        if refused.status_code in (401, 403):
            return True
        return refused.code in self.config.session_invalid_codes

    async def _post_service(self, service: str, payload: Mapping[str, Any] | None, *, madonvi: str | None, session: str) -> LgspAnswer:
        config = self.config
        url = _join(config.base_url, config.integration_endpoint)
        body = {"session": session, "madonvi": madonvi if madonvi is not None else config.madonvi, "service": service, **(payload or {})}
        request = LgspRequest(url=url, service=service, body={**body, "session": "***"})
        answer, status = await self._post(url, body, request)
        code = error_code(answer, config.error_code_key)
        if status >= 400:
            raise LgspRefused(code or f"HTTP {status}", self._message(answer), body=answer, request=request, status_code=status)
        if not is_success(code, config.success_codes):
            raise LgspRefused(code if code is not None else "none", self._message(answer) or "no error_code in the answer",
                              body=answer, request=request, status_code=status)  # fmt: skip
        return LgspAnswer(request, answer, status)

    async def _post(self, url: str, body: Mapping[str, Any], request: LgspRequest) -> tuple[dict[str, Any], int]:
        """POST JSON with the ``dstcode`` header; the JSON answer and the HTTP status (4xx answers are returned)."""
        headers = {"dstcode": self.config.dstcode, "Content-Type": "application/json; charset=utf-8"}
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            response = await self._client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise LgspUnavailable(f"{type(exc).__name__}: {exc}".rstrip(": "), request=request) from exc
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise LgspUnavailable(f"HTTP {status}: {response.text[:300]}", request=request)
        try:
            answer = response.json()
        except ValueError:
            if status >= 400:
                return {"text": response.text[:300]}, status
            raise LgspUnavailable(f"HTTP {status}: the answer is not JSON: {response.text[:300]!r}", request=request) from None
        if not isinstance(answer, dict):
            answer = {"data": answer}
        return answer, status

    def _message(self, body: Mapping[str, Any]) -> str:
        for key in self.config.message_keys:
            value = body.get(key)
            if value:
                return str(value)[:1000]
        return ""


def _join(base: str, endpoint: str) -> str:
    if endpoint.startswith(("http://", "https://")):
        return endpoint
    return base.rstrip("/") + "/" + endpoint.lstrip("/")
