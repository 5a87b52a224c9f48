"""Intake rules: the catalog, the dossier code, the appointment, the fee and the webhook signature."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake import domain
from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar
from shared.status import STATUS_NAMES

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkingCalendar()


def seeded(code: str) -> domain.Procedure:
    doc = next(d for d in domain.seed_documents() if d["code"] == code)
    return domain.procedure_from_json(doc)


def test_the_dossier_code_is_unit_day_and_daily_sequence() -> None:
    received = datetime(2024, 3, 15, 9, 30, tzinfo=VN)
    assert domain.dossier_code("000.00.12.H56", received, 1) == "000.00.12.H56-240315-0001"


def test_the_code_takes_the_vietnamese_day_not_the_utc_day() -> None:
    received = datetime(2024, 3, 15, 23, 30, tzinfo=ZoneInfo("UTC"))  # 06:30 on the 16th in Vietnam
    assert domain.dossier_code("U", received, 12) == "U-240316-0012"


def test_the_code_format_is_a_setting() -> None:
    received = datetime(2024, 3, 15, 9, 30, tzinfo=VN)
    assert domain.dossier_code("H56", received, 7, "{unit}.{day:%Y%m%d}.{sequence:06d}") == "H56.20240315.000007"


def test_the_seed_has_every_procedure_of_the_domain_table_with_its_vietnamese_name() -> None:
    docs = domain.seed_documents()
    assert len(docs) >= 25
    assert len({d["code"] for d in docs}) == len(docs)
    procedures = [domain.procedure_from_json(d) for d in docs]
    assert seeded("1.001193").name == "Đăng ký khai sinh"
    assert all(p.name and p.field and p.components for p in procedures)
    assert {p.online_level for p in procedures} == set(domain.OnlineLevel)
    assert any(p.lien_thong_steps for p in procedures) and any(p.on_the_spot for p in procedures)


def test_a_document_survives_the_round_trip() -> None:
    for doc in domain.seed_documents():
        assert domain.procedure_to_json(domain.procedure_from_json(doc)) == {**doc}


def test_the_appointment_follows_the_legal_limit() -> None:
    when = domain.appointment(datetime(2025, 4, 24, 9, 0, tzinfo=VN), seeded("1.004194"), CAL)  # tạm trú, 3 WD
    assert when.appointment_at.astimezone(VN).date().isoformat() == "2025-04-28"  # DOMAIN §2.5 example A
    assert when.legal_due_at == when.appointment_at


def test_a_committed_shorter_time_sets_the_appointment_and_the_legal_one_stays_on_record() -> None:
    procedure = domain.procedure_from_json(
        {**next(d for d in domain.seed_documents() if d["code"] == "1.004222"), "committed_limit": {"amount": 3, "unit": "WORKING_DAY"}}
    )
    when = domain.appointment(datetime(2025, 3, 3, 9, 0, tzinfo=VN), procedure, CAL)  # Mon; 7 WD legal, 3 committed
    assert when.appointment_at.astimezone(VN).date().isoformat() == "2025-03-06"
    assert when.legal_due_at.astimezone(VN).date().isoformat() == "2025-03-12"


def test_verification_adds_the_extra_time() -> None:
    ket_hon = seeded("1.000894")  # same day; up to 5 WD if conditions must be verified
    assert ket_hon.time_limit == TimeLimit(0, TimeUnit.SAME_DAY, True, 5)
    plain = domain.appointment(datetime(2025, 3, 3, 9, 0, tzinfo=VN), ket_hon, CAL)
    verified = domain.appointment(datetime(2025, 3, 3, 9, 0, tzinfo=VN), ket_hon, CAL, verification=True)
    assert plain.appointment_at.astimezone(VN).date().isoformat() == "2025-03-03"
    assert verified.appointment_at.astimezone(VN).date().isoformat() == "2025-03-10"


def test_fees_online_lower_and_per_page_waits_for_pages() -> None:
    tam_tru = seeded("1.004194")
    assert domain.assess_fee(tam_tru, online=True, pages=None, copies=1, exemption=None).total == 7_000
    assert domain.assess_fee(tam_tru, online=False, pages=None, copies=1, exemption=None).total == 15_000
    copy = seeded("2.000815")
    waiting = domain.assess_fee(copy, online=False, pages=None, copies=1, exemption=None)
    assert waiting.total == 0 and waiting.pending == ("CT-BS",)
    assert domain.assess_fee(copy, online=False, pages=4, copies=2, exemption=None).total == 12_000


def test_the_province_is_the_last_part_of_the_unit_code() -> None:
    assert domain.province_of("000.00.12.H56") == "H56"


@pytest.mark.parametrize("status", sorted(STATUS_NAMES))
def test_every_national_status_has_its_vietnamese_name(status: int) -> None:
    assert STATUS_NAMES[status]


# ---- e-identity at reception -------------------------------------------------------------------------------------


def test_a_clerk_asserts_a_chip_card_read_and_the_portal_a_vneid_login_nothing_else() -> None:
    asserters = domain.DEFAULT_IDENTIFICATION_ASSERTERS
    assert domain.identification_refusal("clerk", "chip_card", asserters) is None
    assert domain.identification_refusal("portal", "vneid_level2", asserters) is None
    assert domain.identification_refusal("clerk", "none", asserters) is None and domain.identification_refusal("portal", "none", {}) is None
    clerk = domain.identification_refusal("clerk", "vneid_level2", asserters)
    portal = domain.identification_refusal("portal", "chip_card", asserters)
    assert clerk is not None and "A clerk cannot assert a VNeID level-2 login" in clerk and "only the portal can" in clerk
    assert portal is not None and "The portal cannot assert a chip id card read" in portal and "only a clerk can" in portal


def test_who_may_assert_what_is_a_setting() -> None:
    from services.intake.settings import IntakeSettings

    # a province whose counters scan the citizen's VNeID app (level 2) lets its clerks assert it too
    settings = IntakeSettings(identification_asserted_by={"clerk": ["chip_card", "vneid_level2"], "portal": ["vneid_level2"]})
    assert domain.identification_refusal("clerk", "vneid_level2", settings.identification_asserted_by) is None
    assert IntakeSettings().identification_asserted_by == {"clerk": ["chip_card"], "portal": ["vneid_level2"]}
    with pytest.raises(ValueError, match="IDENTIFICATION_ASSERTED_BY"):
        IntakeSettings(identification_asserted_by={"clerk": ["fingerprint"]})
    with pytest.raises(ValueError, match="IDENTIFICATION_ASSERTED_BY"):
        IntakeSettings(identification_asserted_by={"bank": ["chip_card"]})
