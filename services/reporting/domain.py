"""Reporting rules, pure (no I/O): the hash chain, how each event moves a dossier's facts, report units
and periods, the plan's rates, the 766 index and the rules a service reports by.

What each figure counts is written next to it in the README ("Reports: what each figure counts");
the rules here are the ones that section describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dc_field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from shared.calendar import WorkingCalendar, classify
from shared.clock import VN_TZ
from shared.events import (
    CaseApologyIssued,
    CaseAssigned,
    CaseClockResumed,
    CaseDelayExplained,
    CaseFeedbackAnswered,
    CaseFeedbackReceived,
    CaseHandedOver,
    CaseOverdue,
    CaseRated,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    CaseTransferred,
    CaseTransferReturned,
    DocumentDigitized,
    DocumentReused,
    DocumentSigned,
    DossierDigitized,
    DossierImported,
    DossierReceived,
    DossierWithdrawn,
    Event,
    PaymentConfirmed,
    PaymentRefunded,
    PaymentRequested,
)
from shared.rules import Indicator, RuleBook, Rules, shipped_book
from shared.units import UnitRegistry

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainLink:
    """What one record of a dossier's stream commits to."""

    sequence: int
    event_id: str
    type: str
    source: str
    time: str
    data: dict[str, Any]
    prev_hash: str


def canonical_time(instant: datetime) -> str:
    """The instant as the chain hashes it: UTC, microseconds."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def link_hash(link: ChainLink) -> str:
    """SHA-256 of the previous hash and the record's canonical JSON."""
    body = json.dumps(
        {
            "sequence": link.sequence,
            "event_id": link.event_id,
            "type": link.type,
            "source": link.source,
            "time": link.time,
            "data": link.data,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((link.prev_hash + body).encode()).hexdigest()


def first_break(links: Iterable[tuple[ChainLink, str]]) -> int | None:
    """The sequence of the first record whose stored hash or back-link does not hold, or None."""
    expected_prev, expected_seq = GENESIS, 1
    for link, stored in links:
        if link.sequence != expected_seq or link.prev_hash != expected_prev or link_hash(link) != stored:
            return link.sequence
        expected_prev, expected_seq = stored, expected_seq + 1
    return None


# ---- units: a commune, or a roll-up of a district or a province -----------------------------------------

# QCVN 102:2016 electronic identifiers read right to left: level 1 (province or ministry, e.g. H56), level 2
# (two digits: a district or a provincial department), level 3 (two digits: a commune), level 4 (three digits: an
# office within it). A group of zeros means "the unit of the level above itself", so as a report scope it means
# "that unit and every unit below it".
_QCVN_WIDTHS = (3, 2, 2)

# Whose dossiers a report counts: those the unit processes (default), or those its one-stop received for any unit.
Attribution = Literal["processing", "receiving"]


@dataclass(frozen=True)
class Scope:
    """The units one report covers: ``province`` always, and either every unit whose ``scope_key`` matches ``pattern``
    (SQL LIKE on the groups read top down, ``_`` for a zero group, so the index range is the literal prefix) or
    exactly ``unit``; or, for a unit the registry knows, exactly the ``units`` it puts under it in the period (then
    ``provinces`` are their level-1 groups, what the rows' ``province`` column holds).

    ``attribution`` says which unit of a dossier the scope is matched against: the processing unit, or the one-stop
    that received it."""

    code: str
    province: str
    unit: str | None = None
    pattern: str | None = None
    units: frozenset[str] | None = None
    provinces: frozenset[str] | None = None
    attribution: Attribution = "processing"

    @property
    def groups(self) -> tuple[str, ...] | None:
        """The three lower groups, padded with zeros, or None for a code outside the QCVN shape."""
        parts = self.code.split(".")
        return tuple(parts[:3]) if len(parts) == 4 else None


def province_of(unit: str) -> str:
    """The level-1 group of a unit code (``000.00.12.H56`` → ``H56``); the whole code when it has no dots."""
    return unit.rsplit(".", 1)[-1]


def _is_zero(group: str) -> bool:
    return bool(group) and set(group) == {"0"}


def parse_scope(text: str) -> Scope:
    """A report scope from a unit code (see Scope): ``H56`` (province), ``12.H56`` or ``000.00.12.H56`` (district 12
    and everything below), ``000.05.12.H56`` (commune 05 and its offices), ``001.05.12.H56`` (that office only)."""
    text = text.strip()
    parts = text.split(".")
    if not text or any(not p for p in parts) or len(parts) > 4:
        return Scope(code=text, province=province_of(text), unit=text)
    if len(parts) == 1:
        return Scope(code=f"{'.'.join('0' * w for w in _QCVN_WIDTHS)}.{text}", province=text)
    lower = parts[:-1]
    padded = ["0" * w for w in _QCVN_WIDTHS[: 3 - len(lower)]] + lower
    if not all(len(g) == w and g.isalnum() for g, w in zip(padded, _QCVN_WIDTHS, strict=True)):
        return Scope(code=text, province=province_of(text), unit=text)  # not QCVN-shaped: that unit only
    code = ".".join([*padded, parts[-1]])
    if not any(_is_zero(g) for g in padded):
        return Scope(code=code, province=parts[-1], unit=code)
    if all(_is_zero(g) for g in padded):
        return Scope(code=code, province=parts[-1])
    top_down = [parts[-1], *reversed(padded)]
    pattern = ".".join("_" * len(g) if _is_zero(g) else _like_literal(g) for g in top_down)
    return Scope(code=code, province=parts[-1], pattern=pattern)


def scope_key(unit: str) -> str:
    """A unit code's groups read top down (``000.05.12.H56`` → ``H56.12.05.000``): a roll-up is a key prefix."""
    parts = unit.split(".")
    return ".".join(reversed(parts)) if len(parts) == 4 else unit


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scope_covers(outer: Scope, inner: Scope) -> bool:
    """True when every unit of ``inner`` is a unit of ``outer`` (a token's unit covers the reports below it)."""
    if outer.province != inner.province:
        return False
    if outer.unit is None and outer.pattern is None:
        return True  # the whole province
    o, i = outer.groups, inner.groups
    if o is None or i is None:
        return outer.code == inner.code
    return all(_is_zero(og) or og == ig for og, ig in zip(o, i, strict=True))


def token_covers(
    token_units: Iterable[str], scope: Scope, registry: UnitRegistry | None = None, first: date | None = None, last: date | None = None
) -> bool:
    """Whether a caller whose token lists these units may read a report of the scope: a unit covers the reports of its
    code pattern (QCVN zero groups), and of every unit the registry puts under it in the period (``first`` … ``last``:
    a province's communes, a district's old communes, the units merged into it)."""
    units = list(token_units)
    if "*" in units:
        return True
    code_scope = parse_scope(scope.code) if scope.units is not None else scope
    if any(scope_covers(parse_scope(u), code_scope) for u in units):
        return True
    if registry is None:
        return False
    lo, hi = first or date.min, last or date.max
    if hi < lo:
        lo, hi = hi, lo
    return any(registry.get(u) is not None and scope.code in registry.members(u, lo, hi) for u in units)


def resolve_scope(
    text: str, registry: UnitRegistry, first: date, last: date, attribution: Attribution = "processing"
) -> Scope:
    """The scope of a report of ``text`` over ``first`` … ``last``: for a unit the registry knows, the unit, the units
    below it that existed in the period and the units merged into them (``UnitRegistry.members``); for any other code,
    the QCVN code pattern (``parse_scope``)."""
    code = text.strip()
    known = registry.get(code)
    if known is None:
        return replace(parse_scope(code), attribution=attribution)
    lo, hi = (first, last) if first <= last else (last, first)
    members = registry.members(code, lo, hi)
    province = registry.province_of(code) or province_of(code)
    return Scope(
        code=code, province=province, units=members, provinces=frozenset(province_of(u) for u in members),
        attribution=attribution,
    )  # fmt: skip


def scope_province(scope: Scope, registry: UnitRegistry | None = None) -> str:
    """The province whose rules a report of the scope follows."""
    if registry is not None:
        found = registry.province_of(scope.code)
        if found is not None:
            return found
    return scope.province


# ---- periods, by the Vietnamese calendar day ------------------------------------------------------------------

PeriodKind = Literal["week", "month", "quarter", "year"]


@dataclass(frozen=True)
class Period:
    """Calendar days ``first`` … ``last`` (inclusive) in Vietnam, and the instants that bound them."""

    label: str
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """00:00 in Vietnam of the first day."""
        return datetime.combine(self.first, time(0), tzinfo=VN_TZ)

    @property
    def end(self) -> datetime:
        """00:00 in Vietnam of the day after the last (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=VN_TZ)


def custom_period(first: date, last: date) -> Period:
    """A period given by its days."""
    if last < first:
        raise ValueError("'to' is before 'from'")
    return Period(label=f"{first.isoformat()}..{last.isoformat()}", first=first, last=last)


def periods(kind: PeriodKind, year: int, number: int | None = None) -> list[Period]:
    """The weeks (ISO), months, quarters or the year of a year, or only the ``number``-th of them."""
    if kind == "year":
        found = [Period(f"{year}", date(year, 1, 1), date(year, 12, 31))]
    elif kind == "quarter":
        found = [
            Period(f"{year}-Q{q}", date(year, 3 * q - 2, 1), _month_end(year, 3 * q)) for q in range(1, 5)
        ]
    elif kind == "month":
        found = [Period(f"{year}-{m:02d}", date(year, m, 1), _month_end(year, m)) for m in range(1, 13)]
    elif kind == "week":
        weeks = date(year, 12, 28).isocalendar().week
        found = [
            Period(f"{year}-W{w:02d}", date.fromisocalendar(year, w, 1), date.fromisocalendar(year, w, 7))
            for w in range(1, weeks + 1)
        ]
    else:
        raise ValueError(f"unknown period {kind!r}")
    if number is None:
        return found
    if not 1 <= number <= len(found):
        raise ValueError(f"a {kind} number of {year} is 1 to {len(found)}")
    return [found[number - 1]]


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def month_of(instant: datetime) -> date:
    """The first day of the Vietnamese calendar month the instant falls in."""
    return instant.astimezone(VN_TZ).date().replace(day=1)


def month_period(month: date) -> Period:
    """The calendar month starting on ``month`` (its first day) as a period."""
    return Period(f"{month.year}-{month.month:02d}", month, _month_end(month.year, month.month))


def whole_month(period: Period) -> date | None:
    """The month's first day when the period is exactly one calendar month (what the roll-up holds), else None."""
    first = period.first
    return first if first.day == 1 and period.last == _month_end(first.year, first.month) else None


def active_months(fact: Fact, rolled_through: date | None = None) -> list[date]:
    """The months a received dossier's roll-up rows cover: from its receipt to its last activity (or receipt), and
    while it is open, to the month the roll-up was rolled forward through.

    Outside them the dossier counts in no month at all (closed: ``ACTIVE_SPAN`` of store.py), or only as an open
    dossier idle since before the month (carried over, pending), which reports of a month after ``rolled_through``
    count from the dossier's own row.
    """
    if fact.received_at is None:
        return []
    first = month_of(fact.received_at)
    last = month_of(_latest(fact.received_at, fact.last_activity_at) or fact.received_at)
    if fact.closed_at is None and rolled_through is not None:
        last = max(last, rolled_through)
    months = []
    while first <= last:
        months.append(first)
        first = (first + timedelta(days=32)).replace(day=1)
    return months


# ---- "near due" at the end of a period --------------------------------------------------------------------------

NearDueUnit = Literal["working_days", "working_hours"]


def near_due_horizon(period_end: datetime, threshold: float, unit: NearDueUnit, cal: WorkingCalendar) -> datetime:
    """A running dossier whose deadline is at or before this instant (and not passed) is near due at ``period_end``.

    Working days: the deadline falls within the next ``threshold`` working days after the period (through the end of
    that day). Working hours: within ``threshold`` office hours from the next opening after the period.
    """
    if threshold < 0:
        raise ValueError("the near-due threshold is not negative")
    if unit == "working_hours":
        return cal.add_working_hours(period_end, threshold)
    day = cal.local(period_end).date() - timedelta(days=1)  # the period's last day
    for _ in range(int(threshold)):
        day = cal.next_working(day)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=VN_TZ) - timedelta(microseconds=1)


# ---- a dossier's facts, folded from its events -------------------------------------------------------------------

CloseKind = Literal["result", "rejected", "stopped", "withdrawn"]


@dataclass(frozen=True)
class Fact:
    """Everything the reports count about one dossier (one row of ``dossier_facts``)."""

    code: str
    unit: str
    province: str = ""
    procedure_code: str | None = None
    procedure_name: str | None = None
    field: str = ""
    channel: str | None = None
    received_at: datetime | None = None
    received_day: date | None = None
    receiving_unit: str | None = None
    received_by: str | None = None
    due_at_original: datetime | None = None
    due_at: datetime | None = None
    paused: bool = False
    fee_due: int = 0
    reused_components: int = 0
    identification: str | None = None  # vneid_level2, chip_card, none; None: the receipt did not say (before it did)
    population_data_reused: bool = False  # the applicant's data came from the national population database
    department: str | None = None
    assignee: str | None = None
    holder_unit: str | None = None
    holder_officer: str | None = None
    closed_at: datetime | None = None
    close_kind: str | None = None
    close_timeliness: str | None = None
    result_at: datetime | None = None
    returned_at: datetime | None = None
    return_channel: str | None = None
    supplement_count: int = 0
    late_at: datetime | None = None
    late_reason: str | None = None
    late_holder_unit: str | None = None
    late_holder_officer: str | None = None
    apology_at: datetime | None = None
    apology_timely: bool | None = None
    new_appointment_at: datetime | None = None
    explained_at: datetime | None = None
    digitized_at: datetime | None = None
    result_signed_at: datetime | None = None
    owner_filed_at: datetime | None = None
    reused_at: datetime | None = None
    fee_requested: int = 0
    paid_at: datetime | None = None
    paid_online_at: datetime | None = None
    refunded_at: datetime | None = None
    rated_at: datetime | None = None
    rating: str | None = None
    feedback_at: datetime | None = None
    last_activity_at: datetime | None = None
    clock_since: datetime | None = None  # the latest change in the deadline history: ``due_at``/``paused`` hold since then
    rules: str | None = None  # the rule set ref in force at reception (``VN.2+H56.1``); None before events carried it
    applicant_name: str | None = None  # for the register (Form 07)

    @property
    def one_stop(self) -> str:
        """The one-stop unit that received the dossier and returns its result."""
        return self.receiving_unit or self.unit

    @property
    def home(self) -> tuple[str, str | None]:
        """Where the dossier sits while its own unit works on it: the department (or the unit) and the assignee."""
        return self.department or self.unit, self.assignee


@dataclass(frozen=True)
class DeadlineChange:
    """From ``since`` on, the dossier's clock runs towards ``due_at``, or is paused (a supplement request)."""

    since: datetime
    due_at: datetime | None
    paused: bool


@dataclass(frozen=True)
class FeedbackChange:
    """A piece of citizen feedback (PAKN) received or answered."""

    feedback_id: str
    received_at: datetime | None = None
    due_at: datetime | None = None
    answered_at: datetime | None = None
    timeliness: str | None = None


@dataclass(frozen=True)
class Folded:
    """What one event did: the new facts, and rows for the deadline history and the feedback table."""

    fact: Fact
    deadlines: tuple[DeadlineChange, ...] = ()
    feedback: tuple[FeedbackChange, ...] = ()
    late_steps: tuple[LateStep, ...] = ()


@dataclass(frozen=True)
class LateStep:
    """An inter-agency step that came back after its own deadline: blamed on the agency that held it."""

    agency: str
    returned_at: datetime
    step_no: int | None = None
    due_at: datetime | None = None


def new_fact(code: str, unit: str) -> Fact:
    """The facts of a dossier no event has told about yet."""
    return Fact(code=code, unit=unit, province=province_of(unit))


def _earliest(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate < current else current


def _latest(current: datetime | None, *candidates: datetime | None) -> datetime | None:
    for candidate in candidates:
        if candidate is not None and (current is None or candidate > current):
            current = candidate
    return current


def _received(
    fact: Fact, event: DossierReceived | DossierImported, fields: Mapping[str, str], **more: Any
) -> Fact:
    """A reception's facts, at the counter or the portal (``dossier.received``) or from a paper register
    (``dossier.imported``): who, what, where and when; ``more`` holds what differs between the two."""
    return replace(
        fact,
        unit=event.unit,
        province=province_of(event.unit),
        procedure_code=event.procedure_code,
        procedure_name=event.procedure_name,
        field=event.procedure_field or fields.get(event.procedure_code, ""),
        received_at=event.received_at,
        received_day=event.received_at.astimezone(VN_TZ).date(),
        receiving_unit=event.receiving_unit,
        rules=event.rules or fact.rules,
        applicant_name=event.applicant_name,
        **more,
    )


def _close(fact: Fact, at: datetime, kind: CloseKind, timeliness: str | None) -> Fact:
    """Processing ended (the earliest end wins: a return after the result does not move it)."""
    if fact.closed_at is not None and fact.closed_at <= at:
        return fact
    return replace(fact, closed_at=at, close_kind=kind, close_timeliness=timeliness)


def _mark_late(fact: Fact, at: datetime, reason: str, unit: str | None, officer: str | None) -> Fact:
    """The dossier went late at ``at``, held by this unit and officer (the earliest lateness wins)."""
    if fact.late_at is not None and fact.late_at <= at:
        return fact
    return replace(
        fact, late_at=at, late_reason=reason, late_holder_unit=unit or fact.holder_unit or fact.unit, late_holder_officer=officer
    )


def judge(at: datetime, fact: Fact) -> str:
    """Early, on time or late for an end of processing the producer did not judge (DOMAIN §2.4)."""
    if fact.late_at is not None and fact.late_at <= at:
        return "late"
    if fact.due_at is None:
        return "on_time"
    return classify(at, fact.due_at)


def fold(fact: Fact, event: Event, *, actor: str | None = None, fields: Mapping[str, str] | None = None) -> Folded:
    """The dossier's facts after one event. Deterministic: replaying the log gives the same facts.

    Events of different producers may arrive in any order (one topic each): times keep the earliest or latest
    instant, and what intake says at reception never overwrites what workflow said already.
    """
    fields = fields or {}
    fact = replace(fact, last_activity_at=_latest(fact.last_activity_at, event.occurred_at))
    deadlines: list[DeadlineChange] = []
    feedback: list[FeedbackChange] = []
    late_steps: list[LateStep] = []
    match event:
        case DossierReceived():
            original = event.due_at_original or event.appointment_at
            fact = _received(
                fact,
                event,
                fields,
                channel=event.channel,
                received_by=event.received_by,
                due_at_original=original,
                due_at=fact.due_at or original,
                fee_due=event.fee_due,
                reused_components=event.reused_components,
                reused_at=_earliest(fact.reused_at, event.received_at if event.reused_components else None),
                identification=event.identification,
                population_data_reused=bool(event.population_data_reused),
                last_activity_at=_latest(fact.last_activity_at, event.received_at),
            )
            if fact.holder_unit is None and fact.closed_at is None:
                fact = replace(fact, holder_unit=fact.one_stop, holder_officer=event.received_by)
            deadlines.append(DeadlineChange(event.received_at, original, False))
        case DossierImported():
            # A paper register's dossier: its whole history in one fact, at the register's own dates (not the import's).
            fact = _received(
                fact,
                event,
                fields,
                channel="imported",
                received_by=event.officer,
                due_at_original=event.appointment_at,
                due_at=event.due_at,
                identification="none",
                last_activity_at=_latest(fact.last_activity_at, event.received_at, event.finished_at, event.returned_at),
            )
            deadlines.append(DeadlineChange(event.received_at, event.due_at, False))
            ended = event.finished_at or event.returned_at
            if event.outcome == "open" or ended is None:
                if fact.holder_unit is None and fact.closed_at is None:
                    fact = replace(fact, holder_unit=fact.one_stop, holder_officer=event.officer)
            else:
                if event.timeliness == "late":
                    fact = _mark_late(fact, min(event.due_at, ended), "finished_late", fact.one_stop, event.officer)
                closing: CloseKind = {"rejected": "rejected", "stopped": "stopped", "withdrawn": "withdrawn"}.get(event.outcome, "result")  # type: ignore[assignment]
                fact = _close(fact, ended, closing, event.timeliness)
                fact = replace(fact, holder_unit=None, holder_officer=None)
                if closing == "result":
                    fact = replace(
                        fact,
                        result_at=_earliest(fact.result_at, ended),
                        returned_at=_earliest(fact.returned_at, event.returned_at),
                        return_channel=fact.return_channel or ("counter" if event.returned_at else None),
                    )
        case CaseAssigned():
            department = event.department if event.department is not None else fact.department
            fact = replace(
                fact,
                department=department,
                assignee=event.assignee,
                holder_unit=department or fact.unit,
                holder_officer=event.assignee,
            )
        case CaseSupplementRequested():
            if event.marks_late:
                reason = "second_supplement" if event.supplement_number > 1 else "overdue"
                fact = _mark_late(fact, event.occurred_at, reason, fact.holder_unit, fact.holder_officer or actor)
            fact = replace(
                fact,
                supplement_count=max(fact.supplement_count, event.supplement_number),
                paused=True,
                holder_unit=fact.one_stop,
                holder_officer=None,
            )
            deadlines.append(DeadlineChange(event.occurred_at, None, True))
        case CaseClockResumed():
            due = event.due_at or fact.due_at
            unit, officer = fact.home
            fact = replace(fact, paused=False, due_at=due, holder_unit=unit, holder_officer=officer)
            fact = replace(fact, last_activity_at=_latest(fact.last_activity_at, event.supplemented_at))
            deadlines.append(DeadlineChange(event.supplemented_at, due, False))
        case CaseTransferred():
            fact = replace(fact, holder_unit=event.to_agency, holder_officer=None)
        case CaseTransferReturned():
            unit, officer = fact.home
            fact = replace(fact, holder_unit=unit, holder_officer=officer)
            if event.step_late:
                late_steps.append(LateStep(event.from_agency, event.occurred_at, event.step_no, event.step_due_at))
        case CaseHandedOver():
            # the merged unit's open dossier now sits with its successor; its own unit (and the roll-up) stay
            if fact.holder_unit == event.from_unit:
                fact = replace(fact, holder_unit=event.unit)
        case CaseResultReady():
            if event.timeliness == "late":
                at = min(event.due_at or fact.due_at or event.finished_at, event.finished_at)
                fact = _mark_late(fact, at, "finished_late", fact.holder_unit, fact.holder_officer)
            fact = _close(fact, event.finished_at, "result", event.timeliness)
            fact = replace(
                fact,
                result_at=_earliest(fact.result_at, event.finished_at),
                holder_unit=fact.one_stop,
                holder_officer=None,
                last_activity_at=_latest(fact.last_activity_at, event.finished_at),
            )
        case CaseReturned():
            finished = event.finished_at or event.returned_at
            if event.timeliness == "late":
                fact = _mark_late(fact, min(fact.due_at or finished, finished), "finished_late", fact.holder_unit, fact.holder_officer)
            fact = _close(fact, finished, "result", event.timeliness)
            fact = replace(
                fact,
                result_at=_earliest(fact.result_at, finished),
                returned_at=_earliest(fact.returned_at, event.returned_at),
                return_channel=fact.return_channel or event.return_channel,
                holder_unit=None,
                holder_officer=None,
                last_activity_at=_latest(fact.last_activity_at, event.returned_at, finished),
            )
        case CaseRejected() | CaseStopped():
            kind: CloseKind = "rejected" if isinstance(event, CaseRejected) else "stopped"
            timeliness = event.timeliness or judge(event.occurred_at, fact)
            if timeliness == "late":
                at = min(fact.due_at or event.occurred_at, event.occurred_at)
                fact = _mark_late(fact, at, "finished_late", fact.holder_unit, fact.holder_officer)
            fact = _close(fact, event.occurred_at, kind, timeliness)
        case DossierWithdrawn():
            # Judged at query time against the deadline in force then (intake's topic may overtake workflow's).
            fact = _close(fact, event.occurred_at, "withdrawn", None)
        case CaseOverdue():
            fact = _mark_late(fact, event.due_at, "overdue", event.holder_unit, event.holder)
        case CaseApologyIssued():
            if fact.apology_at is None or event.occurred_at < fact.apology_at:
                fact = replace(
                    fact, apology_at=event.occurred_at, apology_timely=event.timely, new_appointment_at=event.new_appointment_at
                )
        case CaseDelayExplained():
            fact = replace(fact, explained_at=_earliest(fact.explained_at, event.occurred_at))
            if fact.late_at is None:
                fact = _mark_late(
                    fact, min(fact.due_at or event.occurred_at, event.occurred_at), "overdue", event.holder_unit, event.holder_officer
                )
            elif fact.late_holder_officer is None and event.holder_officer:
                fact = replace(fact, late_holder_unit=event.holder_unit or fact.late_holder_unit, late_holder_officer=event.holder_officer)
        case CaseRated():
            if fact.rated_at is None or event.occurred_at < fact.rated_at:
                fact = replace(fact, rated_at=event.occurred_at, rating=event.rating)
        case CaseFeedbackReceived():
            fact = replace(fact, feedback_at=_earliest(fact.feedback_at, event.occurred_at))
            feedback.append(FeedbackChange(event.feedback_id, received_at=event.occurred_at, due_at=event.due_at))
        case CaseFeedbackAnswered():
            feedback.append(FeedbackChange(event.feedback_id, answered_at=event.answered_at, timeliness=event.timeliness))
        case DocumentDigitized():
            if event.stage == "result" and event.signed:
                fact = replace(fact, result_signed_at=_earliest(fact.result_signed_at, event.occurred_at))
            if event.owner_filed:
                fact = replace(fact, owner_filed_at=_earliest(fact.owner_filed_at, event.occurred_at))
        case DocumentSigned():
            if event.kind == "result":
                fact = replace(fact, result_signed_at=_earliest(fact.result_signed_at, event.occurred_at))
        case DocumentReused():
            fact = replace(fact, reused_at=_earliest(fact.reused_at, event.occurred_at))
        case DossierDigitized():
            fact = replace(fact, digitized_at=_earliest(fact.digitized_at, event.occurred_at))
            if event.reused:
                fact = replace(fact, reused_at=_earliest(fact.reused_at, event.occurred_at))
        case PaymentRequested():
            fact = replace(fact, fee_requested=max(fact.fee_requested, int(event.amount)))
        case PaymentConfirmed():
            paid = event.paid_at or event.occurred_at
            fact = replace(fact, paid_at=_earliest(fact.paid_at, paid))
            if event.channel == "online":
                fact = replace(fact, paid_online_at=_earliest(fact.paid_online_at, paid))
        case PaymentRefunded():
            fact = replace(fact, refunded_at=_earliest(fact.refunded_at, event.occurred_at))
        case _:
            pass  # kept in the stream; no figure counts it (approval, warnings, payment failures, certified copies)
    if deadlines:
        fact = replace(fact, clock_since=_latest(fact.clock_since, *(d.since for d in deadlines)))
    return Folded(fact, tuple(deadlines), tuple(feedback), tuple(late_steps))


# ---- the standard report ------------------------------------------------------------------------------------------

# Every count of the standard table, in the order of the VPCP template (DOMAIN §8.2), with its Vietnamese header.
COUNTS: dict[str, str] = {
    "carried_over": "Tồn kỳ trước chuyển sang",
    "received_total": "Tiếp nhận mới trong kỳ",
    "received_online": "Tiếp nhận trực tuyến",
    "received_counter": "Tiếp nhận trực tiếp",
    "received_postal": "Tiếp nhận qua bưu chính",
    "to_process": "Tổng số cần giải quyết",
    "resolved_total": "Đã giải quyết",
    "resolved_early": "Giải quyết trước hạn",
    "resolved_on_time": "Giải quyết đúng hạn",
    "resolved_late": "Giải quyết trễ hạn",
    "resolved_with_result": "Giải quyết có kết quả",
    "resolved_not_returned": "Đã giải quyết, chưa trả kết quả",
    "rejected": "Từ chối giải quyết",
    "stopped": "Dừng xử lý",
    "withdrawn": "Công dân rút hồ sơ",
    "withdrawn_late": "Rút hồ sơ khi đã quá hạn",
    "pending_total": "Đang giải quyết",
    "pending_not_due": "Đang giải quyết: chưa đến hạn",
    "pending_near_due": "Đang giải quyết: sắp đến hạn",
    "pending_overdue": "Đang giải quyết: quá hạn",
    "pending_paused": "Đang chờ bổ sung (dừng tính thời gian)",
    "supplement_requested": "Hồ sơ bị yêu cầu bổ sung",
    "received_within_time": "Tiếp nhận trong kỳ: đúng hạn hoặc còn hạn",
    "digitized_at_intake": "Số hóa khi tiếp nhận",
    "digitization_complete": "Số hóa đầy đủ hồ sơ và kết quả",
    "results_signed": "Kết quả được ký số",
    "fee_dossiers": "Hồ sơ có phí, lệ phí",
    "paid_online": "Thanh toán trực tuyến",
    "postal_returned": "Trả kết quả qua bưu chính",
    "reused_components_dossiers": "Tái sử dụng dữ liệu số hóa",
    "shared_with_store": "Lấy từ hoặc lưu vào kho dữ liệu cá nhân",
    "identified_vneid": "Người nộp xác thực bằng VNeID mức 2",
    "identified_chip_card": "Người nộp xác thực bằng thẻ CCCD gắn chip",
    "online_identified": "Hồ sơ trực tuyến có xác thực điện tử",
    "population_data_used": "Sử dụng dữ liệu dân cư (VNeID hoặc CSDLQG về dân cư)",
    "ratings_total": "Lượt đánh giá",
    "ratings_satisfied": "Đánh giá hài lòng",
    "ratings_dissatisfied": "Đánh giá không hài lòng",
    "feedback_dossiers": "Hồ sơ có phản ánh, kiến nghị",
    "complaint_dossiers": "Hồ sơ có PAKN hoặc không hài lòng",
    "apologies_issued": "Thư xin lỗi (Mẫu 04)",
}
# The counts the database computes (the rest are sums of them).
COMPUTED = tuple(k for k in COUNTS if k != "to_process")


def complete_counts(raw: Mapping[str, int]) -> dict[str, int]:
    """The database's counts plus the derived ``to_process`` (cần giải quyết = tồn kỳ trước + tiếp nhận mới)."""
    counts = {k: int(raw.get(k) or 0) for k in COMPUTED}
    counts["to_process"] = counts["carried_over"] + counts["received_total"]
    return {k: counts[k] for k in COUNTS}


@dataclass(frozen=True)
class RateRule:
    """A plan indicator (DOMAIN §4.4) as numerator / denominator of the counts."""

    key: str
    indicator: str
    label: str
    numerator: str
    denominator: str


def late_count(c: Mapping[str, int]) -> int:
    """Dossiers late in the period: resolved late, withdrawn after the deadline, still open past it (DOMAIN §8.2)."""
    return c["resolved_late"] + c["withdrawn_late"] + c["pending_overdue"]


def _on_time(c: Mapping[str, int]) -> int:
    return c["to_process"] - late_count(c)


def _satisfied(c: Mapping[str, int]) -> int:
    return max(0, c["to_process"] - late_count(c) - c["complaint_dossiers"])


RATES: tuple[tuple[str, str, str, Any, Any], ...] = (
    # key, indicator, Vietnamese label, numerator, denominator (a count name or a function of the counts)
    # 1.4: status changes synced to DVCQG within the on-time window / status changes owed (the sync outcomes, not the
    # counts: ``measured``)
    ("sync", "1.4", "Tỷ lệ đồng bộ trạng thái hồ sơ lên Cổng DVCQG đúng thời gian", None, None),
    ("on_time", "2.1", "Tỷ lệ giải quyết đúng hạn và trước hạn", _on_time, "to_process"),
    ("early", "2.1", "Tỷ lệ giải quyết trước hạn", "resolved_early", "resolved_total"),
    ("late", "2.1", "Tỷ lệ trễ hạn", late_count, "to_process"),
    ("online", "3.3", "Tỷ lệ hồ sơ trực tuyến", "received_online", "received_total"),
    ("postal", "3.3", "Tỷ lệ hồ sơ qua bưu chính", "received_postal", "received_total"),
    ("online_payment", "3.6", "Tỷ lệ thanh toán trực tuyến", "paid_online", "fee_dossiers"),
    ("electronic_result", "4.1", "Tỷ lệ kết quả điện tử (ký số)", "results_signed", "resolved_with_result"),
    ("digitization", "4.2", "Tỷ lệ số hóa hồ sơ, kết quả", "digitization_complete", "received_total"),
    ("reuse", "4.3", "Tỷ lệ tái sử dụng dữ liệu số hóa", "reused_components_dossiers", "received_total"),
    ("online_identified", "4.5", "Tỷ lệ hồ sơ trực tuyến có xác thực điện tử", "online_identified", "received_online"),
    ("population_data", "4.5", "Tỷ lệ hồ sơ sử dụng dữ liệu dân cư", "population_data_used", "received_total"),
    ("satisfaction", "5.4", "Mức độ hài lòng", _satisfied, "to_process"),
)


def percent(numerator: int, denominator: int) -> float | None:
    """100 × n / d rounded to 2 decimals (half up), or None when d is 0 (DOMAIN §4.3: "N/A")."""
    if denominator == 0:
        return None
    value = Decimal(100 * numerator) / Decimal(denominator)
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def rates(
    counts: Mapping[str, int], targets: Mapping[str, float] | None = None, *, measured: Mapping[str, tuple[int, int]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each plan indicator with its numerator, denominator and percent, and the plan's target where one is set.

    A rate that is not a ratio of the counts (``sync``) takes (numerator, denominator) from ``measured``; without it,
    it is 0 / 0: null, not measured.
    """
    targets = targets or {}
    out: dict[str, dict[str, Any]] = {}
    for key, indicator, label, num, den in RATES:
        if num is None:
            n, d = (measured or {}).get(key, (0, 0))
        else:
            n = num(counts) if callable(num) else counts[num]
            d = den(counts) if callable(den) else counts[den]
        p = percent(n, d)
        target = targets.get(key)
        met = None if p is None or target is None else (p <= target if key == "late" else p >= target)
        out[key] = {"indicator": indicator, "label": label, "numerator": n, "denominator": d, "percent": p,
                    "target": target, "met": met}  # fmt: skip
    return out


# ---- the 766 index (DOMAIN §4.2-§4.3) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorRule:
    """How one 766 indicator scores: ``min(max, max × rate / full_at)``; ``empty`` is the score when nothing is measured."""

    code: str
    name: str
    max_points: float
    full_at: float = 1.0
    empty: Literal["zero", "full", "na"] = "zero"


# Why an indicator is never computed here: its facts are the national system's, or it is scored per procedure or
# commune against lists no event carries. (An indicator computable in principle may still lack its facts at run time:
# the handler then gives its own reason, e.g. SYNC_UNAVAILABLE.)
NOT_COMPUTABLE_766: dict[str, str] = {
    "PUBLISH_ON_TIME": "công bố TTHC đúng hạn: quyết định công bố và thời hạn của nó nằm ở CSDL quốc gia về TTHC, không có trong sự kiện",
    "PUBLIC_UPDATE_ON_TIME": "cập nhật, công khai TTHC đúng hạn: dữ liệu của CSDL quốc gia về TTHC, không có trong sự kiện",
    "PUBLIC_CONTENT_FULL": "công khai đầy đủ nội dung: chấm trên nội dung công khai tại CSDL quốc gia về TTHC",
    "ELECTRONIC_CERTIFIED_COPY": "chứng thực bản sao điện tử: chấm theo tỷ lệ xã cung cấp dịch vụ, cần danh sách xã của địa bàn",
    "CITIZEN_DATA_CONNECTED_FORMALITY": "TTHC kết nối dữ liệu dân cư: chấm theo TTHC thuộc thẩm quyền, danh mục đó không có trong sự kiện",
    "PETITION_HANDLING_SATISFACTION": "hài lòng xử lý PAKN: không có sự kiện đánh giá việc xử lý PAKN",
    "ONLINE_PAYMENT_PROCEDURES": "phần B, C của chỉ tiêu thanh toán: chấm theo TTHC có phí của CSDL quốc gia về TTHC, không có trong sự kiện",
}  # fmt: skip
SYNC_UNAVAILABLE = "sync outcomes unavailable: hệ thống này không đồng bộ hồ sơ lên Cổng DVCQG (REPORTING_DVCQG_ENABLED=false)"
NOT_MEASURED = "không đo được tại hệ thống này"
DEFAULT_BANDS: tuple[tuple[float, str], ...] = ((90, "Xuất sắc"), (80, "Tốt"), (70, "Khá"), (50, "Trung bình"), (0, "Yếu"))
# Which score the band shown rests on: ``all`` the points earned of every indicator's (100: what is not computed here
# counts 0), ``computable`` the points earned of the indicators computed here only (rescaled to 100).
BandBasis = Literal["all", "computable"]


def indicator_rules(indicators: Mapping[str, Indicator]) -> list[IndicatorRule]:
    """Every indicator of a rule set (``Rules.indicators``: the points of the rules in force), in its order."""
    return [
        IndicatorRule(code=code, name=i.name, max_points=i.max_points, full_at=i.full_at, empty=i.empty)
        for code, i in indicators.items()
    ]


def points(rule: IndicatorRule, numerator: int, denominator: int) -> float | None:
    """The indicator's points: ``min(max, max × rate / full_at)``; when nothing is measured, 0, full or None."""
    if denominator == 0:
        return {"zero": 0.0, "full": float(rule.max_points), "na": None}[rule.empty]
    rate = numerator / denominator
    value = min(rule.max_points, rule.max_points * rate / rule.full_at) if rule.full_at > 0 else rule.max_points
    return round(value, 2)


def band(score: float, bands: Iterable[tuple[float, str]] = DEFAULT_BANDS) -> str:
    """The rating band of a score out of 100 (DOMAIN §4.1: ≥90 Xuất sắc, <50 Yếu; the middle bands are [I])."""
    bands = sorted(bands, key=lambda b: -b[0])
    for floor, name in bands:
        if score >= floor:
            return name
    return bands[-1][1]


def _score(basis: BandBasis, earned: float, maximum: float, bands: Iterable[tuple[float, str]]) -> dict[str, Any]:
    score = round(earned * 100 / maximum, 2) if maximum else None
    return {"basis": basis, "points": round(earned, 2), "max_points": round(maximum, 2), "score": score,
            "band": band(score, bands) if score is not None else None}  # fmt: skip


def index_766(
    measured: Mapping[str, tuple[int, int]],
    rules: Iterable[IndicatorRule],
    bands: Iterable[tuple[float, str]] = DEFAULT_BANDS,
    *,
    reasons: Mapping[str, str] | None = None,
    basis: BandBasis = "all",
) -> dict[str, Any]:
    """The 766 index of what was measured: each measured indicator with numerator, denominator, rate and points, each
    other one with the reason it is not computed, and the points earned out of two maximums side by side.

    ``of_computable`` is the points earned of the points of the indicators computed here (rescaled to 100: as if the
    others scored alike); ``of_100`` is the same points of every indicator's (the others count 0). ``band`` is the band
    of the one ``basis`` names (``band_basis``), so what the band rests on is always said, never rescaled silently.
    An indicator measured with nothing to count and ``empty: na`` earns nothing and stays out of ``of_computable``'s
    maximum; ``of_100``'s maximum is every indicator's, whatever was measured.
    """
    bands = tuple(bands)
    reasons = reasons or {}
    rows, missing = [], []
    earned = computable = every = 0.0
    for rule in rules:
        every += rule.max_points
        if rule.code not in measured:
            reason = reasons.get(rule.code) or NOT_COMPUTABLE_766.get(rule.code) or NOT_MEASURED
            missing.append({"code": rule.code, "name": rule.name, "max_points": rule.max_points, "reason": reason})
            continue
        n, d = measured[rule.code]
        pts = points(rule, n, d)
        rows.append({"code": rule.code, "name": rule.name, "numerator": n, "denominator": d, "percent": percent(n, d),
                     "max_points": rule.max_points, "full_at_percent": round(rule.full_at * 100, 2), "points": pts})  # fmt: skip
        if pts is not None:
            earned += pts
            computable += rule.max_points
    of_computable = _score("computable", earned, computable, bands)
    of_100 = _score("all", earned, every, bands)
    shown = of_100 if basis == "all" else of_computable
    return {
        "indicators": rows,
        "not_computable": missing,
        "total": round(earned, 2),
        "max_points": round(computable, 2),
        "index_max_points": round(every, 2),
        "of_computable": of_computable,
        "of_100": of_100,
        "band": shown["band"],
        "band_basis": basis,
    }


def average_working_days(pairs: Iterable[tuple[datetime, datetime]], cal: WorkingCalendar) -> float | None:
    """766 indicator 2.2 (monitoring): mean working days from receipt to the end of processing, receipt day not counted."""
    days = [cal.working_days_between(cal.local(a).date(), cal.local(b).date()) for a, b in pairs]
    return round(sum(days) / len(days), 2) if days else None


def average_working_days_each(triples: Iterable[tuple[datetime, datetime, WorkingCalendar]]) -> float | None:
    """The same mean, each dossier counted on its own calendar (the office hours of the rules it recorded)."""
    days = [cal.working_days_between(cal.local(a).date(), cal.local(b).date()) for a, b, cal in triples]
    return round(sum(days) / len(days), 2) if days else None


# ---- the accountability list (DOMAIN §8.3) ------------------------------------------------------------------------------

LATE_COLUMNS: dict[str, str] = {
    "code": "Mã hồ sơ",
    "unit": "Đơn vị",
    "procedure_code": "Mã TTHC",
    "procedure_name": "Tên TTHC",
    "field": "Lĩnh vực",
    "received_at": "Ngày tiếp nhận",
    "due_at_original": "Ngày hẹn trả",
    "due_at": "Hạn xử lý (sau khi trừ thời gian bổ sung)",
    "late_at": "Thời điểm quá hạn",
    "late_reason": "Lý do trễ",
    "state": "Tình trạng cuối kỳ",
    "closed_at": "Ngày kết thúc xử lý",
    "holder_unit": "Đơn vị đang giữ khi trễ hạn",
    "holder_officer": "Cán bộ đang giữ khi trễ hạn",
    "apology_issued": "Đã có thư xin lỗi",
    "apology_at": "Ngày xin lỗi",
    "apology_timely": "Xin lỗi đúng thời hạn",
    "new_appointment_at": "Ngày hẹn trả mới",
    "explained": "Đã giải trình",
}


# ---- what the reports need besides the rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRules:
    """What the reports need besides the database and the law in force: the near-due threshold, the plan's targets and
    the 766 bands. (The office hours and the 766 points are the rule set's: ``calendar_of``, ``Rules.indicators``.)"""

    near_due_threshold: float = 1
    near_due_unit: NearDueUnit = "working_days"
    targets: Mapping[str, float] = dc_field(default_factory=dict)
    bands: tuple[tuple[float, str], ...] = DEFAULT_BANDS
    band_basis: BandBasis = "all"


def rules_on(book: RuleBook, day: date, province: str | None = None) -> Rules:
    """The rules in force on ``day`` in ``province``; before the first national version, that version's (a report of a
    period before 21 June 2018 still has office hours, points and a register)."""
    try:
        return book.in_force(day, province)
    except LookupError:
        first = min((v.effective_from for v in book.history("VN")), default=None)
        if first is None:
            raise
        return book.in_force(first, province)


def calendar_of(rules: Rules) -> WorkingCalendar:
    """The working calendar of a rule set's office hours (near due in office hours, processing times)."""
    return WorkingCalendar(start_of_day=rules.office.opens, end_of_day=rules.office.closes, cutoff=rules.office.closes)


class Horizons:
    """The near-due horizon at the end of each month, by the report rules and the national office hours in force on the
    month's last day: what the roll-up counts near due with, and what a report of any scope uses (so that it can read
    the roll-up). ``use`` gives it the rule book as it changes."""

    def __init__(self, rules: ReportRules, book: RuleBook | None = None) -> None:
        self.rules = rules
        self.book = book or shipped_book()
        self._known: dict[date, datetime] = {}

    def use(self, book: RuleBook) -> None:
        """Count with this rule book from now on (forgetting the horizons of the one before)."""
        if book is not self.book:
            self.book, self._known = book, {}

    def calendar(self, day: date) -> WorkingCalendar:
        """The national office hours in force on ``day`` as a calendar."""
        return calendar_of(rules_on(self.book, day))

    def at(self, period: Period) -> datetime:
        """The near-due horizon at the end of a period."""
        month = whole_month(period)
        if month is not None:
            return self(month)
        return near_due_horizon(period.end, self.rules.near_due_threshold, self.rules.near_due_unit, self.calendar(period.last))

    def __call__(self, month: date) -> datetime:
        if month not in self._known:
            period = month_period(month)
            self._known[month] = near_due_horizon(
                period.end, self.rules.near_due_threshold, self.rules.near_due_unit, self.calendar(period.last)
            )
        return self._known[month]

    def of(self, fact: Fact | None, rolled_through: date | None) -> dict[date, datetime]:
        """The horizon of every month the dossier has roll-up rows in."""
        return {m: self(m) for m in active_months(fact, rolled_through)} if fact is not None else {}


# ---- the public month (công khai): what a unit publishes of a closed month ------------------------------------------

PUBLIC_YEARS = (2000, 2100)  # the years a public month may name (as the breakdown's ``year``)
# What the public board shows of a late dossier: its code, procedure and dates, never who applied or who held it
# (the accountability list's holder unit and officer, its internal reason and explanation stay with the officials).
PUBLIC_LATE_FIELDS = (
    "code", "procedure_code", "procedure_name", "field", "received_at", "due_at_original", "due_at", "late_at",
    "state", "closed_at", "apology_issued", "apology_at", "apology_timely", "new_appointment_at",
)  # fmt: skip


def public_month(text: str) -> Period | None:
    """The calendar month ``YYYY-MM`` (years ``PUBLIC_YEARS``) as a period, or None when the text names none."""
    year, dash, month = text.partition("-")
    if not (dash and len(year) == 4 and len(month) == 2 and (year + month).isascii() and (year + month).isdigit()):
        return None
    y, m = int(year), int(month)
    if not (PUBLIC_YEARS[0] <= y <= PUBLIC_YEARS[1] and 1 <= m <= 12):
        return None
    return month_period(date(y, m, 1))


def month_closed(period: Period, now: datetime) -> bool:
    """Whether the period has ended at ``now``: only a finished month is published (its figures are final)."""
    return period.end <= now


def last_closed_month(now: datetime) -> Period:
    """The latest month that has ended at ``now`` (the one before the current Vietnamese month)."""
    return month_period((month_of(now) - timedelta(days=1)).replace(day=1))


def month_before(period: Period) -> Period | None:
    """The month before a month, or None before ``PUBLIC_YEARS``."""
    previous = (period.first - timedelta(days=1)).replace(day=1)
    return month_period(previous) if previous.year >= PUBLIC_YEARS[0] else None


def month_after(period: Period) -> Period | None:
    """The month after a month, or None after ``PUBLIC_YEARS``."""
    following = period.last + timedelta(days=1)
    return month_period(following) if following.year <= PUBLIC_YEARS[1] else None


def percent_text(value: float | None) -> str:
    """A rate as Vietnamese print shows it: ``97,5%``, ``100%``; "chưa có hồ sơ" when nothing was counted."""
    if value is None:
        return "chưa có hồ sơ"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text.replace('.', ',')}%"


def public_late(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the accountability list as the public board shows it (``PUBLIC_LATE_FIELDS`` only)."""
    return {k: row[k] for k in PUBLIC_LATE_FIELDS}


# ---- the register, "Sổ theo dõi hồ sơ" (Form 07 of Circular 03/2025, 06 of Circular 01/2018) ---------------------------

REGISTER_COLUMNS: tuple[str, ...] = (
    "STT", "Mã hồ sơ", "Thủ tục hành chính", "Người nộp", "Ngày nhận", "Hẹn trả", "Ngày chuyển/xử lý xong", "Ngày trả",
    "Kết quả/trạng thái", "Ghi chú",
)  # fmt: skip
_CLOSE_STATUS = {"result": 9, "rejected": 3, "stopped": 8, "withdrawn": 7}


@dataclass(frozen=True)
class RegisterLine:
    """One dossier of the register, as printed (instants in Vietnam time, as ``dd/mm/yyyy HH:MM``)."""

    number: int
    code: str
    procedure: str
    applicant: str
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    status: str
    note: str

    def cells(self) -> list[Any]:
        """The line's values in ``REGISTER_COLUMNS`` order."""
        return [self.number, self.code, self.procedure, self.applicant, self.received_at, self.due_at, self.finished_at,
                self.returned_at, self.status, self.note]  # fmt: skip


def register_status(row: Mapping[str, Any], end: datetime) -> int:
    """The national status (TrangThaiHoSo) of a register row at the period's end."""
    if row.get("returned_at") is not None and row["returned_at"] < end:
        return 10
    if row.get("closed_at") is not None and row["closed_at"] < end:
        return _CLOSE_STATUS.get(row.get("close_kind") or "", 9)
    return 5 if row.get("paused") else 4


def register_lines(rows: Iterable[Mapping[str, Any]], period: Period, rules: Rules) -> list[RegisterLine]:
    """The register of a period: every dossier received or returned in it, numbered in order of reception; status
    names are the rules' (``Rules.statuses``), the notes say what a reader looks for (late, withdrawn, waiting)."""
    end = period.end
    lines = []
    for number, row in enumerate(rows, start=1):
        status = register_status(row, end)
        notes = []
        late = (row.get("late_at") is not None and row["late_at"] < end) or (
            row.get("closed_at") is not None and row["closed_at"] < end and row.get("close_timeliness") == "late"
        )
        if late:
            notes.append("Trễ hạn")
        if status == 7:
            notes.append("Công dân rút hồ sơ")
        if status == 5:
            notes.append("Chờ bổ sung hồ sơ")
        if row.get("late_step"):
            notes.append("Có bước liên thông trễ hạn")
        if row.get("receiving_unit") and row["receiving_unit"] != row.get("unit"):
            notes.append(f"Tiếp nhận tại {row['receiving_unit']}, xử lý tại {row.get('unit')}")
        if row.get("return_channel") == "postal" and status == 10:
            notes.append("Trả qua bưu chính")
        finished = row.get("result_at") or (row.get("closed_at") if row.get("close_kind") not in (None, "withdrawn") else None)
        lines.append(RegisterLine(
            number=number, code=row["code"], procedure=row.get("procedure_name") or row.get("procedure_code") or "",
            applicant=row.get("applicant_name") or "", received_at=row.get("received_at"),
            due_at=row.get("due_at_original") or row.get("due_at"),
            finished_at=finished if finished is not None and finished < end else None,
            returned_at=row["returned_at"] if row.get("returned_at") is not None and row["returned_at"] < end else None,
            status=rules.status_name(status), note="; ".join(notes),
        ))  # fmt: skip
    return lines
