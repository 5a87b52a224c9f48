"""Fees: per case, per page with the lower rate from page 3 and the cap, per copy, online amounts, exemptions."""

from __future__ import annotations

import pytest

from shared.fees import FeeLine, FeeUnit, PagesNeeded, assess, total

CERTIFIED_COPY = FeeLine("CT-BS", "Lệ phí chứng thực bản sao", 2000, FeeUnit.PER_PAGE, reduced_from_page=3, reduced_amount=1000, cap_per_copy=200_000)
TAM_TRU = FeeLine("CT-TT", "Lệ phí đăng ký tạm trú", 15_000, online_amount=7_000)
EXTRACT = FeeLine("HT-TL", "Phí cấp bản sao trích lục", 8_000, FeeUnit.PER_COPY, exemptions=("poor_household", "merit_family", "disability"))


@pytest.mark.parametrize(("pages", "expected"), [(1, 2000), (2, 4000), (3, 5000), (10, 12000), (300, 200_000)])
def test_certified_copies_cost_2000_a_page_then_1000_from_page_3_capped_at_200000(pages: int, expected: int) -> None:
    assert total(assess([CERTIFIED_COPY], online=False, pages=pages)) == expected


def test_the_cap_is_per_copy() -> None:
    assert total(assess([CERTIFIED_COPY], online=False, pages=300, copies=3)) == 600_000


def test_a_per_page_fee_waits_for_the_page_count() -> None:
    with pytest.raises(PagesNeeded):
        assess([CERTIFIED_COPY], online=False)


def test_online_dossiers_pay_the_lower_amount() -> None:
    assert total(assess([TAM_TRU], online=True)) == 7_000
    assert total(assess([TAM_TRU], online=False)) == 15_000


def test_extract_copies_are_charged_per_copy_unless_exempt() -> None:
    assert total(assess([EXTRACT], online=False, copies=3)) == 24_000
    [item] = assess([EXTRACT], online=False, copies=3, exemption="poor_household")
    assert item.amount == 0 and item.exempted_by == "poor_household"
    assert total(assess([EXTRACT], online=False, copies=2, exemption="student")) == 16_000
