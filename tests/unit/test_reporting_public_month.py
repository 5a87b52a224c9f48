"""Reporting's public month (công khai): which months are published, what a late dossier shows, how the page reads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.reporting import domain
from services.reporting.deps import reporting_pages

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize("text", ["2026-11", "2000-01", "2100-12"])
def test_a_month_is_yyyy_mm(text: str) -> None:
    period = domain.public_month(text)
    assert period is not None and period.label == text and period.first.day == 1


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11-01", "abcd-ef", "1999-12", "2101-01",
             "２０２６-１１", "", "-", " 2026-11"],
)  # fmt: skip
def test_anything_else_is_no_month(text: str) -> None:
    assert domain.public_month(text) is None


def test_a_month_is_published_once_it_is_over_in_vietnam() -> None:
    november = domain.public_month("2026-11")
    assert november is not None
    assert not domain.month_closed(november, datetime(2026, 11, 30, 23, 59, tzinfo=VN))
    assert domain.month_closed(november, datetime(2026, 12, 1, 0, 0, tzinfo=VN))
    assert domain.last_closed_month(datetime(2026, 12, 1, 0, 0, tzinfo=VN)).label == "2026-11"
    assert domain.last_closed_month(datetime(2027, 1, 15, 9, 0, tzinfo=VN)).label == "2026-12"


def test_the_months_around_stay_within_the_years_published() -> None:
    january = domain.public_month("2026-01")
    assert january is not None
    assert (domain.month_before(january).label, domain.month_after(january).label) == ("2025-12", "2026-02")  # type: ignore[union-attr]
    assert domain.month_before(domain.public_month("2000-01")) is None  # type: ignore[arg-type]
    assert domain.month_after(domain.public_month("2100-12")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "text"), [(None, "chưa có hồ sơ"), (100.0, "100%"), (97.5, "97,5%"), (66.67, "66,67%"), (0.0, "0%")])
def test_rates_print_the_vietnamese_way(value: float | None, text: str) -> None:
    assert domain.percent_text(value) == text


def late_row(**overrides: object) -> dict:
    row = {
        "code": "000.00.12.H56-261103-0001", "unit": "000.00.12.H56", "procedure_code": "1.004194",
        "procedure_name": "Đăng ký tạm trú", "field": "Cư trú", "received_at": datetime(2026, 11, 3, 8, tzinfo=VN),
        "due_at_original": datetime(2026, 11, 6, 17, tzinfo=VN), "due_at": datetime(2026, 11, 6, 17, tzinfo=VN),
        "late_at": datetime(2026, 11, 6, 17, tzinfo=VN), "late_reason": "overdue", "state": "resolved_late",
        "closed_at": datetime(2026, 11, 10, 10, tzinfo=VN), "holder_unit": "Công an phường", "holder_officer": "cb-nguyen-van-a",
        "apology_issued": True, "apology_at": datetime(2026, 11, 5, 9, tzinfo=VN), "apology_timely": True,
        "new_appointment_at": datetime(2026, 11, 13, 17, tzinfo=VN), "explained": True,
    }  # fmt: skip
    return {**row, **overrides}


def test_a_late_dossier_is_published_without_who_held_it() -> None:
    shown = domain.public_late(late_row())
    assert set(shown) == set(domain.PUBLIC_LATE_FIELDS)
    assert not {"holder_unit", "holder_officer", "late_reason", "explained", "unit"} & set(shown)


def page(**overrides: object) -> str:
    counts = domain.complete_counts({"received_total": 3, "resolved_total": 1, "resolved_late": 1, "pending_total": 2,
                                     "pending_overdue": 1, "apologies_issued": 1})  # fmt: skip
    period = domain.public_month("2026-11")
    assert period is not None
    context = {
        "unit": "000.00.12.H56", "unit_name": "UBND phường Bến Nghé", "scope": "000.00.12.H56", "rollup": False,
        "period": period, "counts": counts, "rates": domain.rates(counts, {"on_time": 98}),
        "late": [domain.public_late(late_row()), domain.public_late(late_row(
            code="000.00.12.H56-261120-0002", procedure_name=SCRIPT, state="pending_overdue", closed_at=None,
            apology_issued=False, apology_at=None, apology_timely=None, new_appointment_at=None))],
        "previous": domain.month_before(period), "next": None, "previous_url": "/trang/cong-khai/000.00.12.H56/2026-10",
        "next_url": None, "page_title": "Công khai",
        **overrides,
    }  # fmt: skip
    return reporting_pages().html("cong_khai.html", context)


def test_the_page_prints_the_figures_and_the_apology() -> None:
    html = page()
    assert '<td class="number" data-count="received_total">3</td>' in html
    assert 'data-rate="on_time">33,33%<' in html
    assert "Chỉ tiêu của kế hoạch: từ 98% trở lên, chưa đạt." in html
    assert "Đã gửi ngày 05/11/2026, hẹn lại ngày trả kết quả 13/11/2026" in html
    assert "Đang giải quyết, đã quá hạn" in html and "Chưa gửi" in html
    assert "Có <strong>2</strong> hồ sơ trễ hạn." in html
    assert 'rel="prev">Xem tháng trước (10/2026)</a>' in html and 'rel="next"' not in html
    for hidden in ("Công an phường", "cb-nguyen-van-a"):
        assert hidden not in html


def test_a_hostile_procedure_name_is_text() -> None:
    html = page()
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html


def test_a_month_with_nothing_to_process_says_so() -> None:
    counts = domain.complete_counts({})
    html = page(counts=counts, rates=domain.rates(counts, {"on_time": 98}), late=[])
    assert 'data-rate="on_time">chưa có hồ sơ<' in html
    assert "Trong tháng không có hồ sơ cần giải quyết." in html
    assert "Trong tháng không có hồ sơ trễ hạn." in html


@pytest.mark.parametrize(
    ("template", "slug", "title"),
    [
        ("errors/404.html", "not-found", "Không tìm thấy đơn vị"),
        ("errors/404.html", "month-not-published", "Chưa công khai số liệu tháng này"),
        ("errors/422.html", "validation-error", "Tháng không hợp lệ"),
    ],
)
def test_the_error_pages_say_what_is_wrong(template: str, slug: str, title: str) -> None:
    html = reporting_pages().html(template, {"status": int(template[7:10]), "slug": slug, "title": "x", "message": "y",
                                             "retry_after": None, "page_title": "x", "request": None})  # fmt: skip
    assert f'<h1 id="error-title">{title}</h1>' in html
    assert f"<title>{title} – Bộ phận Một cửa</title>" in html
    assert '<html lang="vi">' in html


def test_the_days_printed_are_vietnamese_days() -> None:
    late = late_row(received_at=datetime(2026, 11, 2, 23, 30, tzinfo=ZoneInfo("UTC")))  # 06:30 on the 3rd in Vietnam
    html = page(late=[domain.public_late(late)])
    assert "<dd>03/11/2026</dd>" in html
