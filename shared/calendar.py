"""Working-day calendar and dossier due dates for Vietnamese administrative procedures (DOMAIN §2).

Pure code: no I/O, no clock, no database. Public holidays, compensatory days and the yearly day
swaps come from python-holidays (Labour Code 2019 art. 111-112 plus its static swap table); each
calendar instance adds its own admin overrides on top.

How python-holidays 0.109 shows a swap (e.g. 2025: off Fri 02/05, make-up Sat 26/04):
- the swapped-off weekday is an ordinary holiday entry labelled "Day off (substituted from
  04/26/2025)" in en_US ("Ngày nghỉ (thay cho ngày 26/04/2025)" in vi); we pin en_US and match it;
- the make-up Saturday is not a holiday entry at all; it is listed in the public attribute
  `weekend_workdays` ("working days moved to weekends"), filled as each year is populated.
Compensatory days (nghỉ bù, incl. Tết days moved off a weekend such as "29 Tết") are the dates
present with `observed=True` and absent with `observed=False`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Literal

import holidays

from shared.clock import VN_TZ

EndOfDayPolicy = Literal["office", "midnight"]
Classification = Literal["early", "on_time", "late"]

_LABEL_LANGUAGE = "en_US"
_SUBSTITUTED = re.compile(r"^Day off \(substituted from \d{2}/\d{2}/\d{4}\)$")
_MAX_SCAN_DAYS = 1000


class DayKind(StrEnum):
    """Why a date is, or is not, a working day."""

    WORKING = "WORKING"
    WEEKEND = "WEEKEND"
    HOLIDAY = "HOLIDAY"
    COMPENSATORY = "COMPENSATORY"
    SWAPPED_OFF = "SWAPPED_OFF"
    MAKEUP_WORKING = "MAKEUP_WORKING"
    ADMIN_OFF = "ADMIN_OFF"
    ADMIN_WORKING = "ADMIN_WORKING"


WORKING_KINDS = frozenset({DayKind.WORKING, DayKind.MAKEUP_WORKING, DayKind.ADMIN_WORKING})


class TimeUnit(StrEnum):
    """Unit of a published processing time."""

    SAME_DAY = "SAME_DAY"
    WORKING_DAY = "WORKING_DAY"
    WORKING_HOUR = "WORKING_HOUR"
    CALENDAR_DAY = "CALENDAR_DAY"


@dataclass(frozen=True)
class TimeLimit:
    """A procedure's processing time: (limit, unit, 15:00 rule, extra when verification is needed)."""

    amount: int
    unit: TimeUnit
    cutoff_rule: bool = True
    verification_extra: int = 0


def province_of(unit: str) -> str:
    """The province part of a QCVN 102:2016 unit code (``000.00.12.H56`` → ``H56``): whose calendar a unit keeps."""
    return unit.rsplit(".", 1)[-1]


@cache
def _official_kinds(year: int) -> Mapping[date, DayKind]:
    """Non-default day kinds of one year according to python-holidays (VN)."""
    observed = holidays.country_holidays("VN", years=year, language=_LABEL_LANGUAGE)
    plain = holidays.country_holidays("VN", years=year, language=_LABEL_LANGUAGE, observed=False)
    kinds = {d: DayKind.MAKEUP_WORKING for d in observed.weekend_workdays if d.year == year}
    for d in observed:
        if any(_SUBSTITUTED.match(name) for name in observed.get_list(d)):
            kinds[d] = DayKind.SWAPPED_OFF
        else:
            kinds[d] = DayKind.HOLIDAY if d in plain else DayKind.COMPENSATORY
    return MappingProxyType(kinds)


def _to_vn(instant: datetime) -> datetime:
    """An aware instant shown in Vietnam time; naive datetimes are refused."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return instant.astimezone(VN_TZ)


def _plain_date(d: date) -> date:
    """Reject datetimes, which never compare equal to dates in lookups."""
    if isinstance(d, datetime):
        raise TypeError("expected a date, got a datetime")
    return d


class WorkingCalendar:
    """Working days and office hours of one office (national calendar plus admin overrides)."""

    def __init__(
        self,
        *,
        extra_days_off: Mapping[date, str] | None = None,
        extra_working_days: Mapping[date, str] | None = None,
        start_of_day: time = time(7, 30),
        end_of_day: time = time(17, 0),
        cutoff: time = time(15, 0),
    ) -> None:
        off = dict(extra_days_off or {})
        on = dict(extra_working_days or {})
        if clash := sorted(off.keys() & on.keys()):
            raise ValueError(f"dates both off and working: {clash}")
        if not start_of_day < end_of_day:
            raise ValueError("start_of_day must be before end_of_day")
        if not start_of_day <= cutoff <= end_of_day:
            raise ValueError("cutoff must lie within office hours")
        self.extra_days_off: Mapping[date, str] = MappingProxyType(off)
        self.extra_working_days: Mapping[date, str] = MappingProxyType(on)
        self.start_of_day = start_of_day
        self.end_of_day = end_of_day
        self.cutoff = cutoff
        self.tz = VN_TZ

    def with_declared_days(self, days: Iterable[tuple[date, bool, str | None]]) -> WorkingCalendar:
        """This calendar, office hours kept, plus a province's declared days as ``(day, working, note)``.

        The one way every service builds a provincial calendar from the days a province's admin declared.
        """
        off, on = dict(self.extra_days_off), dict(self.extra_working_days)
        declared = False
        for day, working, note in days:
            declared = True
            (on if working else off)[day] = note  # type: ignore[assignment]
            (off if working else on).pop(day, None)
        if not declared:
            return self
        return WorkingCalendar(
            extra_days_off=off,
            extra_working_days=on,
            start_of_day=self.start_of_day,
            end_of_day=self.end_of_day,
            cutoff=self.cutoff,
        )

    def kind(self, d: date) -> DayKind:
        """Classify a date; admin overrides win over the national calendar."""
        d = _plain_date(d)
        if d in self.extra_working_days:
            return DayKind.ADMIN_WORKING
        if d in self.extra_days_off:
            return DayKind.ADMIN_OFF
        if (official := _official_kinds(d.year).get(d)) is not None:
            return official
        return DayKind.WEEKEND if d.weekday() >= 5 else DayKind.WORKING

    def is_working(self, d: date) -> bool:
        """True if the office counts this date as a working day."""
        return self.kind(d) in WORKING_KINDS

    def next_working(self, d: date) -> date:
        """First working day strictly after d."""
        for offset in range(1, _MAX_SCAN_DAYS + 1):
            if self.is_working(candidate := d + timedelta(days=offset)):
                return candidate
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {d}")

    def working_days_between(self, start: date, end: date) -> int:
        """Number of working days d with start < d <= end (0 if end <= start)."""
        span = (end - start).days
        return sum(self.is_working(start + timedelta(days=i)) for i in range(1, span + 1))

    def local(self, instant: datetime) -> datetime:
        """An aware instant in the office's timezone."""
        return _to_vn(instant)

    def at(self, d: date, t: time) -> datetime:
        """The local instant at time t on date d."""
        return datetime.combine(d, t, tzinfo=self.tz)

    def open_instant(self, instant: datetime) -> datetime:
        """The instant itself if the office is open then, else the next opening time."""
        local = self.local(instant)
        d = local.date()
        if not self.is_working(d) or local.time() >= self.end_of_day:
            return self.at(self.next_working(d), self.start_of_day)
        if local.time() < self.start_of_day:
            return self.at(d, self.start_of_day)
        return local

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """Move forward by this many office hours, skipping nights and days off."""
        if hours < 0:
            raise ValueError("hours must be >= 0")
        current = self.open_instant(start)
        left = timedelta(hours=hours)
        while True:
            available = self.at(current.date(), self.end_of_day) - current
            if left <= available:
                return current + left
            left -= available
            current = self.at(self.next_working(current.date()), self.start_of_day)


def end_of(d: date, cal: WorkingCalendar, policy: EndOfDayPolicy = "office") -> datetime:
    """Deadline instant on day d: close of office ("office") or 23:59:59.999999 ("midnight")."""
    if policy == "office":
        return cal.at(d, cal.end_of_day)
    if policy == "midnight":
        return cal.at(d, time.max)
    raise ValueError(f"unknown end-of-day policy {policy!r}")


def _nth_working_after(d: date, n: int, cal: WorkingCalendar) -> date:
    """The n-th working day after d (d itself when n == 0)."""
    for _ in range(n):
        d = cal.next_working(d)
    return d


def due_at(
    received_at: datetime,
    limit: TimeLimit,
    cal: WorkingCalendar,
    *,
    end_of_day_policy: EndOfDayPolicy = "office",
    verification: bool = False,
) -> datetime:
    """Appointment (due) instant for a complete dossier received at received_at (DOMAIN §2.4)."""
    start = cal.open_instant(received_at)
    d = start.date()
    extra = limit.verification_extra if verification else 0
    match limit.unit:
        case TimeUnit.SAME_DAY:
            if extra:
                return end_of(_nth_working_after(d, extra, cal), cal, end_of_day_policy)
            late = limit.cutoff_rule and start.time() >= cal.cutoff
            return end_of(cal.next_working(d) if late else d, cal, end_of_day_policy)
        case TimeUnit.WORKING_DAY:
            return end_of(_nth_working_after(d, limit.amount + extra, cal), cal, end_of_day_policy)
        case TimeUnit.WORKING_HOUR:
            return cal.add_working_hours(start, limit.amount + extra)
        case TimeUnit.CALENDAR_DAY:
            last = d + timedelta(days=limit.amount + extra)
            return end_of(last if cal.is_working(last) else cal.next_working(last), cal, end_of_day_policy)
    raise ValueError(f"unknown time unit {limit.unit!r}")


def remaining_working_days(now: datetime, due: datetime, cal: WorkingCalendar) -> int:
    """Working days left when the clock pauses: those after now's local day up to due's local day."""
    return cal.working_days_between(cal.local(now).date(), cal.local(due).date())


def resume_due_at(
    resumed_at: datetime,
    remaining: int,
    cal: WorkingCalendar,
    *,
    end_of_day_policy: EndOfDayPolicy = "office",
) -> datetime:
    """New due instant when the supplement arrives: the resume day is not counted, like receipt."""
    limit = TimeLimit(remaining, TimeUnit.WORKING_DAY, cutoff_rule=False)
    return due_at(resumed_at, limit, cal, end_of_day_policy=end_of_day_policy)


def classify(done_at: datetime, due: datetime) -> Classification:
    """Late if after due; on time if on due's local calendar day; early if on an earlier day."""
    done_local, due_local = _to_vn(done_at), _to_vn(due)
    if done_local > due_local:
        return "late"
    if done_local.date() == due_local.date():
        return "on_time"
    return "early"
