"""Reporting's fold of ``dossier.imported``: a paper register's dossier counts at its own dates, not the import's."""

from __future__ import annotations

from datetime import datetime

from services.reporting import domain
from shared.clock import VN_TZ
from shared.events import DossierImported

UNIT = "000.00.12.H56"


def imported(**changes: object) -> DossierImported:
    base = dict(
        dossier_code=f"{UNIT}-250303-0001", unit=UNIT, occurred_at=datetime(2025, 3, 3, 8, 15, tzinfo=VN_TZ), import_id=1, line=2,
        procedure_code="1.004194", procedure_name="Đăng ký tạm trú", procedure_field="Cư trú", applicant_name="Nguyễn Thị Hoa",
        receiving_unit=UNIT, received_at=datetime(2025, 3, 3, 8, 15, tzinfo=VN_TZ),
        appointment_at=datetime(2025, 3, 6, 17, 0, tzinfo=VN_TZ), due_at=datetime(2025, 3, 6, 17, 0, tzinfo=VN_TZ),
        outcome="open", rules="VN.1",
    )  # fmt: skip
    return DossierImported(**{**base, **changes})  # type: ignore[arg-type]


def fold(event: DossierImported) -> domain.Folded:
    return domain.fold(domain.new_fact(event.dossier_code, event.unit), event)


def test_an_open_one_is_pending_with_its_register_deadline() -> None:
    folded = fold(imported())
    fact = folded.fact
    assert (fact.channel, fact.received_day.isoformat(), fact.due_at, fact.closed_at) == (
        "imported", "2025-03-03", datetime(2025, 3, 6, 17, 0, tzinfo=VN_TZ), None
    )
    assert fact.holder_unit == UNIT and fact.late_at is None and fact.rules == "VN.1"
    assert [(d.since, d.due_at, d.paused) for d in folded.deadlines] == [(fact.received_at, fact.due_at, False)]


def test_a_returned_late_one_closes_in_the_month_it_ended_and_is_late_from_its_deadline() -> None:
    finished = datetime(2025, 4, 2, 10, 0, tzinfo=VN_TZ)
    returned = datetime(2025, 4, 3, 9, 0, tzinfo=VN_TZ)
    fact = fold(imported(outcome="returned", finished_at=finished, returned_at=returned, timeliness="late", officer="Trần Văn Bình")).fact
    assert (fact.closed_at, fact.close_kind, fact.close_timeliness) == (finished, "result", "late")
    assert (fact.result_at, fact.returned_at, fact.return_channel) == (finished, returned, "counter")
    assert (fact.late_at, fact.late_reason, fact.late_holder_officer) == (datetime(2025, 3, 6, 17, 0, tzinfo=VN_TZ), "finished_late", "Trần Văn Bình")
    assert fact.holder_unit is None


def test_withdrawn_rejected_and_stopped_close_as_such() -> None:
    ended = datetime(2025, 3, 5, 9, 0, tzinfo=VN_TZ)
    kinds = {
        outcome: fold(imported(outcome=outcome, finished_at=ended, timeliness=None if outcome == "withdrawn" else "early")).fact
        for outcome in ("withdrawn", "rejected", "stopped", "done")
    }
    assert {k: (f.close_kind, f.close_timeliness, f.returned_at) for k, f in kinds.items()} == {
        "withdrawn": ("withdrawn", None, None), "rejected": ("rejected", "early", None), "stopped": ("stopped", "early", None),
        "done": ("result", "early", None),
    }
    assert kinds["done"].result_at == ended and kinds["withdrawn"].result_at is None
