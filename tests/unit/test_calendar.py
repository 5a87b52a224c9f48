"""Working-day calendar and due dates (DOMAIN §2.1-§2.5), checked against python-holidays' VN data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.calendar import (
    DayKind,
    TimeLimit,
    TimeUnit,
    WorkingCalendar,
    classify,
    due_at,
    remaining_working_days,
    resume_due_at,
)
from shared.clock import VN_TZ

CAL = WorkingCalendar()


def vn(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """An instant in Vietnam time."""
    return datetime(y, m, d, hh, mm, tzinfo=VN_TZ)


def close(y: int, m: int, d: int) -> datetime:
    """End of office hours (17:00) on a day, the default deadline instant."""
    return datetime(y, m, d, 17, 0, tzinfo=VN_TZ)


def wd(n: int) -> TimeLimit:
    """A limit of n working days."""
    return TimeLimit(n, TimeUnit.WORKING_DAY)


# --- §2.5 worked examples -------------------------------------------------------------------


def test_example_a_makeup_saturday_counts_as_working_day() -> None:
    assert CAL.kind(date(2025, 4, 26)) is DayKind.MAKEUP_WORKING
    assert due_at(vn(2025, 4, 24), wd(3), CAL) == close(2025, 4, 28)


def test_example_b_national_day_2025_is_skipped() -> None:
    assert due_at(vn(2025, 8, 27), wd(5), CAL) == close(2025, 9, 5)


def test_example_c_same_day_after_cutoff_on_friday_moves_to_monday() -> None:
    limit = TimeLimit(0, TimeUnit.SAME_DAY)
    assert due_at(vn(2025, 3, 7, 16, 10), limit, CAL) == close(2025, 3, 10)


def test_example_c_same_day_before_cutoff_stays_on_the_day() -> None:
    limit = TimeLimit(0, TimeUnit.SAME_DAY)
    assert due_at(vn(2025, 3, 7, 14, 59), limit, CAL) == close(2025, 3, 7)


def test_same_day_at_exactly_cutoff_moves_to_next_working_day() -> None:
    assert due_at(vn(2025, 3, 7, 15, 0), TimeLimit(0, TimeUnit.SAME_DAY), CAL) == close(2025, 3, 10)


def test_same_day_without_cutoff_rule_stays_on_the_day() -> None:
    limit = TimeLimit(0, TimeUnit.SAME_DAY, cutoff_rule=False)
    assert due_at(vn(2025, 3, 7, 16, 10), limit, CAL) == close(2025, 3, 7)


def test_example_d_supplement_pauses_and_resumes_the_clock() -> None:
    received = vn(2025, 3, 3)
    due = due_at(received, wd(10), CAL)
    assert due == close(2025, 3, 17)
    remaining = remaining_working_days(vn(2025, 3, 6, 10, 0), due, CAL)
    assert remaining == 7  # 04, 05, 06 used: the request day counts as used
    assert resume_due_at(vn(2025, 3, 12, 10, 0), remaining, CAL) == close(2025, 3, 21)


def test_example_e_tet_2026_is_skipped() -> None:
    assert due_at(vn(2026, 2, 12), wd(3), CAL) == close(2026, 2, 24)


def test_example_f_reunification_2024_swap_and_makeup_saturday() -> None:
    assert CAL.kind(date(2024, 4, 29)) is DayKind.SWAPPED_OFF
    assert CAL.kind(date(2024, 5, 4)) is DayKind.MAKEUP_WORKING
    assert due_at(vn(2024, 4, 25), wd(15), CAL) == close(2024, 5, 20)


# --- holidays, compensatory days, swaps -----------------------------------------------------


@pytest.mark.parametrize(
    ("first_day", "first_off", "back_to_work"),
    [
        # Tết mùng 1 per DOMAIN §2.3; the off range is python-holidays' (incl. days moved off weekends).
        (date(2024, 2, 10), date(2024, 2, 8), date(2024, 2, 15)),
        (date(2025, 1, 29), date(2025, 1, 27), date(2025, 2, 3)),
        (date(2026, 2, 17), date(2026, 2, 16), date(2026, 2, 23)),
        (date(2027, 2, 6), date(2027, 2, 4), date(2027, 2, 11)),
    ],
)
def test_tet_lunar_new_year_days_are_off(first_day: date, first_off: date, back_to_work: date) -> None:
    assert CAL.kind(first_day) is DayKind.HOLIDAY
    assert CAL.kind(first_off) in {DayKind.HOLIDAY, DayKind.COMPENSATORY}
    assert CAL.working_days_between(first_off - timedelta(days=1), back_to_work - timedelta(days=1)) == 0
    assert CAL.next_working(first_off - timedelta(days=1)) == back_to_work


def test_tet_days_moved_off_a_weekend_are_compensatory() -> None:
    assert CAL.kind(date(2024, 2, 8)) is DayKind.COMPENSATORY  # Sat 10/02 Tết → Thu 08/02
    assert CAL.kind(date(2024, 2, 14)) is DayKind.COMPENSATORY  # Sun 11/02 → Wed 14/02


@pytest.mark.parametrize(
    "hung_kings_day",
    [date(2024, 4, 18), date(2025, 4, 7), date(2026, 4, 26), date(2027, 4, 16)],
)
def test_hung_kings_commemoration_is_a_holiday(hung_kings_day: date) -> None:
    assert CAL.kind(hung_kings_day) is DayKind.HOLIDAY


def test_hung_kings_2026_on_sunday_is_observed_on_monday_27_april() -> None:
    assert date(2026, 4, 26).weekday() == 6
    assert CAL.kind(date(2026, 4, 27)) is DayKind.COMPENSATORY
    assert not CAL.is_working(date(2026, 4, 27))
    assert CAL.next_working(date(2026, 4, 24)) == date(2026, 4, 28)


def test_2026_swap_monday_31_august_off_and_saturday_22_august_worked() -> None:
    assert CAL.kind(date(2026, 8, 31)) is DayKind.SWAPPED_OFF
    assert CAL.kind(date(2026, 8, 22)) is DayKind.MAKEUP_WORKING
    assert CAL.is_working(date(2026, 8, 22))
    assert not CAL.is_working(date(2026, 8, 31))
    assert CAL.next_working(date(2026, 8, 28)) == date(2026, 9, 3)


def test_2025_swap_friday_2_may_off_and_saturday_26_april_worked() -> None:
    assert CAL.kind(date(2025, 5, 2)) is DayKind.SWAPPED_OFF
    assert CAL.kind(date(2025, 4, 26)) is DayKind.MAKEUP_WORKING


def test_cross_year_swap_from_python_holidays_is_loaded_lazily() -> None:
    # 2018 table: off Mon 31/12/2018, make-up Sat 05/01/2019.
    assert CAL.kind(date(2018, 12, 31)) is DayKind.SWAPPED_OFF
    assert CAL.kind(date(2019, 1, 5)) is DayKind.MAKEUP_WORKING


def test_national_day_2024_second_day_is_a_holiday() -> None:
    assert CAL.kind(date(2024, 9, 2)) is DayKind.HOLIDAY
    assert CAL.kind(date(2024, 9, 3)) is DayKind.HOLIDAY


def test_vietnam_culture_day_from_2026_only() -> None:
    assert CAL.kind(date(2026, 11, 24)) is DayKind.HOLIDAY
    assert CAL.kind(date(2025, 11, 24)) is DayKind.WORKING


def test_plain_weekend_and_weekday() -> None:
    assert CAL.kind(date(2025, 3, 8)) is DayKind.WEEKEND
    assert CAL.kind(date(2025, 3, 9)) is DayKind.WEEKEND
    assert CAL.kind(date(2025, 3, 10)) is DayKind.WORKING


def test_kind_refuses_a_datetime() -> None:
    with pytest.raises(TypeError):
        CAL.kind(vn(2025, 3, 10))


# --- admin overrides ------------------------------------------------------------------------


def test_admin_extra_day_off_is_not_a_working_day() -> None:
    cal = WorkingCalendar(extra_days_off={date(2025, 3, 5): "provincial storm closure"})
    assert cal.kind(date(2025, 3, 5)) is DayKind.ADMIN_OFF
    assert due_at(vn(2025, 3, 3), wd(3), cal) == close(2025, 3, 7)
    assert due_at(vn(2025, 3, 3), wd(3), CAL) == close(2025, 3, 6)


def test_admin_extra_working_saturday_counts() -> None:
    cal = WorkingCalendar(extra_working_days={date(2025, 3, 8): "provincial make-up day"})
    assert cal.kind(date(2025, 3, 8)) is DayKind.ADMIN_WORKING
    assert due_at(vn(2025, 3, 6), wd(2), cal) == close(2025, 3, 8)


def test_admin_can_reopen_a_national_holiday_and_cancel_a_makeup_day() -> None:
    cal = WorkingCalendar(
        extra_working_days={date(2025, 5, 2): "swap not applied here"},
        extra_days_off={date(2025, 4, 26): "swap not applied here"},
    )
    assert cal.is_working(date(2025, 5, 2))
    assert not cal.is_working(date(2025, 4, 26))


def test_admin_overrides_cannot_contradict_each_other() -> None:
    with pytest.raises(ValueError):
        WorkingCalendar(extra_days_off={date(2025, 3, 5): "a"}, extra_working_days={date(2025, 3, 5): "b"})


# --- receipt outside office hours -----------------------------------------------------------


def test_online_receipt_on_a_holiday_rolls_to_next_working_day() -> None:
    # Submitted online on Reunification Day 30/04/2025 at 22:00 → received Mon 05/05 (02/05 swapped off),
    # which is not counted: 1 WD → Tue 06/05.
    assert due_at(vn(2025, 4, 30, 22, 0), wd(1), CAL) == close(2025, 5, 6)


def test_online_receipt_after_office_hours_rolls_to_next_working_day() -> None:
    assert due_at(vn(2025, 3, 7, 17, 0), wd(1), CAL) == close(2025, 3, 11)
    assert due_at(vn(2025, 3, 7, 16, 59), wd(1), CAL) == close(2025, 3, 10)


def test_receipt_on_holiday_then_same_day_procedure_is_due_that_next_working_day() -> None:
    limit = TimeLimit(0, TimeUnit.SAME_DAY)
    assert due_at(vn(2025, 9, 1, 16, 0), limit, CAL) == close(2025, 9, 3)


def test_received_at_in_utc_is_converted_to_vietnam_time() -> None:
    # 09:30 UTC Friday = 16:30 in Vietnam: after the 15:00 cut-off.
    received = datetime(2025, 3, 7, 9, 30, tzinfo=UTC)
    assert due_at(received, TimeLimit(0, TimeUnit.SAME_DAY), CAL) == close(2025, 3, 10)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError):
        due_at(datetime(2025, 3, 7, 9, 0), wd(1), CAL)


# --- other units and policies ---------------------------------------------------------------


def test_working_hours_span_a_night_and_a_weekend() -> None:
    # Fri 07/03/2025 15:00 + 8 office hours: 2 h Friday, 6 h from Mon 07:30 → Mon 13:30.
    limit = TimeLimit(8, TimeUnit.WORKING_HOUR)
    assert due_at(vn(2025, 3, 7, 15, 0), limit, CAL) == vn(2025, 3, 10, 13, 30)


def test_working_hours_ending_exactly_at_close_stay_on_that_day() -> None:
    assert CAL.add_working_hours(vn(2025, 3, 7, 15, 0), 2) == close(2025, 3, 7)


def test_working_hours_received_before_opening_start_at_opening() -> None:
    assert CAL.add_working_hours(vn(2025, 3, 10, 6, 0), 1.5) == vn(2025, 3, 10, 9, 0)


def test_working_hours_respect_configured_office_hours() -> None:
    cal = WorkingCalendar(start_of_day=time(8, 0), end_of_day=time(16, 0), cutoff=time(14, 0))
    assert cal.add_working_hours(vn(2025, 3, 7, 15, 0), 2) == vn(2025, 3, 10, 9, 0)


def test_calendar_days_ending_on_sunday_roll_to_monday() -> None:
    # Received Wed 05/03/2025; 4 calendar days → Sun 09/03 → next working day Mon 10/03.
    assert due_at(vn(2025, 3, 5), TimeLimit(4, TimeUnit.CALENDAR_DAY), CAL) == close(2025, 3, 10)


def test_calendar_days_ending_on_working_day_stay() -> None:
    assert due_at(vn(2025, 3, 5), TimeLimit(2, TimeUnit.CALENDAR_DAY), CAL) == close(2025, 3, 7)


def test_midnight_policy_ends_at_last_instant_of_the_due_day() -> None:
    due = due_at(vn(2025, 4, 24), wd(3), CAL, end_of_day_policy="midnight")
    assert due == datetime.combine(date(2025, 4, 28), time.max, tzinfo=VN_TZ)


def test_verification_adds_extra_working_days() -> None:
    limit = TimeLimit(3, TimeUnit.WORKING_DAY, verification_extra=3)
    assert due_at(vn(2025, 3, 3), limit, CAL) == close(2025, 3, 6)
    assert due_at(vn(2025, 3, 3), limit, CAL, verification=True) == close(2025, 3, 11)


def test_same_day_marriage_with_verification_becomes_working_days() -> None:
    limit = TimeLimit(0, TimeUnit.SAME_DAY, verification_extra=5)
    assert due_at(vn(2025, 3, 3, 16, 0), limit, CAL, verification=True) == close(2025, 3, 10)


def test_working_days_between_excludes_start_and_includes_end() -> None:
    assert CAL.working_days_between(date(2025, 3, 3), date(2025, 3, 17)) == 10
    assert CAL.working_days_between(date(2025, 3, 3), date(2025, 3, 3)) == 0
    assert CAL.working_days_between(date(2025, 3, 17), date(2025, 3, 3)) == 0
    assert CAL.working_days_between(date(2025, 4, 24), date(2025, 4, 28)) == 3


def test_remaining_working_days_is_zero_when_paused_on_or_after_due_day() -> None:
    due = close(2025, 3, 17)
    assert remaining_working_days(vn(2025, 3, 17, 10, 0), due, CAL) == 0
    assert remaining_working_days(vn(2025, 3, 19, 10, 0), due, CAL) == 0


# --- classification -------------------------------------------------------------------------


def test_classify_late_one_microsecond_after_due() -> None:
    due = close(2025, 3, 17)
    assert classify(due + timedelta(microseconds=1), due) == "late"


def test_classify_on_time_on_the_due_day_up_to_due() -> None:
    due = close(2025, 3, 17)
    assert classify(due, due) == "on_time"
    assert classify(vn(2025, 3, 17, 0, 0), due) == "on_time"


def test_classify_early_on_an_earlier_day() -> None:
    due = close(2025, 3, 17)
    assert classify(datetime.combine(date(2025, 3, 16), time.max, tzinfo=VN_TZ), due) == "early"


def test_classify_uses_vietnam_calendar_day_not_utc() -> None:
    due = close(2025, 3, 17)
    # 23:30 UTC on 16/03 is 06:30 on 17/03 in Vietnam: the due day, so on time.
    assert classify(datetime(2025, 3, 16, 23, 30, tzinfo=UTC), due) == "on_time"
