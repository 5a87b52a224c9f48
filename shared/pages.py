"""Pages for people: server-rendered Vietnamese HTML beside the JSON APIs, with the same rules for every service.

A service keeps its templates in ``services/<name>/templates/`` and builds one ``Pages`` from that folder (the
shared folder ``shared/templates/`` comes after it: ``base.html``, ``macros.html``, ``errors/*.html``). Its page
routes live on a ``PageRouter``; whatever such a route raises (a ``Problem``, a validation error, a rate limit, the
database gone) becomes a Vietnamese error page with the same status and ``Retry-After``, while the JSON routes keep
their problem documents. Every response of a page route carries the security headers (``SECURITY_HEADERS``).

Forms carry a signed double-submit token (``CsrfGuard``): no session is needed, the cookie is ``SameSite=Strict``,
``HttpOnly`` and scoped to the form's action path, and the token in the form is an HMAC over the cookie's random
nonce, the action and an expiry.

Pages load nothing from outside: one stylesheet served by the platform (``static_router``), no script at all
(``script-src 'none'``), images inline as ``data:`` URLs (a QR code from segno's ``png_data_uri``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from shared.clock import VN_TZ
from shared.errors import TYPE_BASE, Problem
from shared.status import STATUS_NAMES
from shared.vntext import (
    amount_in_words,
    format_date,
    format_instant,
    format_vnd,
    mask_id_number,
)

log = logging.getLogger("motcua.pages")

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SITE_NAME = "Bộ phận Một cửa"

# ---- security headers ---------------------------------------------------------------------------------------------

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'none'",  # the pages have no script: nothing injected can run
        "style-src 'self'",  # the one stylesheet; no style attribute, no <style>
        "img-src 'self' data:",  # QR codes inline
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # signed links carry their signature in the query
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure(response: Response) -> Response:
    """Put the page security headers on ``response``; ``Cache-Control: no-store`` unless the route set one."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers.setdefault("Cache-Control", "no-store")  # statuses change; forms carry a token
    return response


# ---- the stylesheet -----------------------------------------------------------------------------------------------

_CSS = (STATIC / "motcua.css").read_bytes()
_CSS_TAG = hashlib.sha256(_CSS).hexdigest()[:16]
CSS_PATH = "/static/motcua.css"
CSS_URL = f"{CSS_PATH}?v={_CSS_TAG}"  # a new URL for each version: browsers may keep it for a year


def static_router() -> APIRouter:
    """``GET /static/motcua.css``: the shared stylesheet, cacheable for a year (its URL in pages changes with it)."""
    router = APIRouter(include_in_schema=False)
    etag = f'"{_CSS_TAG}"'
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }

    @router.get(CSS_PATH, name="motcua_css")
    async def motcua_css(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(_CSS, media_type="text/css; charset=utf-8", headers=headers)

    return router


# ---- templates ----------------------------------------------------------------------------------------------------


def format_vnd_text(amount: int) -> str:
    """ "15.000 đồng"."""
    return f"{format_vnd(amount)} đồng"


def format_short_date(day: date | datetime) -> str:
    """ "05/03/2026", a datetime first moved to Vietnam time: for tables."""
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise ValueError("datetimes shown on pages must be timezone-aware")
        day = day.astimezone(VN_TZ).date()
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def status_name(code: int) -> str:
    """The national status in words ("Đang xử lý")."""
    return STATUS_NAMES.get(int(code), str(code))


FILTERS: Mapping[str, Callable[..., Any]] = {
    "vn_date": format_date,  # ngày 05 tháng 3 năm 2026
    "vn_instant": format_instant,  # 08 giờ 05 phút, ngày 03 tháng 02 năm 2026
    "short_date": format_short_date,  # 05/03/2026
    "vnd": format_vnd_text,  # 15.000 đồng
    "vnd_words": amount_in_words,  # Mười lăm nghìn đồng
    "mask_id": mask_id_number,  # *********234
    "status_name": status_name,  # Đang xử lý
}


def page_environment(*folders: Path | str) -> Environment:
    """Jinja2 over ``folders`` then the shared templates (a service's file overrides the shared one of that name).

    Autoescaping is on for every template (``.html`` or not, and strings): a value is text unless a template marks
    it ``|safe``. Undefined names are errors, not blanks.
    """
    loader = ChoiceLoader([FileSystemLoader(str(folder)) for folder in (*folders, TEMPLATES)])
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(site_name=SITE_NAME, unit_name=None, page_title=None, css_url=CSS_URL, csrf=None)
    return env


@dataclass(frozen=True)
class ErrorText:
    """What an error page tells a person."""

    title: str
    message: str


ERROR_TEXTS: Mapping[int, ErrorText] = {
    400: ErrorText("Yêu cầu không hợp lệ", "Đường dẫn hoặc thông tin gửi lên không đúng. Vui lòng kiểm tra lại."),
    403: ErrorText(
        "Chữ ký không hợp lệ hoặc đã hết hạn",
        "Đường dẫn này không còn dùng được: chữ ký của nó không hợp lệ hoặc đã hết hạn. "
        "Vui lòng dùng đường dẫn mới nhất trong tin nhắn, thư điện tử hoặc phiếu hẹn trả kết quả.",
    ),
    404: ErrorText(
        "Không tìm thấy",
        "Không tìm thấy trang hoặc hồ sơ theo đường dẫn này. Vui lòng kiểm tra lại mã hồ sơ trên phiếu hẹn.",
    ),
    405: ErrorText("Không thực hiện được", "Trang này không nhận yêu cầu theo cách này. Vui lòng mở lại đường dẫn."),
    409: ErrorText("Không thực hiện được lúc này", "Yêu cầu không phù hợp với tình trạng hiện tại của hồ sơ."),
    413: ErrorText("Nội dung quá lớn", "Nội dung gửi lên vượt quá giới hạn cho phép."),
    422: ErrorText("Thông tin chưa hợp lệ", "Một số thông tin gửi lên chưa đúng. Vui lòng quay lại, kiểm tra và gửi lại."),
    429: ErrorText(
        "Quá nhiều yêu cầu",
        "Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn. Vui lòng chờ một lát rồi thử lại.",
    ),
    500: ErrorText("Đã có lỗi xảy ra", "Hệ thống gặp lỗi khi xử lý yêu cầu. Lỗi đã được ghi nhận; vui lòng thử lại sau."),
    503: ErrorText(
        "Hệ thống tạm thời gián đoạn", "Hệ thống đang bận hoặc đang bảo trì. Vui lòng thử lại sau ít phút."
    ),
}
# Problems whose page says more than their status does, by slug.
SLUG_TEXTS: dict[str, ErrorText] = {
    "csrf-failed": ErrorText(
        "Biểu mẫu không hợp lệ hoặc đã hết hạn",
        "Không thể nhận biểu mẫu này: mã bảo vệ của biểu mẫu không hợp lệ hoặc đã hết hạn. "
        "Vui lòng tải lại trang, điền lại và gửi lại.",
    ),
}


def error_text(status: int, slug: str = "") -> ErrorText:
    """The Vietnamese title and message of an error page."""
    if slug in SLUG_TEXTS:
        return SLUG_TEXTS[slug]
    if status in ERROR_TEXTS:
        return ERROR_TEXTS[status]
    return ERROR_TEXTS[500] if status >= 500 else ERROR_TEXTS[400]


def _retry_after(problem: Problem) -> str | None:
    seconds = problem.extensions.get("retry_after_seconds")
    if seconds is None and problem.status == 429:
        seconds = 1
    if seconds is None and problem.status == 503:
        seconds = 5
    return None if seconds is None else str(max(1, int(seconds)))


class Pages:
    """One service's templates and how it answers with them."""

    def __init__(self, *folders: Path | str, site_name: str = SITE_NAME, **globals_: Any) -> None:
        self.env = page_environment(*folders)
        self.env.globals.update(site_name=site_name, **globals_)

    def html(self, template: str, context: Mapping[str, Any] | None = None) -> str:
        """The page's HTML."""
        return self.env.get_template(template).render(dict(context or {}))

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        csrf: CsrfToken | None = None,
    ) -> HTMLResponse:
        """The page as a response with the security headers; ``csrf`` is given to the template and its cookie set."""
        body = self.html(template, {"request": request, "csrf": csrf, **(context or {})})
        response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
        if csrf is not None:
            csrf.set_cookie(response)
        secure(response)
        return response

    def problem_page(self, request: Request, problem: Problem, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """A problem as a Vietnamese error page (``errors/<status>.html``, else ``errors/error.html``)."""
        text = error_text(problem.status, problem.slug)
        all_headers = dict(headers or {})
        retry = _retry_after(problem)
        if retry and "Retry-After" not in all_headers:
            all_headers["Retry-After"] = retry
        context = {
            "request": request,
            "status": problem.status,
            "slug": problem.slug,
            "title": text.title,
            "message": text.message,
            "retry_after": all_headers.get("Retry-After"),
            "page_title": text.title,
        }
        template = self.env.select_template([f"errors/{problem.status}.html", "errors/error.html"])
        response = HTMLResponse(template.render(context), status_code=problem.status, headers=all_headers)
        secure(response)
        return response

    async def error_page(self, request: Request, exc: Exception) -> HTMLResponse:
        """Any exception a page route raised, as the error page of what the app's handlers make of it.

        A ``Problem`` is shown directly; anything else goes through the app's own exception handlers first (so a
        database outage is the 503 with ``Retry-After`` and an unexpected error is logged as a 500), and their
        problem document is shown as a page.
        """
        if isinstance(exc, Problem):
            return self.problem_page(request, exc)
        handler = _handler_for(request, exc)
        if handler is None:
            raise exc
        if inspect.iscoroutinefunction(handler):
            response = await handler(request, exc)
        else:
            response = await run_in_threadpool(handler, request, exc)
        kept = {k: response.headers[k] for k in ("Retry-After", "Allow") if k in response.headers}
        return self.problem_page(request, _problem_of(response), kept)


def _handler_for(request: Request, exc: Exception) -> Callable[..., Any] | None:
    handlers: Mapping[Any, Callable[..., Any]] = getattr(request.app, "exception_handlers", {}) or {}
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _problem_of(response: Response) -> Problem:
    """The problem a handler's response describes (status alone when its body is no problem document)."""
    try:
        doc = json.loads(bytes(response.body))
    except (AttributeError, ValueError):
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    slug = str(doc.get("type", "")).removeprefix(TYPE_BASE) or "http-error"
    return Problem(response.status_code, slug, str(doc.get("title", "")), doc.get("detail"))


_DEFAULT_PAGES: Pages | None = None


def default_pages() -> Pages:
    """The shared templates alone: the error pages of a router given no ``Pages``."""
    global _DEFAULT_PAGES
    if _DEFAULT_PAGES is None:
        _DEFAULT_PAGES = Pages()
    return _DEFAULT_PAGES


# ---- page routes --------------------------------------------------------------------------------------------------


class PageRoute(APIRoute):
    """A route whose answers are pages: its errors are Vietnamese error pages, every answer has the security headers."""

    pages: Pages | None = None  # set on the subclass a PageRouter makes

    def _pages(self) -> Pages:
        return self.pages or default_pages()

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:  # noqa: BLE001 - shown as a page; the app's handlers log what they log
                response = await self._pages().error_page(request, exc)
            return secure(response)

        return page_handler

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A method the route does not take (a link opened as GET on a form's URL) is a 405 page, not JSON."""
        if self.methods and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self.methods))
            problem = Problem(405, "method-not-allowed", "Method not allowed")
            response = self._pages().problem_page(Request(scope, receive), problem, {"Allow": allow})
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)


class PageRouter(APIRouter):
    """An ``APIRouter`` of pages: HTML responses, left out of the OpenAPI document, errors shown as pages.

    ``pages`` renders the error pages (the service's own templates may override ``errors/*.html``); without it,
    the shared templates do. Rate limits are dependencies as on any router:
    ``PageRouter(pages=pages, prefix="/tra-cuu", dependencies=[rate_limited(Policy.PUBLIC)])``.
    """

    def __init__(self, *, pages: Pages | None = None, **kwargs: Any) -> None:
        route_class = type("ServicePageRoute", (PageRoute,), {"pages": pages})
        kwargs.setdefault("default_response_class", HTMLResponse)
        kwargs.setdefault("include_in_schema", False)
        super().__init__(route_class=route_class, **kwargs)


# ---- forms: signed double-submit tokens ---------------------------------------------------------------------------

CSRF_FIELD = "csrf_token"
CSRF_COOKIE = "motcua_csrf"
_CSRF_CONTEXT = b"motcua-pages-csrf-v1"


class CsrfRefused(Problem):
    """A form came without a valid token: its page is the Vietnamese 403 "biểu mẫu không hợp lệ hoặc đã hết hạn"."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, "csrf-failed", "Form token not valid", reason)


@dataclass(frozen=True)
class CsrfToken:
    """One form's token: ``field`` goes in the form, ``set_cookie`` on the response that shows it."""

    token: str
    nonce: str
    action: str
    max_age: int
    secure_cookie: bool

    @property
    def field(self) -> Markup:
        """``<input type="hidden" name="csrf_token" value="...">``."""
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, self.token)

    def set_cookie(self, response: Response) -> None:
        """The nonce, ``HttpOnly``, ``SameSite=Strict``, for the form's action path only, expiring with the token."""
        response.set_cookie(
            CSRF_COOKIE,
            self.nonce,
            max_age=self.max_age,
            path=self.action,
            secure=self.secure_cookie,
            httponly=True,
            samesite="strict",
        )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class CsrfGuard:
    """Issues and checks the signed double-submit tokens of one service's forms.

    The key comes from a secret the service is configured with (every replica must share it); it is derived with a
    context of its own, so a secret the service already uses for something else may serve. ``secure_cookie`` is
    for HTTPS deployments (production); the local stack serves plain HTTP.
    """

    def __init__(
        self,
        secret: bytes | str,
        *,
        max_age_seconds: int = 2 * 3600,
        secure_cookie: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("a CSRF secret needs at least 16 bytes")
        self._key = hmac.new(raw, _CSRF_CONTEXT, hashlib.sha256).digest()
        self.max_age = max_age_seconds
        self.secure_cookie = secure_cookie
        self._clock = clock

    @classmethod
    def ephemeral(cls, **kwargs: Any) -> CsrfGuard:
        """A guard with a random key of this process (one replica only: a restart voids open forms)."""
        return cls(secrets.token_bytes(32), **kwargs)

    def _mac(self, action: str, nonce: str, expires: int) -> str:
        message = b"\n".join((unquote(action).encode(), nonce.encode(), str(expires).encode()))
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, action: str) -> CsrfToken:
        """A token for a form that posts to the path ``action`` (e.g. ``/trang/ho-so/H01-1/danh-gia``)."""
        if not action.startswith("/"):
            raise ValueError("the form's action is a path: /...")
        nonce = _b64(secrets.token_bytes(32))
        expires = int(self._clock()) + self.max_age
        token = f"{expires}.{self._mac(action, nonce, expires)}"
        return CsrfToken(token=token, nonce=nonce, action=action, max_age=self.max_age, secure_cookie=self.secure_cookie)

    def check(self, *, action: str, nonce: str | None, token: str | None) -> None:
        """Refuse (``CsrfRefused``) unless ``token`` was issued by this key for ``nonce`` and ``action`` and is not expired."""
        if not nonce or not token:
            raise CsrfRefused("The form's token or its cookie is missing.")
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or not mac:
            raise CsrfRefused("The form's token is malformed.")
        expires = int(expires_text)
        if not hmac.compare_digest(mac.encode(), self._mac(action, nonce, expires).encode()):
            raise CsrfRefused("The form's token does not match.")
        if self._clock() > expires:
            raise CsrfRefused("The form's token has expired.")

    async def verify(self, request: Request) -> None:
        """Check a posted form: its ``csrf_token`` field against the cookie sent to this path."""
        form = await request.form()
        token = form.get(CSRF_FIELD)
        token = token if isinstance(token, str) else None
        nonces = _cookie_values(request, CSRF_COOKIE) or [None]
        refusal: CsrfRefused | None = None
        for nonce in nonces:  # a cookie of a parent path may come too: any one that matches will do
            try:
                self.check(action=request.url.path, nonce=nonce, token=token)
                return
            except CsrfRefused as exc:
                refusal = refusal or exc
        assert refusal is not None
        raise refusal


def _cookie_values(request: Request, name: str) -> list[str]:
    """Every value of cookie ``name`` the browser sent (one per matching path), most specific path first."""
    values = []
    for header in request.headers.getlist("cookie"):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name and value:
                values.append(value.strip('"'))
    return values
