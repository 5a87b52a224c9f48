"""The law in force as data (shared/rules.py): which rules a dossier gets by its day and province, and what an admin
may not publish. Pure: no database, no service."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from shared.rules import NATIONAL, RuleBook, RuleError, RuleVersion, shipped_book, shipped_versions

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)
H56, H01 = "H56", "H01"


def national(**changes: object) -> RuleVersion:
    """A national version of the 2025 regime, as published with ``changes``."""
    latest = shipped_versions()[-1]
    data = {**latest.model_dump(), "version": 1, "effective_from": date(2027, 1, 1), "published_at": None, **changes}
    return RuleVersion.model_validate(data)


def override(scope: str = H56, **changes: object) -> RuleVersion:
    """A province override of the 2025 regime that sets only its office hours."""
    data: dict[str, object] = {
        "scope": scope, "version": 1, "regime": "nd118-2025", "effective_from": date(2027, 1, 1),
        "title": f"Quyết định của UBND tỉnh {scope} về giờ tiếp nhận", "office": {"opens": "07:00", "closes": "17:00", "cutoff": "16:00"},
        **changes,
    }  # fmt: skip
    return RuleVersion.model_validate(data)


def publish(book: RuleBook, v: RuleVersion, today: date = TODAY) -> tuple[RuleBook, RuleVersion]:
    return book.publish(v, today=today, at=AT, by="qt-tinh")


def refusal(book: RuleBook, v: RuleVersion, today: date = TODAY) -> RuleError:
    with pytest.raises(RuleError) as caught:
        publish(book, v, today)
    return caught.value


# ---- resolution by date and province --------------------------------------------------------------------------------


def test_the_regime_follows_the_reception_day_across_1_july_2025() -> None:
    book = shipped_book()
    june = book.in_force(datetime(2025, 6, 30, 9, 0, tzinfo=UTC), H56)  # 16:00 in Việt Nam, 30 June
    july = book.in_force(datetime(2025, 6, 30, 17, 0, tzinfo=UTC), H56)  # 00:00 in Việt Nam, 1 July
    assert (june.ref, june.regime) == ("VN.1", "nd61-107")
    assert (july.ref, july.regime) == ("VN.2", "nd118-2025")
    assert june.form("apology").title == "Phiếu xin lỗi và hẹn lại ngày trả kết quả"
    assert july.form("apology").title == "Văn bản xin lỗi và đề nghị gia hạn thời gian giải quyết"
    assert june.form("stop") is None and july.form("stop").title == "Thông báo dừng giải quyết hồ sơ"
    assert (june.form("register").number, july.form("register").number) == ("06", "07")
    with pytest.raises(LookupError):
        book.in_force(date(2018, 6, 20))


def test_an_override_applies_only_in_its_province_from_its_day() -> None:
    book, published = publish(shipped_book(), override())
    assert published.ref == "H56.1" and published.published_by == "qt-tinh" and published.published_at == AT
    before = book.in_force(date(2026, 12, 31), H56)
    after = book.in_force(date(2027, 1, 1), H56)
    elsewhere = book.in_force(date(2027, 1, 1), H01)
    assert before.ref == "VN.2" and before.office.cutoff == time(15, 0)
    assert after.ref == "VN.2+H56.1" and after.office.cutoff == time(16, 0) and after.office.opens == time(7, 0)
    assert after.forms == before.forms and after.dossier_code == before.dossier_code  # only the office section changed
    assert elsewhere.ref == "VN.2" and elsewhere.office.cutoff == time(15, 0)
    assert book.in_force(date(2027, 1, 1)).ref == "VN.2"  # no province: the national rules


def test_an_override_merges_its_forms_form_by_form() -> None:
    renamed = {"receipt": {"number": "01", "title": "Giấy tiếp nhận hồ sơ và hẹn trả kết quả (mẫu của tỉnh)"}}
    book, _ = publish(shipped_book(), override(office=None, forms=renamed))
    rules = book.in_force(date(2027, 1, 1), H56)
    assert rules.form("receipt").title.endswith("(mẫu của tỉnh)")
    assert rules.form("refusal").title == "Phiếu từ chối tiếp nhận giải quyết hồ sơ" and rules.form("stop") is not None


def test_an_override_ends_with_its_regime() -> None:
    book, _ = publish(shipped_book(), override())
    regime_2027 = national(regime="nd118-2025", effective_from=date(2027, 6, 1))
    book, v = publish(book, regime_2027)
    assert book.in_force(date(2027, 6, 1), H56).ref == f"VN.{v.version}+H56.1"  # same regime: still applies
    # a national version of another regime could only be shipped; the book ignores an override of an earlier regime
    other = RuleBook([*book.versions, national(version=9, regime="nd999-2028", effective_from=date(2028, 1, 1))])
    assert other.in_force(date(2028, 1, 1), H56).ref == "VN.9"


def test_a_version_for_a_future_day_changes_nothing_before_it() -> None:
    before_book = shipped_book()
    book, v = publish(before_book, national(effective_from=date(2027, 1, 1), office={"opens": "08:00", "closes": "17:00", "cutoff": "16:00"}))
    assert v.ref == "VN.3"
    for day in (date(2025, 7, 1), TODAY, date(2026, 12, 31)):
        assert book.in_force(day, H56) == before_book.in_force(day, H56)
    assert book.in_force(date(2027, 1, 1), H56).office.opens == time(8, 0)
    versions = {x.ref: x for x in book.history(NATIONAL)}
    assert book.effective_to(versions["VN.1"]) == date(2025, 6, 30)
    assert book.effective_to(versions["VN.2"]) == date(2026, 12, 31)
    assert book.effective_to(versions["VN.3"]) is None


def test_by_ref_gives_the_same_rules_after_later_publishes() -> None:
    book, _ = publish(shipped_book(), override())
    recorded = book.in_force(date(2027, 1, 2), H56)
    later, _ = publish(book, override(effective_from=date(2027, 3, 1), office={"opens": "07:30", "closes": "17:30", "cutoff": "17:00"}))
    later, _ = publish(later, national(effective_from=date(2027, 6, 1), deadlines={"apology_lead_working_days": 2, "feedback_working_days": 10}))
    assert later.by_ref(recorded.ref) == recorded
    assert later.rules_of(recorded.ref, datetime(2027, 7, 1, tzinfo=UTC), H56) == recorded
    assert later.in_force(date(2027, 7, 1), H56).ref == "VN.3+H56.2"
    # a dossier from before refs were recorded: its reception day decides
    assert later.rules_of(None, datetime(2025, 6, 1, tzinfo=UTC), H56).ref == "VN.1"
    with pytest.raises(LookupError):
        later.by_ref("VN.2+H56.9")


# ---- what may not be published --------------------------------------------------------------------------------------


def test_an_unknown_regime_is_refused() -> None:
    error = refusal(shipped_book(), override(regime="nd999-2030"))
    assert not error.conflict and any("unknown regime 'nd999-2030'" in p for p in error.problems)


def test_a_day_in_the_past_is_refused_today_is_not() -> None:
    error = refusal(shipped_book(), override(effective_from=date(2026, 11, 30)))
    assert any("in the past" in p for p in error.problems)
    book, v = publish(shipped_book(), override(effective_from=TODAY))
    assert v.ref == "H56.1" and book.in_force(TODAY, H56).ref == "VN.2+H56.1"


def test_overlapping_effective_dates_are_a_conflict() -> None:
    book, _ = publish(shipped_book(), override(effective_from=date(2027, 3, 1)))
    for day in (date(2027, 3, 1), date(2027, 2, 1)):
        error = refusal(book, override(effective_from=day))
        assert error.conflict and "overlapping effective dates" in error.problems[0]
    national_error = refusal(shipped_book(), national(effective_from=date(2025, 7, 1)), today=date(2025, 7, 1))
    assert national_error.conflict


def test_a_national_version_needs_every_section() -> None:
    error = refusal(shipped_book(), national(indicators=None))
    assert error.problems == ["indicators: a national version needs this section"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"office": {"opens": "07:30", "closes": "17:00", "cutoff": "17:30"}}, "the cut-off must lie within office hours"),
        ({"office": {"opens": "17:00", "closes": "07:30", "cutoff": "12:00"}}, "opens must be before closes"),
        ({"forms": {"receipt": {"number": "01", "title": "Giấy tiếp nhận"}}}, "the set has no 'refusal' form"),
        ({"dossier_code": "{unit}-{day:%y%m%d}"}, "the code must hold the sequence"),
        ({"dossier_code": "{unit}-{ngay}-{sequence}"}, "cannot be formatted with unit, day, sequence"),
        ({"statuses": {1: "Mới"}}, "every national status code 1-10 needs a name"),
    ],
)
def test_rules_that_do_not_validate_are_refused(changes: dict[str, object], expected: str) -> None:
    with pytest.raises((RuleError, ValueError)) as caught:  # a bad office section fails already as a RuleVersion
        publish(shipped_book(), national(**changes))
    assert expected in str(caught.value)


def test_indicator_points_must_add_up_to_100() -> None:
    indicators = shipped_versions()[-1].indicators
    assert indicators
    first = next(iter(indicators))
    changed = {**{k: v.model_dump() for k, v in indicators.items()}, first: {**indicators[first].model_dump(), "max_points": indicators[first].max_points + 5}}
    error = refusal(shipped_book(), national(indicators=changed))
    assert any("not 100" in p for p in error.problems)


def test_an_override_that_breaks_the_national_rules_is_refused_with_every_reason() -> None:
    bad = override(dossier_code="{unit}", office=None, forms={"apology": {"number": "01", "title": "Văn bản xin lỗi"}})
    error = refusal(shipped_book(), bad)
    assert any("two forms share a number" in p for p in error.problems)
    assert any("dossier_code" in p for p in error.problems)


def test_an_override_of_another_regime_than_the_national_rules_then_is_refused() -> None:
    error = refusal(shipped_book(), override(regime="nd61-107"))
    assert any("not of regime 'nd61-107'" in p for p in error.problems)


def test_publishing_numbers_each_scope_on_its_own_and_keeps_history() -> None:
    book, a = publish(shipped_book(), override(H56))
    book, b = publish(book, override(H01))
    book, c = publish(book, override(H56, effective_from=date(2027, 2, 1)))
    assert (a.ref, b.ref, c.ref) == ("H56.1", "H01.1", "H56.2")
    assert [v.ref for v in book.history(H56)] == ["H56.1", "H56.2"]
    assert [v.ref for v in book.history(NATIONAL)] == ["VN.1", "VN.2"]
