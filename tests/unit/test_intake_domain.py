"""Intake rules: the dossier code and the appointment on the receipt."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.intake import domain
from shared.calendar import WorkingCalendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def test_the_dossier_code_is_unit_day_and_daily_sequence() -> None:
    received = datetime(2024, 3, 15, 9, 30, tzinfo=VN)
    assert domain.dossier_code("000.00.12.H56", received, 1) == "000.00.12.H56-240315-0001"


def test_the_code_takes_the_vietnamese_day_not_the_utc_day() -> None:
    received = datetime(2024, 3, 15, 23, 30, tzinfo=ZoneInfo("UTC"))  # 06:30 on the 16th in Vietnam
    assert domain.dossier_code("U", received, 12) == "U-240316-0012"


def test_the_appointment_follows_the_procedures_time_limit() -> None:
    tam_tru = domain.find_procedure("1.004194")  # Đăng ký tạm trú: 3 working days
    received = datetime(2025, 4, 24, 9, 0, tzinfo=VN)
    appointment = domain.appointment(received, tam_tru, WorkingCalendar())
    assert appointment.astimezone(VN).date().isoformat() == "2025-04-28"  # DOMAIN §2.5 example A


def test_every_seed_procedure_keeps_its_vietnamese_name() -> None:
    procedures = domain.seed_procedures()
    assert procedures["1.001193"].name == "Đăng ký khai sinh"
    assert all(p.name and p.field for p in procedures.values())


def test_an_unknown_procedure_is_named_in_the_error() -> None:
    with pytest.raises(domain.UnknownProcedure, match="9.999999"):
        domain.find_procedure("9.999999")
