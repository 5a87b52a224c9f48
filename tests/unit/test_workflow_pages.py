"""Workflow's pages for people, the parts without a database: the links, the public steps, the forms' commands, the
form secret, and the page itself rendered from a case (the browser test is tests/e2e/test_pages_workflow.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import FormData
from starlette.requests import Request

from services.workflow import pages, store
from services.workflow.deps import WorkflowDeps, form_guard
from services.workflow.handlers import to_state
from services.workflow.notifications import (
    RenderContext,
    rating_signature,
    signed_links,
)
from services.workflow.settings import WorkflowSettings
from shared.pages import CSRF_COOKIE, CsrfRefused

KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
CODE = "000.00.12.H56-261126-0001"
T0 = datetime(2026, 11, 26, 1, 15, tzinfo=UTC)  # 08:15 in Vietnam
SCRIPT = "<script>alert(1)</script>"


def _case(status: str = "returned", **overrides: object) -> store.Case:
    values: dict[str, object] = {
        "code": CODE, "unit": "000.00.12.H56", "procedure_code": "1.004194", "procedure_name": "Đăng ký tạm trú",
        "applicant_name": "Nguyễn Thị Hồng Nhung", "applicant_phone": "0912345678", "channel": "counter", "status": status,
        "received_at": T0, "appointment_at": T0 + timedelta(days=3),
    }  # fmt: skip
    return store.Case(**(values | overrides))


def _step(seq: int, kind: str, hours: float, **extra: object) -> store.CaseStep:
    return store.CaseStep(case_code=CODE, seq=seq, kind=kind, handed_at=T0 + timedelta(hours=hours), **extra)


# ---- links --------------------------------------------------------------------------------------------------------


def test_every_signed_link_opens_the_page() -> None:
    ctx = RenderContext(public_base_url="https://dvc.example/", rating_link_secret="s" * 32, one_stop_name="", unit_names={})
    links = signed_links(ctx, CODE)
    page = f"https://dvc.example/trang/theo-doi/{CODE}?sig={rating_signature('s' * 32, CODE)}"
    assert (links.status_url, links.rating_url, links.feedback_url) == (page, f"{page}#danh-gia", f"{page}#phan-anh")
    assert pages.form_url(CODE, "danh-gia", "abc") == f"/trang/theo-doi/{CODE}/danh-gia?sig=abc"
    assert pages.page_url(CODE, "abc", sent="phan-anh", part="phan-anh") == f"/trang/theo-doi/{CODE}?sig=abc&da-gui=phan-anh#phan-anh"
    assert signed_links(ctx, "A/B?x").status_url.startswith("https://dvc.example/trang/theo-doi/A%2FB%3Fx?sig=")


# ---- the public steps ---------------------------------------------------------------------------------------------


def test_the_public_steps_name_what_happened_and_nothing_about_who() -> None:
    case = _case(apology_issued_at=T0 + timedelta(hours=30), returned_at=T0 + timedelta(days=2))
    steps = [
        _step(1, "assign", 1, from_officer="lanh-dao", to_officer="cb-x", note="giao cb-x"),
        _step(2, "assign", 2, from_officer="cb-x", to_officer="cb-y"),  # handed on inside the unit: one line says it
        _step(3, "supplement", 3, note="Form 02: thiếu giấy"),
        _step(4, "resume", 20),
        _step(5, "transfer", 21, to_unit="000.00.01.H56", note="nội bộ"),
        _step(6, "transfer_return", 40),
        _step(7, "result", 44),
        _step(8, "return", 48),
        _step(9, "something_new", 49),  # a kind the page does not know is not shown
    ]
    lines = pages.public_steps(case, to_state(case, None, []), steps)
    assert [(line.when, line.name) for line in lines] == [
        ("08:15 ngày 26/11/2026", "Tiếp nhận hồ sơ"),
        ("09:15 ngày 26/11/2026", "Chuyển bộ phận chuyên môn giải quyết"),
        ("11:15 ngày 26/11/2026", "Yêu cầu bổ sung hồ sơ"),
        ("04:15 ngày 27/11/2026", "Nhận hồ sơ bổ sung, tiếp tục giải quyết"),
        ("05:15 ngày 27/11/2026", "Chuyển cơ quan phối hợp giải quyết"),
        ("14:15 ngày 27/11/2026", "Gửi thư xin lỗi và hẹn lại ngày trả kết quả"),
        ("00:15 ngày 28/11/2026", "Cơ quan phối hợp chuyển trả kết quả phối hợp"),
        ("04:15 ngày 28/11/2026", "Có kết quả giải quyết"),
        ("08:15 ngày 28/11/2026", "Trả kết quả cho người nộp hồ sơ"),
    ]


def test_a_dossier_that_ended_without_a_result_says_how() -> None:
    case = _case("stopped", closed_at=T0 + timedelta(days=1), closed_reason="lý do nội bộ")
    lines = pages.public_steps(case, to_state(case, None, []), [_step(1, "assign", 1)])
    assert [line.name for line in lines] == ["Tiếp nhận hồ sơ", "Chuyển bộ phận chuyên môn giải quyết", "Dừng giải quyết hồ sơ"]


# ---- what the forms send ------------------------------------------------------------------------------------------


def test_the_rating_form_becomes_the_json_apis_command() -> None:
    form = FormData([
        ("csrf_token", "x"), ("rating", "satisfied"), ("officer_attitude", "very_satisfied"), ("on_time", ""),
        ("times_contacted", "2"), ("agencies_contacted", " "), ("received_and_returned_at_one_stop", "true"),
        ("comment", "  Nhanh  "), ("unknown", "ignored"),
    ])  # fmt: skip
    command = pages.rating_command(form)
    assert command.rating == "satisfied" and command.comment == "Nhanh"
    assert command.criteria.model_dump(exclude_none=True) == {
        "officer_attitude": "very_satisfied", "times_contacted": 2, "received_and_returned_at_one_stop": True,
    }  # fmt: skip
    assert pages.rating_command(FormData([("rating", "dissatisfied"), ("comment", "")])).comment is None


@pytest.mark.parametrize(
    "fields",
    [[], [("rating", "great")], [("rating", "satisfied"), ("times_contacted", "-1")], [("rating", "satisfied"), ("on_time", "x")]],
)
def test_a_rating_form_the_page_could_not_have_sent_is_refused(fields: list[tuple[str, str]]) -> None:
    with pytest.raises(RequestValidationError) as refused:
        pages.rating_command(FormData(fields))
    assert all(error["loc"][0] == "body" for error in refused.value.errors())


def test_the_feedback_form_is_always_the_signed_links_channel() -> None:
    command = pages.feedback_command(FormData([("content", " Phí cao "), ("contact", ""), ("channel", "counter")]))
    assert (command.content, command.contact, command.channel) == ("Phí cao", None, "public_link")
    with pytest.raises(RequestValidationError):
        pages.feedback_command(FormData([("content", "   ")]))


# ---- the forms' secret --------------------------------------------------------------------------------------------


def test_production_refuses_a_placeholder_page_form_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")  # production refuses plaintext Kafka
    monkeypatch.setenv("JWT_PUBLIC_KEY", KEY)
    monkeypatch.setenv("WORKFLOW_RATING_LINK_SECRET", "k" * 40)
    for placeholder in ("dev", "changeme", "", "short-but-not-placeholder"):
        monkeypatch.setenv("WORKFLOW_PAGE_FORM_SECRET", placeholder)
        with pytest.raises(ValueError, match="WORKFLOW_PAGE_FORM_SECRET"):
            WorkflowSettings()
    monkeypatch.setenv("WORKFLOW_PAGE_FORM_SECRET", "f" * 40)
    settings = WorkflowSettings()
    guard = form_guard(settings)
    token = guard.issue("/trang/theo-doi/x/danh-gia")
    assert token.secure_cookie  # production: the cookie only over HTTPS
    form_guard(settings).check(action=token.action, nonce=token.nonce, token=token.token)  # every replica: one key


def test_outside_production_a_placeholder_gets_a_key_of_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKFLOW_PAGE_FORM_SECRET", raising=False)
    settings = WorkflowSettings(environment="development", public_base_url="http://127.0.0.1:8002")
    first, second = form_guard(settings), form_guard(settings)
    token = first.issue("/trang/theo-doi/x/danh-gia")
    assert not token.secure_cookie  # the local stack serves plain HTTP
    first.check(action=token.action, nonce=token.nonce, token=token.token)
    with pytest.raises(CsrfRefused):
        second.check(action=token.action, nonce=token.nonce, token=token.token)


# ---- the page -----------------------------------------------------------------------------------------------------


def _render(case: store.Case, steps: list[store.CaseStep], sent: str = "") -> tuple[str, list[str]]:
    deps = WorkflowDeps.of(WorkflowSettings(environment="test"), db=None, clock=None)  # type: ignore[arg-type]
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})
    response = pages._case_page(request, deps, case, to_state(case, None, []), steps, signature="abc", sent=sent)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    return bytes(response.body).decode(), [v for k, v in response.raw_headers if k == b"set-cookie" for v in [v.decode()]]


def test_the_page_of_a_returned_case_has_both_forms_and_nothing_personal() -> None:
    case = _case(procedure_name=SCRIPT, returned_at=T0 + timedelta(days=2))
    html, cookies = _render(case, [_step(1, "return", 48, to_officer="cb-x")])
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'action="/trang/theo-doi/000.00.12.H56-261126-0001/danh-gia?sig=abc"' in html
    assert 'action="/trang/theo-doi/000.00.12.H56-261126-0001/phan-anh?sig=abc"' in html
    for private in ("Nguyễn Thị Hồng Nhung", "0912345678", "cb-x"):
        assert private not in html
    paths = sorted(c.split("Path=")[1].split(";")[0] for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert paths == [f"/trang/theo-doi/{CODE}/danh-gia", f"/trang/theo-doi/{CODE}/phan-anh"]
    assert all("HttpOnly" in c and "SameSite=strict" in c for c in cookies)


def test_an_open_or_rated_case_has_no_rating_form() -> None:
    html, cookies = _render(_case("in_progress"), [])
    assert "/danh-gia?sig" not in html and "sau khi nhận kết quả" in html and len(cookies) == 1
    html, _ = _render(_case(rated_at=T0 + timedelta(days=3)), [])
    assert "/danh-gia?sig" not in html and "Hồ sơ này đã được đánh giá" in html and "Cảm ơn ông/bà đã đánh giá" not in html
    html, _ = _render(_case(rated_at=T0 + timedelta(days=3)), [], sent="danh-gia")  # the rating form's redirect
    assert "Cảm ơn ông/bà đã đánh giá" in html and "Đã nhận phản ánh" not in html
    html, _ = _render(_case(), [], sent="phan-anh")  # the feedback form's redirect
    assert "Đã nhận phản ánh, kiến nghị của ông/bà" in html and "/phan-anh?sig" in html  # and another may be sent
    html, _ = _render(_case(), [], sent="<b>")
    assert "<b>" not in html and "Đã nhận phản ánh" not in html
    html, _ = _render(_case("withdrawn", closed_at=T0 + timedelta(hours=5)), [], sent="danh-gia")
    assert 'id="danh-gia"' not in html and "Cảm ơn ông/bà đã đánh giá" not in html and "Rút hồ sơ" in html
