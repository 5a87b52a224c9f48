"""The platform of the pages for people (shared/pages.py): escaping, signed form tokens, headers, error pages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.testclient import TestClient

from shared.errors import PROBLEM_JSON, NotFound, install_problem_handlers
from shared.pages import (
    CONTENT_SECURITY_POLICY,
    CSRF_COOKIE,
    CSRF_FIELD,
    CSS_URL,
    CsrfGuard,
    CsrfRefused,
    PageRouter,
    Pages,
    static_router,
)
from shared.ratelimit import Policy, TokenBuckets, rate_limited

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class FakeClock:
    """Seconds since the epoch that move only when told."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A service's own template folder."""
    (tmp_path / "value.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>{{ title }}</h1><p id="v">{{ value }}</p>{% endblock %}'
    )
    (tmp_path / "plain.txt").write_text("{{ value }}")
    (tmp_path / "money.html").write_text(
        "{{ amount|vnd }}|{{ amount|vnd_words }}|{{ day|vn_date }}|{{ at|vn_instant }}|{{ day|short_date }}"
        "|{{ 4|status_name }}|{{ id|mask_id }}"
    )
    (tmp_path / "form.html").write_text(
        '{% extends "base.html" %}{% import "macros.html" as ui %}{% block content %}'
        '{% call ui.form(action, csrf) %}{{ ui.field("name", "Họ và tên", required=true) }}{% endcall %}{% endblock %}'
    )
    return tmp_path


# ---- templates ----------------------------------------------------------------------------------------------------


def test_a_value_is_shown_as_text_never_as_markup(folder: Path) -> None:
    pages = Pages(folder, unit_name=SCRIPT)
    html = pages.html("value.html", {"title": "Hồ sơ của bạn", "value": SCRIPT})
    assert f'<p id="v">{ESCAPED}</p>' in html
    assert "<script" not in html  # the unit's name too is escaped
    assert pages.html("plain.txt", {"value": SCRIPT}).strip() == ESCAPED  # whatever the template's extension
    assert pages.env.from_string("{{ v }}").render(v=SCRIPT) == ESCAPED


def test_the_base_page_is_vietnamese_mobile_and_loads_only_the_shared_stylesheet(folder: Path) -> None:
    html = Pages(folder).html("value.html", {"title": "Tra cứu", "value": "x"})
    assert '<html lang="vi">' in html
    assert '<meta charset="utf-8">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert f'<link rel="stylesheet" href="{CSS_URL}">' in html
    assert '<main id="noi-dung"' in html and 'href="#noi-dung"' in html  # a skip link to the main landmark
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_vietnamese_filters(folder: Path) -> None:
    text = Pages(folder).html(
        "money.html",
        {"amount": 1_250_000, "day": date(2026, 3, 5), "at": datetime(2026, 2, 3, 1, 5, tzinfo=UTC), "id": "079201001234"},
    )
    assert text.strip() == (
        "1.250.000 đồng|Một triệu hai trăm năm mươi nghìn đồng|ngày 05 tháng 3 năm 2026"
        "|08 giờ 05 phút, ngày 03 tháng 02 năm 2026|05/03/2026|Đang xử lý|*********234"
    )


def test_a_service_template_overrides_the_shared_one(folder: Path) -> None:
    (folder / "errors").mkdir()
    (folder / "errors" / "404.html").write_text("riêng: {{ title }}")
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})
    assert Pages(folder).problem_page(request, NotFound("dossier", "X")).body.decode() == "riêng: Không tìm thấy"
    assert "Lỗi 404" in Pages().problem_page(request, NotFound("dossier", "X")).body.decode()


# ---- forms: signed double-submit tokens ---------------------------------------------------------------------------


def test_a_token_is_accepted_for_its_nonce_and_action_until_it_expires() -> None:
    clock = FakeClock()
    guard = CsrfGuard("a secret of the service, shared by replicas", max_age_seconds=600, clock=clock)
    issued = guard.issue("/trang/ho-so/H01-1/danh-gia")
    guard.check(action="/trang/ho-so/H01-1/danh-gia", nonce=issued.nonce, token=issued.token)
    clock.now += 600
    guard.check(action="/trang/ho-so/H01-1/danh-gia", nonce=issued.nonce, token=issued.token)
    clock.now += 1
    with pytest.raises(CsrfRefused, match="expired"):
        guard.check(action="/trang/ho-so/H01-1/danh-gia", nonce=issued.nonce, token=issued.token)


def test_a_tampered_token_is_refused() -> None:
    guard = CsrfGuard("a secret of the service, shared by replicas", clock=FakeClock())
    issued = guard.issue("/a/danh-gia")
    other = guard.issue("/a/danh-gia")
    expires, _, mac = issued.token.partition(".")
    forged = [
        {"action": "/a/danh-gia", "nonce": other.nonce, "token": issued.token},  # the cookie of another form
        {"action": "/b/danh-gia", "nonce": issued.nonce, "token": issued.token},  # another form's action
        {"action": "/a/danh-gia", "nonce": issued.nonce, "token": f"{int(expires) + 3600}.{mac}"},  # a later expiry
        {"action": "/a/danh-gia", "nonce": issued.nonce, "token": f"{expires}.{mac[:-2]}AA"},
        {"action": "/a/danh-gia", "nonce": issued.nonce, "token": "garbage"},
        {"action": "/a/danh-gia", "nonce": issued.nonce, "token": None},
        {"action": "/a/danh-gia", "nonce": None, "token": issued.token},
    ]
    for attempt in forged:
        with pytest.raises(CsrfRefused) as refused:
            guard.check(**attempt)
        assert refused.value.status == 403 and refused.value.slug == "csrf-failed"
    with pytest.raises(CsrfRefused):  # a token of another key
        CsrfGuard("another service's secret, not ours", clock=FakeClock()).check(
            action="/a/danh-gia", nonce=issued.nonce, token=issued.token
        )


def test_the_form_field_and_the_cookie() -> None:
    guard = CsrfGuard("a secret of the service, shared by replicas", max_age_seconds=900, secure_cookie=True)
    issued = guard.issue("/trang/ho-so/H01-1/danh-gia")
    assert str(issued.field) == f'<input type="hidden" name="{CSRF_FIELD}" value="{issued.token}">'
    response = HTMLResponse("")
    issued.set_cookie(response)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}={issued.nonce};")
    for attribute in ("HttpOnly", "Max-Age=900", "Path=/trang/ho-so/H01-1/danh-gia", "SameSite=strict", "Secure"):
        assert attribute in cookie
    with pytest.raises(ValueError):
        CsrfGuard("short")
    with pytest.raises(ValueError):
        guard.issue("danh-gia")


# ---- page routes in an app ----------------------------------------------------------------------------------------


class Outage(Exception):
    """Something the app's own handler turns into a 503 problem."""


@pytest.fixture
def client(folder: Path) -> TestClient:
    """An app with a page router and a JSON router side by side, as a service has them."""
    pages = Pages(folder, unit_name="UBND phường Bến Nghé")
    guard = CsrfGuard("a secret of the service, shared by replicas", secure_cookie=False)
    app = FastAPI()
    install_problem_handlers(app)

    @app.exception_handler(Outage)
    async def _outage(request: Request, exc: Outage) -> JSONResponse:
        body = {"type": "urn:motcua:problem:database-unavailable", "title": "Database unavailable", "status": 503}
        return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON, headers={"Retry-After": "7"})

    app.state.rate_limits = {Policy.PUBLIC: TokenBuckets(0.001, 1), Policy.CALLBACK: TokenBuckets(0, 0)}
    router = PageRouter(pages=pages, prefix="/trang")
    limited = PageRouter(pages=pages, prefix="/trang", dependencies=[rate_limited(Policy.PUBLIC)])
    api = APIRouter(prefix="/api/v1")

    @router.get("/gia-tri")
    async def value_page(request: Request, value: str = "") -> HTMLResponse:
        return pages.render(request, "value.html", {"title": "Giá trị", "value": value})

    @router.get("/ho-so/{code}")
    async def missing(code: str) -> HTMLResponse:
        raise NotFound("dossier", code)

    @router.get("/hong")
    async def broken() -> HTMLResponse:
        raise RuntimeError("a bug")

    @router.get("/mat-ket-noi")
    async def outage() -> HTMLResponse:
        raise Outage

    @router.get("/so/{n}")
    async def number(n: int) -> HTMLResponse:
        return HTMLResponse(str(n))

    @router.get("/danh-gia")
    async def form(request: Request) -> HTMLResponse:
        action = "/trang/danh-gia"
        return pages.render(request, "form.html", {"action": action}, csrf=guard.issue(action))

    @router.post("/danh-gia")
    async def submit(request: Request, name: Annotated[str, Form()]) -> HTMLResponse:
        await guard.verify(request)
        return pages.render(request, "value.html", {"title": "Cảm ơn", "value": name})

    @limited.get("/gioi-han")
    async def limited_page(request: Request) -> HTMLResponse:
        return pages.render(request, "value.html", {"title": "Được", "value": "ok"})

    @api.get("/dossiers/{code}")
    async def json_missing(code: str) -> dict[str, str]:
        raise NotFound("dossier", code)

    for included in (router, limited, api, static_router()):
        app.include_router(included)
    return TestClient(app, raise_server_exceptions=False)


def assert_page_headers(response) -> None:  # an httpx response
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_the_content_security_policy_allows_no_script_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] in ("'none'", "'self'")
    assert directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["form-action"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY


def test_every_page_answer_has_the_security_headers(client: TestClient) -> None:
    page = client.get("/trang/gia-tri", params={"value": SCRIPT})
    assert page.status_code == 200
    assert_page_headers(page)
    assert ESCAPED in page.text and "<script" not in page.text
    assert "UBND phường Bến Nghé" in page.text


@pytest.mark.parametrize(
    ("path", "status", "title"),
    [
        ("/trang/ho-so/KHONG-CO", 404, "Không tìm thấy"),
        ("/trang/hong", 500, "Đã có lỗi xảy ra"),
        ("/trang/mat-ket-noi", 503, "Hệ thống tạm thời gián đoạn"),
        ("/trang/so/khong-phai-so", 422, "Thông tin chưa hợp lệ"),
    ],
)
def test_errors_of_page_routes_are_vietnamese_pages(client: TestClient, path: str, status: int, title: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert_page_headers(response)
    assert f"<h1 id=\"error-title\">{title}</h1>" in response.text
    assert '<html lang="vi">' in response.text
    if status == 503:
        assert response.headers["retry-after"] == "7"  # what the app's own handler said


def test_a_json_route_still_answers_problem_json(client: TestClient) -> None:
    response = client.get("/api/v1/dossiers/KHONG-CO")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "urn:motcua:problem:not-found"
    assert "content-security-policy" not in response.headers
    assert client.get("/nowhere").headers["content-type"] == PROBLEM_JSON  # no route: as before


def test_page_routes_stay_out_of_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert list(paths) == ["/api/v1/dossiers/{code}"]


def test_a_rate_limited_page_is_a_429_page_with_retry_after(client: TestClient) -> None:
    assert client.get("/trang/gioi-han").status_code == 200
    refused = client.get("/trang/gioi-han")
    assert refused.status_code == 429
    assert_page_headers(refused)
    assert int(refused.headers["retry-after"]) >= 1
    assert "Quá nhiều yêu cầu" in refused.text and f"{refused.headers['retry-after']} giây" in refused.text


def test_a_page_opened_with_the_wrong_method_is_a_405_page(client: TestClient) -> None:
    response = client.put("/trang/danh-gia")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]  # the first route of the path (as Starlette answers for JSON)
    assert "Không thực hiện được" in response.text
    assert_page_headers(response)


def test_a_form_posts_with_its_token_and_is_refused_without(client: TestClient) -> None:
    form = client.get("/trang/danh-gia")
    assert form.status_code == 200
    assert 'for="f-name"' in form.text and 'id="f-name"' in form.text
    token = form.text.split(f'name="{CSRF_FIELD}" value="', 1)[1].split('"', 1)[0]
    assert "SameSite=strict" in form.headers["set-cookie"] and "Path=/trang/danh-gia" in form.headers["set-cookie"]

    accepted = client.post("/trang/danh-gia", data={"name": "Nguyễn Văn An", CSRF_FIELD: token})
    assert accepted.status_code == 200 and "Nguyễn Văn An" in accepted.text

    forged = client.post("/trang/danh-gia", data={"name": "x", CSRF_FIELD: token[:-3] + "AAA"})
    assert forged.status_code == 403
    assert_page_headers(forged)
    assert "Biểu mẫu không hợp lệ hoặc đã hết hạn" in forged.text

    client.cookies.clear()
    no_cookie = client.post("/trang/danh-gia", data={"name": "x", CSRF_FIELD: token})
    assert no_cookie.status_code == 403 and "Biểu mẫu không hợp lệ hoặc đã hết hạn" in no_cookie.text


def test_the_stylesheet_is_served_for_a_year(client: TestClient) -> None:
    css = client.get(CSS_URL)
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "url(" not in css.text and "@import" not in css.text  # nothing fetched from elsewhere
    again = client.get(CSS_URL, headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304
