"""Intake's and digitization's pages without a browser: the words they use, what they leave out, how they are routed.

The browser tests (tests/e2e/test_pages_intake.py, tests/e2e/test_pages_digitization.py) open the pages of the
real services; here the wording of every case is checked directly, including the ones slow to reach end to end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.digitization import domain as digitization_domain
from services.digitization import pages as digitization_pages
from services.digitization import signing
from services.digitization import store as digitization_store
from services.digitization.app import create_app as digitization_app
from services.digitization.settings import DigitizationSettings
from services.intake import domain, pages, printing, store
from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from shared.calendar import TimeLimit, TimeUnit
from shared.fees import FeeLine, FeeUnit
from shared.pages import PageRoute

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
UNIT = "000.00.12.H56"
RECEIVED = datetime(2026, 3, 2, 1, 5, tzinfo=UTC)  # 08 giờ 05 phút in Việt Nam
DUE = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)  # 17 giờ 00 phút


def intake_settings() -> IntakeSettings:
    return IntakeSettings(environment="test", unit_names={UNIT: "UBND phường Phú Hội"}, public_base_url="https://motcua.example.gov.vn/")


def dossier(**kwargs: object) -> store.Dossier:
    sa.orm.configure_mappers()
    values: dict[str, object] = dict(
        code=f"{UNIT}-260302-0001", unit=UNIT, receiving_unit=UNIT, procedure_code="1.004194", procedure_version=1,
        procedure_name="Đăng ký tạm trú", channel="counter", applicant_kind="citizen", applicant_name="Nguyễn Thị Hồng Nhung",
        applicant_id_number="001203004567", applicant_address="12 Lê Lợi, phường Phú Hội", applicant_phone="0912345678",
        applicant_email="nhung@example.vn", components=[{"name": "Tờ khai CT01"}], return_channel="counter",
        received_at=RECEIVED, appointment_at=DUE, legal_due_at=DUE, fee={"total": 15000}, status=2, received_by="clerk-1",
    )  # fmt: skip
    values.update(kwargs)
    return store.Dossier.model_construct(**values)


def status_html(d: store.Dossier) -> str:
    settings = intake_settings()
    view = pages.status_view(d, settings)
    return pages.PAGES.html("status.html", {"d": view, "unit_name": printing.unit_name(settings, d.receiving_unit)})


# ---- the status page ------------------------------------------------------------------------------------------------


def test_the_status_page_shows_the_public_facts_and_nothing_of_the_applicant() -> None:
    html = status_html(dossier())
    for shown in (f"{UNIT}-260302-0001", "Đăng ký tạm trú", "Được tiếp nhận", "08 giờ 05 phút, ngày 02 tháng 3 năm 2026",
                  "17 giờ 00 phút, ngày 05 tháng 3 năm 2026", "Tại UBND phường Phú Hội", "Giờ làm việc: từ 07 giờ 30 đến 17 giờ 00"):  # fmt: skip
        assert shown in html
    for personal in ("Nhung", "001203004567", "*********567", "Lê Lợi", "0912345678", "nhung@example.vn", "clerk-1"):
        assert personal not in html
    assert f'href="/tra-cuu/niem-yet/{UNIT}#tt-1.004194"' in html


def test_every_status_has_words_and_a_hostile_procedure_name_is_text() -> None:
    for status in range(1, 11):
        view = pages.status_view(dossier(status=status), intake_settings())
        assert view.status_text, status
    html = status_html(dossier(procedure_name=SCRIPT, applicant_name=SCRIPT))
    assert SCRIPT not in html and html.count(ESCAPED) == 1  # the procedure's name, as text; the applicant not at all
    returned = status_html(dossier(status=10))
    assert 'class="status done"' in returned and "Kết quả giải quyết đã được trả" in returned


@pytest.mark.parametrize(
    ("channel", "says", "hours"),
    [
        ("counter", "Tại UBND phường Phú Hội", True),
        ("postal", "qua dịch vụ bưu chính công ích", False),
        ("online", "trực tuyến qua Cổng Dịch vụ công", True),
    ],
)
def test_where_to_collect_follows_the_return_channel(channel: str, says: str, hours: bool) -> None:
    view = pages.status_view(dossier(return_channel=channel), intake_settings())
    assert says in view.collect
    assert (view.office_hours is not None) is hours


@pytest.mark.parametrize("status", [3, 7, 8])
def test_a_dossier_ended_without_a_result_says_what_is_handed_back(status: int) -> None:
    view = pages.status_view(dossier(status=status, return_channel="postal"), intake_settings())
    assert view.collect.startswith("Hồ sơ không có kết quả giải quyết.") and "UBND phường Phú Hội" in view.collect
    assert view.status_class == "stopped"


def test_an_unnamed_unit_is_named_by_its_code() -> None:
    view = pages.status_view(dossier(receiving_unit="000.00.99.H56"), intake_settings())
    assert "Bộ phận Một cửa 000.00.99.H56" in view.collect


def test_the_receipt_links_to_the_status_page() -> None:
    settings = intake_settings()
    assert printing.lookup_url(settings, f"{UNIT}-260302-0001") == f"https://motcua.example.gov.vn/tra-cuu/ho-so/{UNIT}-260302-0001"
    assert printing.board_path(UNIT) == f"/tra-cuu/niem-yet/{UNIT}"


# ---- a dossier not accepted -----------------------------------------------------------------------------------------


def record(outcome: str, **kwargs: object) -> store.IntakeRecord:
    values: dict[str, object] = dict(
        reference=f"{UNIT}-260302-BS001", outcome=outcome, unit=UNIT, procedure_code="1.004884",
        procedure_name="Đăng ký lại khai sinh", channel="counter", applicant_name="Trần Văn Đức",
        details={"missing": ["Bản sao sổ hộ khẩu của ông Đức"], "reason": "Ông Đức chưa đủ tuổi", "guidance": None},
        created_at=RECEIVED, created_by="clerk-1",
    )  # fmt: skip
    values.update(kwargs)
    return store.IntakeRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("outcome", "word"), [("incomplete", "Hồ sơ chưa đầy đủ"), ("refused", "Từ chối tiếp nhận"),
                                               ("out_of_scope", "Hướng dẫn nộp tại cơ quan khác")])  # fmt: skip
def test_a_not_accepted_record_shows_its_outcome_and_procedure_and_nothing_typed_about_the_person(outcome: str, word: str) -> None:
    row = record(outcome)
    html = pages.PAGES.html("record.html", {"r": pages.record_view(row), "unit_name": "UBND phường Phú Hội"})
    for shown in (row.reference, word, "Đăng ký lại khai sinh", "08 giờ 05 phút, ngày 02 tháng 3 năm 2026", "UBND phường Phú Hội"):
        assert shown in html
    assert "Đức" not in html and "clerk-1" not in html, "no name, no missing paper or reason typed on the form"
    assert f'href="/tra-cuu/niem-yet/{UNIT}#tt-1.004884"' in html


def test_forms_02_and_03_link_to_the_records_page() -> None:
    assert printing.record_path(f"{UNIT}-260302-BS001") == f"/tra-cuu/phieu/{UNIT}-260302-BS001"
    assert pages.record_view(record("refused", procedure_code=None, procedure_name=None)).board_url is None


# ---- the procedure board --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (FeeLine("A", "Lệ phí đăng ký khai sinh", 0), "Lệ phí đăng ký khai sinh: không thu."),
        (FeeLine("B", "Lệ phí (miễn)", 0), "Lệ phí: không thu."),
        (
            FeeLine("C", "Lệ phí đăng ký tạm trú", 15_000, online_amount=7_000, exemptions=("art4_circular_75_2022",)),
            "Lệ phí đăng ký tạm trú: 15.000 đồng/hồ sơ; nộp trực tuyến: 7.000 đồng/hồ sơ; "
            "miễn cho các đối tượng tại Điều 4 Thông tư số 75/2022/TT-BTC.",
        ),
        (
            FeeLine("D", "Lệ phí chứng thực", 2_000, FeeUnit.PER_PAGE, reduced_from_page=3, reduced_amount=1_000, cap_per_copy=200_000),
            "Lệ phí chứng thực: 2.000 đồng/trang; từ trang thứ 3 trở đi: 1.000 đồng/trang; tối đa 200.000 đồng/bản.",
        ),
        (
            FeeLine("E", "Phí cấp bản sao trích lục", 8_000, FeeUnit.PER_COPY, exemptions=("poor_household", "new_code")),
            "Phí cấp bản sao trích lục: 8.000 đồng/bản; miễn cho hộ nghèo, một số đối tượng theo quy định.",
        ),
    ],
)
def test_a_fee_line_in_words(line: FeeLine, text: str) -> None:
    assert pages.fee_text(line) == text


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (TimeLimit(0, TimeUnit.SAME_DAY), "Trong ngày làm việc; hồ sơ nhận sau 15 giờ 00 được trả trong ngày làm việc tiếp theo."),
        (TimeLimit(0, TimeUnit.SAME_DAY, cutoff_rule=False, verification_extra=5),
         "Trong ngày làm việc; trường hợp cần xác minh: thêm 5 ngày làm việc."),
        (TimeLimit(3, TimeUnit.WORKING_DAY), "3 ngày làm việc kể từ khi nhận đủ hồ sơ hợp lệ."),
        (TimeLimit(15, TimeUnit.CALENDAR_DAY), "15 ngày kể từ khi nhận đủ hồ sơ hợp lệ."),
        (TimeLimit(8, TimeUnit.WORKING_HOUR), "8 giờ làm việc kể từ khi nhận đủ hồ sơ hợp lệ."),
    ],
)  # fmt: skip
def test_a_processing_time_in_words(limit: TimeLimit, text: str) -> None:
    assert pages.time_limit_text(limit, cutoff=time(15, 0)) == text


def test_the_board_lists_every_seeded_procedure_with_its_papers_time_fee_and_channels() -> None:
    rows = [
        store.ProcedureVersion(code=doc["code"], version=1, effective_from=date(2000, 1, 1), name=doc["name"], field=doc["field"],
                               document=doc, published_at=RECEIVED, published_by="seed")
        for doc in domain.seed_documents()
    ]  # fmt: skip
    entries = [pages.board_entry(row, cutoff=time(15, 0)) for row in rows]
    fields = pages.board_fields(entries)
    html = pages.PAGES.html(
        "board.html",
        {"fields": fields, "count": len(entries), "q": "", "today": date(2026, 3, 2), "action": f"/tra-cuu/niem-yet/{UNIT}",
         "unit_name": "UBND phường Phú Hội"},
    )  # fmt: skip
    assert sum(len(rows) for _, _, rows in fields) == len(domain.seed_documents())
    assert html.count('<article class="panel"') == len(domain.seed_documents())
    tam_tru = next(e for e in entries if e.code == "1.004194")
    assert [p.name for p in tam_tru.papers] == [c["name"] for c in next(d for d in domain.seed_documents() if d["code"] == "1.004194")["components"]]
    assert tam_tru.time_limit == "3 ngày làm việc kể từ khi nhận đủ hồ sơ hợp lệ."
    assert "trực tuyến toàn trình" in tam_tru.how_to_submit
    chung_thuc = next(e for e in entries if e.code == "2.000884")
    assert chung_thuc.how_to_submit == "Trực tiếp tại Bộ phận Một cửa; thủ tục này không thực hiện trực tuyến."
    lien_thong = next(e for e in entries if e.code == "LT.0001")
    assert lien_thong.steps == ("UBND xã (tư pháp - hộ tịch): 1 ngày làm việc", "Công an xã (cư trú): 7 ngày làm việc",
                                "Bảo hiểm xã hội: 2 ngày làm việc")  # fmt: skip
    assert 'id="tt-1.004194"' in html and "Thủ tục đang áp dụng ngày 02/03/2026." in html


def test_a_hostile_catalog_entry_is_text_on_the_board() -> None:
    document = {
        "code": "9.000001", "name": SCRIPT, "field": SCRIPT, "time_limit": {"amount": 1, "unit": "WORKING_DAY"},
        "online_level": "full", "components": [{"name": SCRIPT, "mandatory": False}],
        "fee_lines": [{"code": "X", "name": SCRIPT, "amount": 1000}],
    }  # fmt: skip
    row = store.ProcedureVersion(code="9.000001", version=1, effective_from=date(2000, 1, 1), name=SCRIPT, field=SCRIPT,
                                 document=document, published_at=RECEIVED, published_by="admin")  # fmt: skip
    entries = [pages.board_entry(row, cutoff=time(15, 0))]
    html = pages.PAGES.html(
        "board.html",
        {"fields": pages.board_fields(entries), "count": 1, "q": SCRIPT, "today": date(2026, 3, 2), "action": "/x", "unit_name": SCRIPT},
    )
    assert SCRIPT not in html
    assert f"{ESCAPED} (bản chính, nếu có)" in html and f"{ESCAPED}: 1.000 đồng/hồ sơ." in html


# ---- the certified copy's check -------------------------------------------------------------------------------------


def report(**kwargs: object) -> signing.SignatureReport:
    values: dict[str, object] = dict(
        field="motcua-copy-1", valid=True, intact=True, trusted=True, signer="UBND phường Phú Hội", certificate_serial="1A2B",
        signing_time=RECEIVED, covers_whole_file=True, modified_after_signing=False, changes_allowed=True, summary="ok",
    )  # fmt: skip
    values.update(kwargs)
    return signing.SignatureReport(**values)  # type: ignore[arg-type]


def copy_row() -> digitization_store.Document:
    sa.orm.configure_mappers()
    return digitization_store.Document.model_construct(
        id="6f1c2d3e-0000-4000-8000-000000000001", dossier_code=f"{UNIT}-260302-0001", unit=UNIT, kind="certified_copy",
        paper_name="Bằng tốt nghiệp đại học", owner_key="k" * 64, owner_hint="*********567", sha256="ab" * 32,
        signer="UBND phường Phú Hội", certificate_serial="1A2B", signed_at=RECEIVED, copy_number="00001/2026-SCT/BSĐT",
    )  # fmt: skip


def copy_html(check: signing.SignatureCheck) -> tuple[digitization_pages.CopyCheckView, str]:
    view = digitization_pages.copy_check_view(copy_row(), check, DigitizationSettings(environment="test"))
    return view, digitization_pages.PAGES.html("copy_check.html", {"v": view, "unit_name": view.agency})


def test_an_intact_trusted_copy_is_valid_and_shows_no_owner_paper_or_dossier() -> None:
    view, html = copy_html(signing.SignatureCheck(sha256="ab" * 32, sha256_matches=True, reports=[report()]))
    assert view.verdict.valid and view.verdict.problems == ()
    assert 'id="hieu-luc">Hợp lệ<' in html and "ab" * 32 in html and "00001/2026-SCT/BSĐT" in html
    assert "08 giờ 05 phút, ngày 02 tháng 3 năm 2026" in html and "UBND phường Phú Hội" in html
    for private in ("567", "Bằng tốt nghiệp", f"{UNIT}-260302-0001", "k" * 64):
        assert private not in html


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        (signing.SignatureCheck(sha256="ab" * 32, sha256_matches=False, reports=[report(valid=False, intact=False)]), "mã băm đã khác"),
        (signing.SignatureCheck(sha256="ab" * 32, sha256_matches=False, reports=[]), "Không đọc được chữ ký số"),
        (signing.SignatureCheck(sha256="ab" * 32, sha256_matches=True, reports=[report(trusted=False)]), "không thuộc cơ quan"),
        (signing.SignatureCheck(sha256="ab" * 32, sha256_matches=True, reports=[report(modified_after_signing=True)]), "thêm vào sau khi ký"),
        (signing.SignatureCheck(sha256="ab" * 32, sha256_matches=True, reports=[report(valid=False, intact=False)]), "đã bị thay đổi sau khi ký"),
    ],
)  # fmt: skip
def test_a_copy_that_fails_any_check_is_not_valid_and_says_why(check: signing.SignatureCheck, reason: str) -> None:
    view, html = copy_html(check)
    assert not view.verdict.valid
    assert 'id="hieu-luc">Không hợp lệ<' in html and reason in html
    assert view.signer == "UBND phường Phú Hội"  # from the signature, or from the register when none could be read


def test_the_verdict_names_each_failure_once() -> None:
    verdict = digitization_domain.copy_verdict(signed=True, intact=False, trusted=False, modified_after_signing=True, file_matches=False)
    assert not verdict.valid and len(verdict.problems) == 3
    assert not any("tin cậy" in p for p in verdict.problems), "a broken signature is not blamed on its certificate"
    assert digitization_domain.copy_verdict(signed=True, intact=True, trusted=True, modified_after_signing=False, file_matches=None).valid


def test_the_certification_qr_opens_the_check_page() -> None:
    assert digitization_domain.copy_check_path("6f1c2d3e-0000-4000-8000-000000000001") == "/kiem-tra/ban-sao/6f1c2d3e-0000-4000-8000-000000000001"


# ---- routing ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "settings", "router", "paths"),
    [
        (intake_app, intake_settings, pages.router, {"/tra-cuu/ho-so/{code}", "/tra-cuu/phieu/{reference}", "/tra-cuu/niem-yet/{unit}"}),
        (digitization_app, lambda: DigitizationSettings(environment="test"), digitization_pages.router, {"/kiem-tra/ban-sao/{document_id}"}),
    ],
    ids=["intake", "digitization"],
)  # fmt: skip
def test_the_pages_are_rate_limited_served_and_not_in_the_openapi_document(factory, settings, router, paths: set[str]) -> None:  # noqa: ANN001
    routes = {r.path: r for r in router.routes}
    assert set(routes) == paths
    for route in routes.values():
        assert isinstance(route, PageRoute) and route.methods == {"GET"}
        assert any(getattr(d.call, "__qualname__", "").startswith("rate_limited") for d in route.dependant.dependencies), route.path
    app = factory(settings())
    assert not any(p.startswith(("/tra-cuu", "/kiem-tra")) for p in app.openapi()["paths"])
    client = TestClient(app)  # no lifespan, no database: the app serves the page routes, and a page's error is a page
    for path in paths:
        response = client.get(path.replace("{code}", "X-1").replace("{reference}", "X-BS001").replace("{unit}", UNIT).replace("{document_id}", "x"))
        assert response.status_code == 503 and response.headers["content-type"].startswith("text/html")
        assert "Hệ thống tạm thời gián đoạn" in response.text and response.headers["retry-after"]
