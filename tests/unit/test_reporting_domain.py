"""Reporting's pure rules: report units and periods, how events fold into a dossier's facts, rates and the 766 index."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from services.reporting import domain, exports
from services.reporting.settings import ReportingSettings
from shared.calendar import WorkingCalendar
from shared.rules import shipped_book
from shared.events import (
    CaseApologyIssued,
    CaseAssigned,
    CaseClockResumed,
    CaseDelayExplained,
    CaseOverdue,
    CaseRated,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    CaseTransferred,
    DocumentDigitized,
    DocumentSigned,
    DossierDigitized,
    DossierReceived,
    DossierWithdrawn,
    PaymentConfirmed,
    PaymentRequested,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
UNIT = "000.05.12.H56"
CAL = WorkingCalendar()
# The 766 points of the rules in force (shipped: the DVCQG evaluation, DOMAIN §4.2); a province publishes others.
SHIPPED_INDICATORS = shipped_book().in_force(date(2026, 3, 31)).indicators


def indicator_rules(changes: dict[str, dict[str, object]] | None = None) -> list[domain.IndicatorRule]:
    """The shipped indicators, with some fields changed as a province's published version would."""
    changed = {code: i.model_copy(update=(changes or {}).get(code, {})) for code, i in SHIPPED_INDICATORS.items()}
    return domain.indicator_rules(changed)


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=VN)


def base(when: datetime, code: str = "D1") -> dict:
    return {"dossier_code": code, "unit": UNIT, "occurred_at": when}


def received(day: str = "2026-03-02", due: str = "2026-03-06", **overrides: object) -> DossierReceived:
    fields = {
        **base(at(day)), "procedure_code": "1.004194", "procedure_name": "Đăng ký tạm trú", "applicant_name": "Lê Hoa",
        "channel": "counter", "received_at": at(day), "appointment_at": at(due, 17), "due_at_original": at(due, 17),
        "received_by": "mc-1",
    }  # fmt: skip
    return DossierReceived(**{**fields, **overrides})


def fold_all(*events: object, fact: domain.Fact | None = None) -> domain.Fact:
    fact = fact or domain.new_fact("D1", UNIT)
    for event in events:
        fact = domain.fold(fact, event, actor="actor", fields={"1.004194": "Cư trú"}).fact  # type: ignore[arg-type]
    return fact


# ---- units ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "unit", "pattern"),
    [
        ("H56", "000.00.00.H56", None, None),
        ("12.H56", "000.00.12.H56", None, "H56.12.__.___"),
        ("000.00.12.H56", "000.00.12.H56", None, "H56.12.__.___"),
        ("000.05.12.H56", "000.05.12.H56", None, "H56.12.05.___"),
        ("001.05.12.H56", "001.05.12.H56", "001.05.12.H56", None),
        ("000.00.00.H56", "000.00.00.H56", None, None),
        ("H56.X-1", "H56.X-1", "H56.X-1", None),  # not QCVN-shaped: that unit only
        ("1.2.3.4.5", "1.2.3.4.5", "1.2.3.4.5", None),
    ],
)
def test_a_unit_code_is_a_scope_whose_zero_groups_cover_everything_below(text: str, code: str, unit: str | None, pattern: str | None) -> None:
    scope = domain.parse_scope(text)
    assert (scope.code, scope.unit, scope.pattern) == (code, unit, pattern)


def test_the_province_of_a_unit_is_its_last_group_and_its_key_reads_top_down() -> None:
    assert domain.province_of("000.00.12.H56") == "H56" and domain.parse_scope("H56").province == "H56"
    assert domain.scope_key("001.05.12.H56") == "H56.12.05.001" and domain.scope_key("UBND-X") == "UBND-X"


def test_a_token_covers_its_own_unit_and_the_units_below_it_only() -> None:
    district, commune, office = (domain.parse_scope(u) for u in ("000.00.12.H56", "000.05.12.H56", "001.05.12.H56"))
    assert domain.scope_covers(district, commune) and domain.scope_covers(district, office)
    assert domain.scope_covers(commune, office) and not domain.scope_covers(commune, district)
    assert not domain.scope_covers(domain.parse_scope("000.00.13.H56"), commune)
    assert not domain.scope_covers(domain.parse_scope("H57"), commune)
    assert domain.token_covers(["H56"], district) and domain.token_covers(["*"], district)
    assert not domain.token_covers(["000.05.12.H56"], district)


# ---- periods -------------------------------------------------------------------------------------------------------------


def test_periods_of_a_year() -> None:
    assert [p.label for p in domain.periods("quarter", 2026)] == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    feb = domain.periods("month", 2028, 2)[0]
    assert (feb.first, feb.last) == (date(2028, 2, 1), date(2028, 2, 29))
    weeks = domain.periods("week", 2026)
    assert len(weeks) == 53 and weeks[0].first == date(2025, 12, 29) and weeks[-1].last == date(2027, 1, 3)
    assert domain.periods("year", 2026)[0].last == date(2026, 12, 31)
    with pytest.raises(ValueError, match="1 to 12"):
        domain.periods("month", 2026, 13)


def test_a_period_runs_from_midnight_to_midnight_in_vietnam() -> None:
    period = domain.custom_period(date(2026, 3, 1), date(2026, 3, 31))
    assert period.start == datetime(2026, 2, 28, 17, 0, tzinfo=ZoneInfo("UTC"))
    assert period.end - period.start == timedelta(days=31)
    with pytest.raises(ValueError):
        domain.custom_period(date(2026, 3, 2), date(2026, 3, 1))


def test_near_due_counts_working_days_after_the_period() -> None:
    # Period ends Friday 24/04/2026; Monday 27/04 is Giỗ Tổ observed: the next working day is Tuesday 28/04.
    end = domain.custom_period(date(2026, 4, 1), date(2026, 4, 24)).end
    horizon = domain.near_due_horizon(end, 1, "working_days", CAL)
    assert horizon.date() == date(2026, 4, 28) and horizon.time().hour == 23
    assert domain.near_due_horizon(end, 0, "working_days", CAL) < at("2026-04-25", 0)
    hours = domain.near_due_horizon(end, 4, "working_hours", CAL)
    assert hours == at("2026-04-28", 11, 30)


# ---- folding events into facts --------------------------------------------------------------------------------------------


def test_reception_sets_the_dossier_and_its_first_deadline() -> None:
    folded = domain.fold(domain.new_fact("D1", UNIT), received(fee_due=20000), fields={"1.004194": "Cư trú"})
    fact = folded.fact
    assert (fact.field, fact.channel, fact.province, fact.received_day) == ("Cư trú", "counter", "H56", date(2026, 3, 2))
    assert (fact.holder_unit, fact.holder_officer, fact.fee_due) == (UNIT, "mc-1", 20000)
    assert folded.deadlines == (domain.DeadlineChange(at("2026-03-02"), at("2026-03-06", 17), False),)


def test_reception_keeps_how_the_applicant_was_identified_and_whether_population_data_was_used() -> None:
    online = fold_all(received(channel="online", identification="vneid_level2", population_data_reused=True))
    assert (online.identification, online.population_data_reused) == ("vneid_level2", True)
    counter = fold_all(received(identification="chip_card"))
    assert (counter.identification, counter.population_data_reused) == ("chip_card", False)
    older = fold_all(received())  # an event from before intake said: nothing is claimed
    assert (older.identification, older.population_data_reused) == (None, False)


def test_the_field_the_catalog_sent_wins_over_reportings_own_map() -> None:
    """A province's own procedure is reported under the field its catalog gives, with no map to keep in step."""
    local = received(procedure_code="LOCAL.XD.001", procedure_field="Xây dựng")
    assert domain.fold(domain.new_fact("D1", UNIT), local, fields={"1.004194": "Cư trú"}).fact.field == "Xây dựng"
    older = received(procedure_code="LOCAL.XD.001")  # an event from before intake sent the field
    assert domain.fold(domain.new_fact("D1", UNIT), older, fields={"LOCAL.XD.001": "Xây dựng"}).fact.field == "Xây dựng"
    assert domain.fold(domain.new_fact("D1", UNIT), older, fields={}).fact.field == ""


def test_a_supplement_pauses_and_the_resumption_moves_the_deadline() -> None:
    paused = domain.fold(fold_all(received()), CaseSupplementRequested(**base(at("2026-03-03")), reason="thiếu"))
    assert paused.fact.paused and paused.fact.late_at is None and paused.deadlines[0].paused
    resumed = domain.fold(
        paused.fact,
        CaseClockResumed(**base(at("2026-03-09")), supplemented_at=at("2026-03-09"), due_at=at("2026-03-12", 17)),
    )
    assert (resumed.fact.paused, resumed.fact.due_at, resumed.fact.due_at_original) == (False, at("2026-03-12", 17), at("2026-03-06", 17))
    assert resumed.deadlines == (domain.DeadlineChange(at("2026-03-09"), at("2026-03-12", 17), False),)


def test_a_second_supplement_request_is_late_and_names_who_held_the_case() -> None:
    fact = fold_all(
        received(),
        CaseAssigned(**base(at("2026-03-02", 10)), department="Tư pháp", assignee="cb-1"),
        CaseSupplementRequested(**base(at("2026-03-03")), reason="thiếu"),
        CaseClockResumed(**base(at("2026-03-04")), supplemented_at=at("2026-03-04"), due_at=at("2026-03-09", 17)),
        CaseSupplementRequested(**base(at("2026-03-05")), reason="thiếu nữa", supplement_number=2, marks_late=True),
    )
    assert (fact.late_at, fact.late_reason, fact.late_holder_unit, fact.late_holder_officer) == (
        at("2026-03-05"), "second_supplement", "Tư pháp", "cb-1"
    )
    assert (fact.supplement_count, fact.holder_unit, fact.holder_officer) == (2, UNIT, None)


def test_the_overdue_notice_names_the_holder_and_the_earliest_lateness_wins() -> None:
    fact = fold_all(
        received(),
        CaseTransferred(**base(at("2026-03-03")), to_agency="000.00.01.H56"),
        CaseOverdue(**base(at("2026-03-06", 17, 5)), due_at=at("2026-03-06", 17), holder="cb-h", holder_unit="000.00.01.H56"),
        CaseResultReady(**base(at("2026-03-10")), finished_at=at("2026-03-10"), timeliness="late", due_at=at("2026-03-06", 17)),
    )
    assert (fact.late_at, fact.late_holder_unit, fact.late_holder_officer) == (at("2026-03-06", 17), "000.00.01.H56", "cb-h")
    assert (fact.close_kind, fact.close_timeliness, fact.closed_at) == ("result", "late", at("2026-03-10"))


def test_a_late_result_without_a_notice_is_late_since_its_deadline_held_by_its_handler() -> None:
    fact = fold_all(
        received(),
        CaseAssigned(**base(at("2026-03-02", 10)), assignee="cb-2"),
        CaseResultReady(**base(at("2026-03-09")), finished_at=at("2026-03-09"), timeliness="late", due_at=at("2026-03-06", 17)),
    )
    assert (fact.late_at, fact.late_reason, fact.late_holder_unit, fact.late_holder_officer) == (
        at("2026-03-06", 17), "finished_late", UNIT, "cb-2"
    )
    assert (fact.holder_unit, fact.result_at) == (UNIT, at("2026-03-09"))


def test_the_return_keeps_the_end_of_processing_of_the_result() -> None:
    fact = fold_all(
        received(),
        CaseResultReady(**base(at("2026-03-04")), finished_at=at("2026-03-04"), timeliness="early"),
        CaseReturned(**base(at("2026-03-05")), returned_at=at("2026-03-05"), return_channel="postal", timeliness="early",
                     finished_at=at("2026-03-04"), tracking_number="EV1"),
    )
    assert (fact.closed_at, fact.returned_at, fact.return_channel, fact.holder_unit) == (at("2026-03-04"), at("2026-03-05"), "postal", None)


def test_a_stop_the_workflow_did_not_judge_is_judged_against_the_deadline() -> None:
    early = fold_all(received(), CaseStopped(**base(at("2026-03-04")), reason="dừng"))
    late = fold_all(received(), CaseStopped(**base(at("2026-03-09")), reason="dừng"))
    assert (early.close_kind, early.close_timeliness) == ("stopped", "early")
    assert (late.close_timeliness, late.late_at) == ("late", at("2026-03-06", 17))


def test_a_withdrawal_closes_the_dossier_and_is_judged_when_reported() -> None:
    fact = fold_all(received(), DossierWithdrawn(**base(at("2026-03-04")), reason="rút"))
    assert (fact.close_kind, fact.close_timeliness, fact.closed_at) == ("withdrawn", None, at("2026-03-04"))
    after = fold_all(CaseResultReady(**base(at("2026-03-05")), finished_at=at("2026-03-05"), timeliness="early"), fact=fact)
    assert after.close_kind == "withdrawn"


def test_facts_of_other_producers_may_come_first_and_reception_does_not_undo_them() -> None:
    fact = fold_all(
        CaseAssigned(**base(at("2026-03-02", 10)), department="Tư pháp", assignee="cb-1"),
        DocumentSigned(**base(at("2026-03-03")), document_id="d", signer="CT", certificate_serial="01"),
        PaymentRequested(**base(at("2026-03-02", 9, 5)), payment_id="p", amount=Decimal(30000)),
        PaymentConfirmed(**base(at("2026-03-02", 9, 30)), payment_id="p", amount=Decimal(30000), channel="online"),
        received(),
    )
    assert (fact.holder_unit, fact.holder_officer, fact.assignee) == ("Tư pháp", "cb-1", "cb-1")
    assert (fact.result_signed_at, fact.fee_requested, fact.paid_online_at) == (at("2026-03-03"), 30000, at("2026-03-02", 9, 30))
    assert fact.received_at == at("2026-03-02") and fact.last_activity_at == at("2026-03-03")


def test_digitization_reuse_apology_explanation_and_the_first_rating() -> None:
    fact = fold_all(
        received(reused_components=1),
        DossierDigitized(**base(at("2026-03-02", 10)), required=2, digitized=1, reused=1),
        DocumentDigitized(**base(at("2026-03-05")), document_id="r", stage="result", sha256="0" * 64, pages=1, signed=True,
                          owner_filed=True),
        CaseApologyIssued(**base(at("2026-03-05", 8)), reason="chậm", new_appointment_at=at("2026-03-10", 17), timely=True),
        CaseDelayExplained(**base(at("2026-03-07")), explanation="chậm", holder_unit="Tư pháp", holder_officer="cb-9"),
        CaseRated(**base(at("2026-03-08")), rating="satisfied"),
        CaseRated(**base(at("2026-03-09")), rating="dissatisfied"),
    )
    assert (fact.digitized_at, fact.reused_at, fact.result_signed_at, fact.owner_filed_at) == (
        at("2026-03-02", 10), at("2026-03-02"), at("2026-03-05"), at("2026-03-05")
    )
    assert (fact.apology_at, fact.apology_timely, fact.new_appointment_at) == (at("2026-03-05", 8), True, at("2026-03-10", 17))
    assert (fact.late_holder_unit, fact.late_holder_officer, fact.late_at) == ("Tư pháp", "cb-9", at("2026-03-06", 17))
    assert (fact.rating, fact.rated_at) == ("satisfied", at("2026-03-08"))


# ---- rates ---------------------------------------------------------------------------------------------------------------------


def counts(**given: int) -> dict[str, int]:
    return domain.complete_counts(given)


def test_percent_rounds_half_up_to_two_decimals_and_is_null_without_a_denominator() -> None:
    assert domain.percent(2, 3) == 66.67 and domain.percent(1, 8) == 12.5 and domain.percent(1, 0) is None


def test_the_plan_rates_follow_the_standard_table() -> None:
    c = counts(carried_over=3, received_total=17, received_online=5, received_postal=2, resolved_total=10, resolved_early=6,
               resolved_late=2, withdrawn_late=1, pending_overdue=1, fee_dossiers=4, paid_online=3, complaint_dossiers=2)  # fmt: skip
    rates = domain.rates(c, {"on_time": 98, "late": 2, "online": 20})
    assert (rates["on_time"]["numerator"], rates["on_time"]["denominator"], rates["on_time"]["percent"]) == (16, 20, 80.0)
    assert (rates["late"]["percent"], rates["late"]["met"]) == (20.0, False)
    assert (rates["early"]["percent"], rates["online"]["percent"], rates["online"]["met"]) == (60.0, 29.41, True)
    assert rates["satisfaction"]["numerator"] == 14 and rates["satisfaction"]["percent"] == 70.0
    assert rates["online_payment"]["percent"] == 75.0 and rates["on_time"]["met"] is False
    empty = domain.rates(counts())
    assert all(r["percent"] is None and r["met"] is None for r in empty.values())


def test_e_identity_rates_count_online_dossiers_identified_and_population_data_used() -> None:
    c = counts(received_total=20, received_online=8, online_identified=6, identified_vneid=6, identified_chip_card=5,
               population_data_used=9)  # fmt: skip
    rates = domain.rates(c, {"online_identified": 100})
    assert (rates["online_identified"]["numerator"], rates["online_identified"]["denominator"]) == (6, 8)
    assert (rates["online_identified"]["percent"], rates["online_identified"]["met"]) == (75.0, False)
    assert (rates["population_data"]["percent"], rates["population_data"]["indicator"]) == (45.0, "4.5")


def test_the_sync_rate_is_the_dvcqg_sync_outcomes_never_a_count_of_the_table() -> None:
    c = counts(received_total=17)
    assert domain.rates(c)["sync"]["percent"] is None  # not measured: no longer received / received = 100 %
    synced = domain.rates(c, {"sync": 100}, measured={"sync": (9, 10)})["sync"]
    assert (synced["indicator"], synced["numerator"], synced["denominator"], synced["percent"], synced["met"]) == ("1.4", 9, 10, 90.0, False)


# ---- the 766 index ---------------------------------------------------------------------------------------------------------------


def test_points_are_capped_and_reach_the_maximum_at_the_full_rate() -> None:
    rules = {r.code: r for r in indicator_rules()}
    assert domain.points(rules["PROGRESS_ON_TIME"], 49, 50) == 19.6
    assert domain.points(rules["ONLINE_DOSSIERS"], 30, 100) == 7.2 and domain.points(rules["ONLINE_DOSSIERS"], 60, 100) == 12
    assert domain.points(rules["REUSED_DIGITIZED_DATA"], 40, 100) == 1.0
    assert domain.points(rules["DOSSIER_RECEIVING_SATISFACTION"], 0, 0) == 0
    assert domain.points(rules["PETITION_PROCESSING_ON_TIME"], 0, 0) == 6


def test_a_rule_set_changes_the_points_field_by_field() -> None:
    rules = {r.code: r for r in indicator_rules({"ONLINE_DOSSIERS": {"full_at": 0.8}, "PROGRESS_ON_TIME": {"empty": "na"}})}
    assert (rules["ONLINE_DOSSIERS"].max_points, rules["ONLINE_DOSSIERS"].full_at) == (12, 0.8)
    assert domain.points(rules["PROGRESS_ON_TIME"], 0, 0) is None


@pytest.mark.parametrize(("score", "name"), [(95, "Xuất sắc"), (90, "Xuất sắc"), (85, "Tốt"), (70, "Khá"), (55, "Trung bình"), (49.99, "Yếu")])
def test_bands(score: float, name: str) -> None:
    assert domain.band(score) == name


def test_the_indicators_are_the_six_groups_of_the_dvcqg_evaluation_100_points() -> None:
    rules = {r.code: r for r in indicator_rules()}
    assert len(rules) == 18 and sum(r.max_points for r in rules.values()) == 100
    groups = [["PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL", "DOSSIER_SYNC"], ["PROGRESS_ON_TIME"],
              ["ONLINE_DOSSIERS"], ["ORIGINAL_RESULT_AVAILABLE", "SO_HOA_GIAY_TO_GIAI_QUYET", "ELECTRONIC_CERTIFIED_COPY",
               "REUSED_DIGITIZED_DATA", "SYNCED_WITH_DVCQG_PERSONAL_STORAGE", "CITIZEN_DATA_CONNECTED_DOSSIER",
               "CITIZEN_DATA_CONNECTED_FORMALITY"],
              ["PETITION_PROCESSING_ON_TIME", "PETITION_HANDLING_SATISFACTION", "DOSSIER_RECEIVING_SATISFACTION"],
              ["ONLINE_PAYMENT_DOSSIERS", "ONLINE_PAYMENT_PROCEDURES"]]  # fmt: skip
    assert [sum(rules[c].max_points for c in g) for g in groups] == [18, 20, 12, 22, 18, 10]


# What the handler measures today: everything but the national system's indicators (and the sync, when unavailable).
EVERYTHING_LOCAL = {"PROGRESS_ON_TIME": (10, 10), "ONLINE_DOSSIERS": (5, 10), "ORIGINAL_RESULT_AVAILABLE": (1, 1),
                    "SO_HOA_GIAY_TO_GIAI_QUYET": (1, 1), "REUSED_DIGITIZED_DATA": (8, 10),
                    "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (1, 1), "CITIZEN_DATA_CONNECTED_DOSSIER": (10, 10),
                    "ONLINE_PAYMENT_DOSSIERS": (1, 1), "PETITION_PROCESSING_ON_TIME": (0, 0),
                    "DOSSIER_RECEIVING_SATISFACTION": (9, 10), "DOSSIER_SYNC": (10, 10)}  # fmt: skip


def test_the_index_shows_the_points_earned_of_the_points_computable_and_of_100_side_by_side() -> None:
    rules = indicator_rules()
    index = domain.index_766(EVERYTHING_LOCAL, rules)
    assert (index["total"], index["max_points"], index["index_max_points"]) == (74, 74, 100)
    assert index["of_computable"] == {"basis": "computable", "points": 74, "max_points": 74, "score": 100.0, "band": "Xuất sắc"}
    assert index["of_100"] == {"basis": "all", "points": 74, "max_points": 100, "score": 74.0, "band": "Khá"}
    # the band shown is the one of 100 unless configured otherwise, and says so
    assert (index["band"], index["band_basis"]) == ("Khá", "all")
    computable = domain.index_766(EVERYTHING_LOCAL, rules, basis="computable")
    assert (computable["band"], computable["band_basis"]) == ("Xuất sắc", "computable")
    half = domain.index_766({"PROGRESS_ON_TIME": (5, 10)}, rules)
    assert (half["total"], half["of_computable"]["score"], half["of_100"]["score"], half["band"]) == (10, 50.0, 10.0, "Yếu")


def test_every_indicator_not_computed_says_why() -> None:
    index = domain.index_766({k: v for k, v in EVERYTHING_LOCAL.items() if k != "DOSSIER_SYNC"}, indicator_rules(),
                             reasons={"DOSSIER_SYNC": domain.SYNC_UNAVAILABLE})  # fmt: skip
    missing = {r["code"]: r for r in index["not_computable"]}
    assert set(missing) == set(domain.NOT_COMPUTABLE_766) | {"DOSSIER_SYNC"}
    assert missing["DOSSIER_SYNC"]["reason"].startswith("sync outcomes unavailable") and missing["DOSSIER_SYNC"]["max_points"] == 6
    assert all(r["reason"] and r["name"] for r in missing.values())
    assert index["of_computable"]["max_points"] == 68 and index["of_100"]["max_points"] == 100
    assert {r["code"] for r in index["indicators"]}.isdisjoint(missing)
    nothing = domain.index_766({}, indicator_rules())
    assert len(nothing["not_computable"]) == 18 and nothing["of_computable"]["score"] is None and nothing["band"] == "Yếu"
    assert {r["reason"] for r in nothing["not_computable"] if r["code"] == "PROGRESS_ON_TIME"} == {domain.NOT_MEASURED}


def test_an_indicator_with_nothing_to_measure_and_no_score_stays_out_of_the_points_computable() -> None:
    rules = indicator_rules({"ONLINE_DOSSIERS": {"empty": "na"}})
    index = domain.index_766({"PROGRESS_ON_TIME": (10, 10), "ONLINE_DOSSIERS": (0, 0)}, rules)
    assert [r["points"] for r in index["indicators"]] == [20, None]
    assert (index["of_computable"]["max_points"], index["of_computable"]["score"], index["of_100"]["score"]) == (20, 100.0, 20.0)


def test_average_processing_time_counts_working_days_after_receipt() -> None:
    pairs = [(at("2026-03-02"), at("2026-03-04")), (at("2026-03-06"), at("2026-03-10"))]  # 2 and 2 (weekend skipped)
    assert domain.average_working_days(pairs, CAL) == 2.0 and domain.average_working_days([], CAL) is None


# ---- exports and settings ----------------------------------------------------------------------------------------------------------


def test_csv_has_a_byte_order_mark_vietnamese_headers_and_local_times() -> None:
    body = exports.to_csv(["Mã hồ sơ", "Ngày tiếp nhận", "Đã có thư xin lỗi"], [["X-1", at("2026-03-02", 8, 5), True]])
    assert body.startswith("\ufeff".encode()) and body.decode("utf-8-sig").splitlines() == [
        "Mã hồ sơ,Ngày tiếp nhận,Đã có thư xin lỗi", "X-1,02/03/2026 08:05,Có"
    ]


def test_xlsx_has_a_caption_a_frozen_header_and_the_rows() -> None:
    body = exports.to_xlsx("Tổng hợp", ["Đơn vị", "Tiếp nhận"], [["H56", 3], ["H57", None]], caption="Báo cáo")
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet.title == "Tổng hợp" and sheet.freeze_panes == "A3"
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [["Báo cáo", None], ["Đơn vị", "Tiếp nhận"], ["H56", 3], ["H57", None]]


def test_the_766_file_lists_what_is_not_computed_and_both_scores_with_the_band_basis() -> None:
    from services.reporting.models import Index766Public

    body = domain.index_766(EVERYTHING_LOCAL, indicator_rules())
    report = Index766Public(unit=UNIT, scope=UNIT, month="2026-03", average_processing=[], **body)
    sheet = load_workbook(io.BytesIO(exports.index_766_file(report, "xlsx").body)).active
    rows = {sheet.cell(row=r, column=1).value: [c.value for c in sheet[r]] for r in range(3, sheet.max_row + 1)}
    assert rows["PUBLISH_ON_TIME"][-1].startswith("Không tính: ") and rows["PUBLISH_ON_TIME"][5] == 6
    assert rows["DIEM_TINH_DUOC"][5:10] == [74, None, 74, 100, "Xuất sắc"]
    assert rows["DIEM_THANG_100"][5:11] == [100, None, 74, 74, "Khá", "xếp loại hiển thị dựa trên điểm này"]
    assert rows["DIEM_TINH_DUOC"][10] is None and "trên thang 100" in sheet.cell(row=1, column=1).value


def test_the_766_points_are_the_rules_not_a_setting() -> None:
    assert "index766_indicators" not in ReportingSettings.model_fields and "office_opens" not in ReportingSettings.model_fields
    assert not hasattr(domain, "DEFAULT_766")
    assert ReportingSettings().procedure_fields["1.004194"] == "Cư trú"
