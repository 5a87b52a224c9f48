"""Intake use cases: one async function per command, query or consumed event."""

from __future__ import annotations

from functools import partial

import asyncio
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from services.intake import domain, national, portal, printing, registers, store
from services.intake.caches import procedure_in_force, procedure_of
from services.intake.deps import IntakeDeps
from services.intake.models import (
    CalendarDayChange,
    CatalogImport,
    DeclareUnits,
    MergeUnit,
    NationalCatalogApply,
    NationalCatalogLook,
    NotAccepted,
    PortalDossier,
    PublishRules,
    PublishVersion,
    ReceiveDossier,
    ReceptionBase,
    RegisterImportReport,
    RegisterRowProblem,
    Supplement,
    Withdrawal,
)
from shared import lawstore
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import Conflict, NotFound, Problem
from shared.events import (
    WORKFLOW,
    CalendarDayDeclared,
    CalendarDayForgotten,
    CaseApproved,
    CaseAssigned,
    CaseClockResumed,
    CasePaymentAwaited,
    CaseRejected,
    CaseResultReady,
    CaseReturned,
    CaseStopped,
    CaseSupplementRequested,
    CaseTransferred,
    CaseTransferReturned,
    DossierImported,
    DossierReceived,
    DossierSupplemented,
    DossierWithdrawn,
    Event,
    LienThongStepPlan,
    RulesPublished,
    UnitMerged,
    UnitsDeclared,
)
from shared.roles import OFFICIALS
from shared.rules import NATIONAL, RuleBook, RuleError, Rules, RuleVersion, dump_version, shipped_versions
from shared.status import OPEN_STATUSES, STATUS_NAMES, NationalStatus
from shared.units import AdminUnit, UnitError, UnitRegistry
from shared.webhooks import check_signed_request

# ---- access -----------------------------------------------------------------


def _single_unit(user: Principal) -> str:
    """The one unit a clerk receives for."""
    units = sorted(u for u in user.units if u != "*")
    if len(units) != 1:
        raise Problem(422, "unit-ambiguous", "Receiving unit unclear", "A clerk's token must name exactly one unit to receive for.")
    return units[0]


def _require_province(user: Principal, province: str) -> None:
    if not ("*" in user.units or any(domain.province_of(u) == province for u in user.units)):
        raise Problem(403, "unit-forbidden", "Province outside your token", f"Your token covers no unit of province {province!r}.")


async def _visible(tx: UnitOfWork, code: str, user: Principal, *, lock: bool = False) -> store.Dossier:
    """The dossier, for an official of its receiving or its processing unit (row-locked when asked)."""
    if not user.roles & OFFICIALS:
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials read dossiers.")
    dossier = await store.get(session=tx.session, code=code, lock=lock)
    if dossier is None or not (user.can_see(dossier.receiving_unit) or user.can_see(dossier.unit)):
        raise NotFound("dossier", code)
    return dossier


def _checked_procedure(code: str, definition: dict[str, Any]) -> domain.Procedure:
    """A definition as the domain reads it; a 422 problem naming what is wrong otherwise."""
    try:
        procedure = domain.procedure_from_json({**definition, "code": code})
    except (KeyError, ValueError, TypeError) as exc:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", f"{type(exc).__name__}: {exc}") from None
    if procedure.committed_limit and procedure.committed_limit.unit != procedure.time_limit.unit:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", "committed_limit: same unit as time_limit")
    if procedure.committed_limit and procedure.committed_limit.amount > procedure.time_limit.amount:
        raise Problem(422, "invalid-procedure", "The procedure definition is not valid", "committed_limit: longer than the legal limit")
    for n, step in enumerate(procedure.lien_thong_steps):
        if not step.agency.strip() or not 1 <= step.amount <= 365:
            detail = f"lien_thong_steps.{n}: an agency and from 1 to 365 {step.unit.value.lower()}s"
            raise Problem(422, "invalid-procedure", "The procedure definition is not valid", detail)
    return procedure


# ---- catalog ---------------------------------------------------------------


async def list_procedures(
    tx: UnitOfWork, *, field: str | None, text: str | None, at: date | None
) -> list[store.ProcedureVersion]:
    """The version in force (today unless ``at``) of every procedure, optionally of one field or matching a text."""
    return await store.procedures_at(session=tx.session, day=at or domain.receipt_day(tx.now), field=field, text=text)


async def get_procedure(tx: UnitOfWork, code: str, *, at: date | None, version: int | None) -> store.ProcedureVersion:
    """One exact version, or the one in force (today unless ``at``)."""
    if version is not None:
        row = await store.procedure_version(session=tx.session, code=code, version=version)
    else:
        row = await store.procedure_at(session=tx.session, code=code, day=at or domain.receipt_day(tx.now))
    if row is None:
        raise NotFound("procedure", code)
    return row


async def list_versions(tx: UnitOfWork, code: str) -> list[store.ProcedureVersion]:
    """Every version of a procedure, oldest first."""
    rows = await store.versions(session=tx.session, code=code)
    if not rows:
        raise NotFound("procedure", code)
    return rows


async def publish_version(
    tx: UnitOfWork, code: str, cmd: PublishVersion, *, deps: IntakeDeps, user: Principal
) -> store.ProcedureVersion:
    """Publish the next version of a procedure (or its first)."""
    document = {**cmd.definition.model_dump(), "code": code}
    _checked_procedure(code, document)
    latest = await store.latest_version_number(session=tx.session, code=code)
    row = store.ProcedureVersion(
        code=code,
        version=latest + 1,
        effective_from=cmd.effective_from,
        name=cmd.definition.name,
        field=cmd.definition.field,
        document=document,
        published_at=tx.now,
        published_by=user.subject,
    )
    store.add(session=tx.session, row=row)
    tx.after_commit(deps.catalog.forget)
    return row


async def preview_appointment(
    tx: UnitOfWork, code: str, received_at: datetime, *, unit: str | None, verification: bool, deps: IntakeDeps
) -> tuple[store.ProcedureVersion, domain.Appointment]:
    """The version in force at that moment and the appointment a dossier received then would get."""
    row = await procedure_in_force(tx, code, domain.receipt_day(received_at))
    registry = await deps.law.registry(tx)
    province = province_of(registry, unit) if unit else ""
    rules = await _rules_in_force(tx, received_at, province, deps=deps)
    calendar = await deps.calendars.get(tx, province, rules.office)
    return row, domain.appointment(received_at, procedure_of(row), calendar, verification=verification)


async def export_catalog(tx: UnitOfWork) -> dict[str, Any]:
    """Every version of every procedure, in the format ``import_catalog`` reads."""
    rows = await store.versions(session=tx.session)
    return {
        "exported_at": tx.now.isoformat(),
        "procedures": [
            {"code": r.code, "version": r.version, "effective_from": r.effective_from.isoformat(),
             "definition": {k: v for k, v in r.document.items() if k != "code"}}
            for r in rows
        ],
    }  # fmt: skip


async def import_catalog(tx: UnitOfWork, cmd: CatalogImport, *, deps: IntakeDeps, user: Principal) -> dict[str, int]:
    """Load exported versions: new ones are added, identical ones skipped, a different body under a taken version refused."""
    added = skipped = 0
    for entry in cmd.procedures:
        try:
            code, version = str(entry["code"]), int(entry["version"])
            effective_from = date.fromisoformat(str(entry["effective_from"]))
            document = {**entry["definition"], "code": code}
        except (KeyError, TypeError, ValueError) as exc:
            raise Problem(422, "invalid-catalog", "The catalog file is not valid", f"entry {entry!r:.80}: {exc}") from None
        _checked_procedure(code, document)
        existing = await store.procedure_version(session=tx.session, code=code, version=version)
        if existing is not None:
            if existing.document != document or existing.effective_from != effective_from:
                raise Conflict(f"{code} version {version} exists with different content; publish a new version instead.")
            skipped += 1
            continue
        store.add(
            session=tx.session,
            row=store.ProcedureVersion(
                code=code,
                version=version,
                effective_from=effective_from,
                name=document["name"],
                field=document["field"],
                document=document,
                published_at=tx.now,
                published_by=f"import:{user.subject}",
            ),
        )
        added += 1
    tx.after_commit(deps.catalog.forget)
    return {"added": added, "skipped": skipped}


# ---- the national procedure list -------------------------------------------


async def look_at_national_catalog(
    tx: UnitOfWork, cmd: NationalCatalogLook, *, deps: IntakeDeps, user: Principal
) -> store.NationalImport:
    """Read the national list through the LGSP and keep what importing it would do (added, changed with the changed
    fields, unchanged, local-only, unusable); the catalog itself does not change until an admin applies it."""
    # the LGSP first: until its first statement the unit of work holds no connection (the calls may take minutes)
    found = await national.fetch(
        deps.lgsp, deps.national_mapping, madonvi=cmd.unit, codes=cmd.codes, concurrency=deps.settings.national_catalog_concurrency
    )
    latest = await store.latest_documents(session=tx.session)
    day = domain.receipt_day(tx.now)
    mapping = deps.national_mapping
    diff = domain.catalog_diff(
        {code: row.document for code, row in latest.items()}, found.records, listed=found.listed,
        evidence=f"DVCQG {mapping['list_service']}/{mapping['detail_service']} {day.isoformat()}",
    )  # fmt: skip
    diff["unusable"] += [{"code": code, "name": "", "notes": [], "reason": reason} for code, reason in found.failed]
    base = {e["code"]: latest[e["code"]].version if e["code"] in latest else 0 for e in (*diff["added"], *diff["changed"])}
    row = store.NationalImport(
        fetched_at=tx.now, fetched_by=user.subject, unit=cmd.unit, effective_from=cmd.effective_from or day, diff=diff,
        base_versions=base,
    )  # fmt: skip
    return await store.insert_import(session=tx.session, row=row)


async def get_national_import(tx: UnitOfWork, import_id: int) -> store.NationalImport:
    """A look at the national list, and what applying it published."""
    row = await store.national_import(session=tx.session, import_id=import_id)
    if row is None:
        raise NotFound("national catalog import", str(import_id))
    return row


async def apply_national_catalog(
    tx: UnitOfWork, import_id: int, cmd: NationalCatalogApply, *, deps: IntakeDeps, user: Principal
) -> store.NationalImport:
    """Publish what a look found: for each procedure added or changed (or each of ``cmd.codes``), the next version, in
    force from the look's day. Procedures only in the catalog, and the fields the national records lack, stay.

    A look is applied once; one whose procedure was published again since is refused (409: look again), so what is
    published is what the admin saw.
    """
    row = await store.national_import(session=tx.session, import_id=import_id, lock=True)
    if row is None:
        raise NotFound("national catalog import", str(import_id))
    if row.applied_at is not None:
        raise Conflict(f"National catalog import {import_id} was applied at {row.applied_at.isoformat()} by {row.applied_by}.")
    entries = {e["code"]: (kind, e) for kind in ("added", "changed") for e in row.diff[kind]}
    chosen = list(entries) if cmd.codes is None else list(dict.fromkeys(cmd.codes))
    unknown = [c for c in chosen if c not in entries]
    if unknown:
        raise Problem(422, "not-in-import", "Not added or changed by this import", f"codes: {', '.join(unknown[:20])}")
    published = []
    for code in chosen:
        kind, entry = entries[code]
        latest = await store.latest_version_number(session=tx.session, code=code)
        if latest != row.base_versions.get(code, 0):
            raise Conflict(
                f"{code} was published again since import {import_id} looked (version {latest}, not {row.base_versions.get(code, 0)}): "
                "look at the national list again.",
                code=code,
            )
        document = {**entry["document"], "code": code}
        _checked_procedure(code, document)
        store.add(
            session=tx.session,
            row=store.ProcedureVersion(
                code=code, version=latest + 1, effective_from=row.effective_from, name=document["name"], field=document["field"],
                document=document, published_at=tx.now, published_by=f"dvcqg:{user.subject}",
            ),
        )  # fmt: skip
        published.append({"code": code, "version": latest + 1, "change": kind})
    row.applied_at, row.applied_by, row.applied = tx.now, user.subject, published
    tx.session.add(row)
    tx.after_commit(deps.catalog.forget)
    return row


# ---- calendar --------------------------------------------------------------


async def get_calendar(tx: UnitOfWork, province: str, *, deps: IntakeDeps) -> WorkingCalendar:
    """The province's working calendar: the national one plus the days its admin declared (today's office hours)."""
    rules = await _rules_in_force(tx, tx.now, province, deps=deps)
    return await deps.calendars.get(tx, province, rules.office)


async def put_calendar_day(
    tx: UnitOfWork, province: str, day: date, cmd: CalendarDayChange, *, deps: IntakeDeps, user: Principal
) -> store.CalendarDay:
    """Declare a day working or off for the province; ``calendar.day_declared`` tells the other services."""
    _require_province(user, province)
    row = store.CalendarDay(
        province=province, day=day, working=cmd.working, note=cmd.note, changed_by=user.subject, changed_at=tx.now
    )
    await store.put_calendar_day(session=tx.session, day=row)
    # in the same transaction: the other services' calendars follow this one (workflow's resumed deadlines)
    await tx.emit(
        CalendarDayDeclared(
            province=province, day=day, occurred_at=tx.now, kind="working" if cmd.working else "off",
            reason=cmd.note, declared_by=user.subject,
        )
    )  # fmt: skip
    tx.after_commit(partial(deps.calendars.forget, province))
    return row


async def delete_calendar_day(tx: UnitOfWork, province: str, day: date, *, deps: IntakeDeps, user: Principal) -> None:
    """Forget a declared day; ``calendar.day_forgotten`` tells the other services."""
    _require_province(user, province)
    if not await store.delete_calendar_day(session=tx.session, province=province, day=day):
        raise NotFound("calendar day", f"{province}/{day}")
    await tx.emit(CalendarDayForgotten(province=province, day=day, occurred_at=tx.now, forgotten_by=user.subject))
    tx.after_commit(partial(deps.calendars.forget, province))


# ---- the law in force: rule sets and administrative units ------------------------------------------------------------


def province_of(registry: UnitRegistry, unit: str) -> str:
    """The province whose rules and calendar a unit follows: the registry's province above it, else the last group of
    its QCVN 102 code (``000.00.12.H56`` → ``H56``)."""
    return domain.province_of(registry.province_of(unit) or unit)


async def _rules_in_force(tx: UnitOfWork, at: date | datetime, province: str | None, *, deps: IntakeDeps) -> Rules:
    """The rules of a dossier received at ``at`` in ``province`` (from the cached book: no query while it is fresh)."""
    book = await deps.law.book(tx)
    try:
        return book.in_force(at, province)
    except LookupError as exc:
        raise Problem(422, "no-rules-in-force", "No rules are in force then", str(exc)) from None
    except OverflowError:  # an instant at the edge of the calendar, read in Vietnam
        raise Problem(422, "no-rules-in-force", "No rules are in force then", f"at: {at.isoformat()} is out of range") from None


async def rules_of_unit(tx: UnitOfWork, unit: str, at: date | datetime, *, deps: IntakeDeps) -> Rules:
    """The rules in force at ``at`` for a unit's province (what the public pages print)."""
    registry = await deps.law.registry(tx)
    return await _rules_in_force(tx, at, province_of(registry, unit), deps=deps)


async def rules_of_dossier(tx: UnitOfWork, dossier: store.Dossier, *, deps: IntakeDeps) -> Rules:
    """The rules a dossier recorded at reception; for a dossier from before refs were recorded, those in force then."""
    book = await deps.law.book(tx)
    registry = await deps.law.registry(tx)
    return book.rules_of(dossier.rules, dossier.received_at, province_of(registry, dossier.unit))


def _require_scope(user: Principal, scope: str) -> None:
    """National rules: an admin of every unit; a province's override or units: an admin of that province."""
    if scope == NATIONAL:
        if "*" not in user.units:
            raise Problem(403, "unit-forbidden", "National rules need a national admin", "Only a token for every unit ('*') publishes national rules.")
    else:
        _require_province(user, scope)


def _rule_problem(exc: RuleError) -> Problem:
    if exc.conflict:
        return Problem(409, "rules-overlap", "The effective dates overlap", exc.problems[0], problems=exc.problems)
    return Problem(422, "invalid-rules", "The rule set cannot be published", "; ".join(exc.problems), problems=exc.problems)


async def publish_rules(tx: UnitOfWork, cmd: PublishRules, *, deps: IntakeDeps, user: Principal) -> tuple[RuleVersion, RuleBook]:
    """Check and number a rule set version, keep it and tell the other services (``rules.published``).

    Refused with every reason, nothing kept: an unknown regime, a date in the past, a date on or before a version of the
    same scope (409), a national version lacking a section, rules that do not validate."""
    _require_scope(user, cmd.scope)
    await store.lock_law(session=tx.session)
    book = await lawstore.load_book(tx.session)  # not the cache: the number follows what is stored now
    try:
        candidate = RuleVersion(**cmd.model_dump(exclude_unset=False), version=book.next_version(cmd.scope))
        book, published = book.publish(candidate, today=tx.now.astimezone(VN_TZ).date(), at=tx.now, by=user.subject)
    except RuleError as exc:
        raise _rule_problem(exc) from None
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise Problem(422, "invalid-rules", "The rule set cannot be published", "; ".join(problems), problems=problems) from None
    await lawstore.save_version(tx.session, published)
    await tx.emit(
        RulesPublished(
            scope=published.scope, version=published.version, effective_from=published.effective_from,
            document=dump_version(published), occurred_at=tx.now,
        )
    )  # fmt: skip
    deps.law.invalidate(tx)
    return published, book


def is_shipped(v: RuleVersion) -> bool:
    """Whether a version is one this release ships rather than one published here."""
    return v.published_at is None and v in shipped_versions()


async def rule_book(tx: UnitOfWork, *, deps: IntakeDeps) -> RuleBook:
    """The book: every version, shipped and published, and which is in force when."""
    return await deps.law.book(tx)


async def rules_in_force(tx: UnitOfWork, at: date | datetime | None, province: str | None, *, deps: IntakeDeps) -> Rules:
    """The complete rules of a dossier received at ``at`` (now when not given; an instant without offset is Vietnam
    time) in ``province``."""
    if isinstance(at, datetime) and at.tzinfo is None:
        at = at.replace(tzinfo=VN_TZ)
    return await _rules_in_force(tx, at or tx.now, province, deps=deps)


async def rules_by_ref(tx: UnitOfWork, ref: str, *, deps: IntakeDeps) -> Rules:
    """The complete rules a dossier recorded (``VN.2`` or ``VN.2+H56.1``)."""
    book = await deps.law.book(tx)
    try:
        return book.by_ref(ref)
    except LookupError:
        raise NotFound("rule set", ref) from None


def _unit_province(registry: UnitRegistry, code: str) -> str:
    """The province a registry change is about (the subject of its fact)."""
    return registry.province_of(code) or domain.province_of(code)


async def declare_units(tx: UnitOfWork, cmd: DeclareUnits, *, deps: IntakeDeps, user: Principal) -> list[AdminUnit]:
    """Enter or correct units; ``units.declared`` (one per province) tells the other services."""
    await store.lock_law(session=tx.session)
    registry = await lawstore.load_registry(tx.session)
    units = list({u.code: u for u in cmd.units}.values())
    for u in units:  # the caller's province first: a refused caller learns nothing about the registry
        _require_scope(user, _unit_province(registry, u.code))
    try:
        registry = registry.declare(units)
    except UnitError as exc:
        raise Problem(422, "unknown-unit" if exc.unknown else "invalid-unit", "The units cannot be entered", f"{exc.field}: {exc}",
                      field=exc.field) from None  # fmt: skip
    by_province: dict[str, list[AdminUnit]] = {}
    for u in units:
        by_province.setdefault(_unit_province(registry, u.code), []).append(u)
    for province in by_province:
        _require_scope(user, province)
    await lawstore.save_units(tx.session, units)
    for province, declared in by_province.items():
        await tx.emit(UnitsDeclared(province=province, units=[u.model_dump(mode="json") for u in declared], occurred_at=tx.now))
    deps.law.invalidate(tx)
    return units


async def list_units(tx: UnitOfWork, *, province: str | None, deps: IntakeDeps) -> list[AdminUnit]:
    """The registry's units (of one province, when asked)."""
    registry = await deps.law.registry(tx)
    units = registry.units
    if province is not None:
        units = [u for u in units if _unit_province(registry, u.code) == province or u.code == province]
    return units


async def merge_unit(tx: UnitOfWork, code: str, cmd: MergeUnit, *, deps: IntakeDeps, user: Principal) -> AdminUnit:
    """Merge a unit into another from a day; ``units.merged`` hands its open dossiers over in the workflow."""
    await store.lock_law(session=tx.session)
    registry = await lawstore.load_registry(tx.session)
    if registry.get(code) is None:
        raise NotFound("unit", code)
    province = _unit_province(registry, code)
    _require_scope(user, province)
    try:
        registry, merged = registry.merge(code, cmd.into, cmd.effective)
    except OverflowError:
        raise Problem(422, "invalid-merge", "The unit cannot be merged", f"effective: {cmd.effective.isoformat()} is out of range") from None
    except UnitError as exc:
        slug = "unknown-unit" if exc.unknown else "invalid-merge"
        raise Problem(422, slug, "The unit cannot be merged", f"{exc.field}: {exc}", field=exc.field) from None
    today = domain.receipt_day(tx.now)
    if cmd.effective > today:
        raise Problem(
            422, "invalid-merge", "The unit cannot be merged",
            f"effective: {cmd.effective.isoformat()} is after today ({today.isoformat()}); a merge is recorded on or after the "
            "day it takes effect, because its open dossiers move to the successor when it is recorded",
            field="effective",
        )  # fmt: skip
    await lawstore.save_units(tx.session, [merged])
    await tx.emit(
        UnitMerged(province=province, code=code, into=cmd.into, effective=cmd.effective, unit=merged.model_dump(mode="json"), occurred_at=tx.now)
    )
    deps.law.invalidate(tx)
    return merged


async def _reception_law(
    tx: UnitOfWork, unit: str, received_at: datetime, *, deps: IntakeDeps, field: str
) -> tuple[str, Rules, WorkingCalendar]:
    """For a dossier of ``unit`` received at ``received_at``: the unit that processes it (its successor after a merge),
    the rules in force in its province and the calendar with their office hours. All from the caches."""
    registry = await deps.law.registry(tx)
    try:
        unit = registry.receiving(unit, domain.receipt_day(received_at))
    except UnitError as exc:
        raise Problem(422, "unit-not-in-force", "The unit does not exist that day", f"{field}: {exc}", unit=unit) from None
    province = province_of(registry, unit)
    rules = await _rules_in_force(tx, received_at, province, deps=deps)
    return unit, rules, await deps.calendars.get(tx, province, rules.office)


def _step_plan(procedure: domain.Procedure) -> list[LienThongStepPlan] | None:
    """The procedure's inter-agency steps as the event carries them; None when it has none."""
    if not procedure.lien_thong_steps:
        return None
    return [LienThongStepPlan(agency=s.agency, amount=s.amount, unit=s.unit.value) for s in procedure.lien_thong_steps]


# ---- reception -------------------------------------------------------------


async def _accept(
    tx: UnitOfWork,
    cmd: ReceptionBase,
    *,
    deps: IntakeDeps,
    receiving_unit: str,
    processing_unit: str,
    channel: str,
    rules: Rules,
    calendar: WorkingCalendar,
    received_by: str,
    received_at: datetime,
    counted_from: datetime,
    **extra: Any,
) -> store.Dossier:
    """Give an accepted dossier its code, appointment and fee under the rules in force, store it and emit
    ``dossier.received`` (with the rules' ref and the procedure's inter-agency step plan)."""
    day = domain.receipt_day(received_at)
    row, procedure = await deps.catalog.procedure(tx, cmd.procedure_code, day)
    if channel == "online" and procedure.online_level is domain.OnlineLevel.IN_PERSON:
        raise Problem(422, "not-online", "Not an online procedure", f"procedure_code: {procedure.code} is done in person only.")
    when = domain.appointment(counted_from, procedure, calendar, verification=cmd.verification_needed)
    fee = domain.assess_fee(procedure, online=channel == "online", pages=cmd.pages, copies=cmd.copies, exemption=cmd.exemption)
    sequence = await store.next_sequence(session=tx.session, unit=receiving_unit, day=day)
    applicant = cmd.applicant
    assert applicant is not None  # the model validator fills it
    components = [
        {**c.model_dump(), "reused": c.document_id is not None} for c in cmd.components
    ]
    values: dict[str, Any] = dict(
        code=domain.dossier_code(receiving_unit, received_at, sequence, rules.dossier_code),
        unit=processing_unit,
        receiving_unit=receiving_unit,
        procedure_code=procedure.code,
        procedure_version=procedure.version,
        procedure_name=procedure.name,
        channel=channel,
        applicant_kind=applicant.kind,
        applicant_name=applicant.name.strip(),
        applicant_id_number=applicant.id_number,
        applicant_tax_code=applicant.tax_code,
        applicant_address=applicant.address,
        applicant_phone=applicant.phone,
        applicant_email=str(applicant.email) if applicant.email else None,
        components=components,
        sets=cmd.sets,
        return_channel=cmd.return_channel,
        received_at=received_at,
        appointment_at=when.appointment_at,
        legal_due_at=when.legal_due_at,
        fee={
            "items": [i.__dict__ for i in fee.items],
            "total": fee.total,
            "pending_lines": list(fee.pending),
            "currency": "VND",
        },
        status=NationalStatus.ACCEPTED,
        received_by=received_by,
        identification=cmd.identification,
        population_data_reused=cmd.population_data_reused,
        rules=rules.ref,
        **extra,
    )
    dossier = await store.insert_dossier(session=tx.session, values=values)
    await tx.emit(
        DossierReceived(
            dossier_code=dossier.code,
            unit=processing_unit,
            occurred_at=received_at,
            procedure_code=procedure.code,
            procedure_name=procedure.name,
            procedure_version=procedure.version,
            procedure_field=procedure.field,
            procedure_field_code=row.document.get("field_code"),
            applicant_name=dossier.applicant_name,
            channel=channel,  # type: ignore[arg-type]
            received_at=received_at,
            appointment_at=when.appointment_at,
            due_at_original=when.appointment_at,
            legal_due_at=when.legal_due_at,
            received_by=received_by,
            receiving_unit=receiving_unit,
            on_the_spot=procedure.on_the_spot,
            fee_due=fee.total,
            fee_pending=bool(fee.pending),
            reused_components=sum(1 for c in components if c["reused"]),
            return_channel=cmd.return_channel,
            fee_lines=list(row.document.get("fee_lines") or []),
            pages=cmd.pages,
            copies=cmd.copies,
            fee_exemption=cmd.exemption,
            applicant_email=dossier.applicant_email,
            applicant_phone=dossier.applicant_phone,
            notify_by=cmd.notify_by,
            identification=cmd.identification,
            population_data_reused=cmd.population_data_reused,
            submitted_at=dossier.submitted_at,
            rules=rules.ref,
            lien_thong_steps=_step_plan(procedure),
        )
    )
    if dossier.portal_dossier_id:
        portal.queue_push(tx, dossier, status=NationalStatus.ACCEPTED)
    return dossier


def _check_identification(cmd: ReceptionBase, party: str, deps: IntakeDeps) -> None:
    """A 422 problem when the party may not assert the applicant's identification (a clerk cannot vouch for VNeID)."""
    refusal = domain.identification_refusal(party, cmd.identification, deps.settings.identification_asserted_by)
    if refusal is not None:
        raise Problem(422, "identification-not-assertable", "This identification cannot be asserted here", refusal,
                      identification=cmd.identification, asserted_by=party)  # fmt: skip


async def receive_dossier(
    tx: UnitOfWork, cmd: ReceiveDossier, *, idempotency_key: str | None, deps: IntakeDeps, user: Principal
) -> tuple[store.Dossier, bool]:
    """Accept a dossier at the counter or from the post for the clerk's unit; (dossier, created)."""
    _check_identification(cmd, "clerk", deps)
    unit = _single_unit(user)
    user.require_unit(unit)
    if idempotency_key:
        earlier = await store.by_idempotency_key(session=tx.session, unit=unit, key=idempotency_key)
        if earlier is not None:
            return earlier, False
    now = tx.now
    field = "processing_unit" if cmd.processing_unit else "unit"
    processing_unit, rules, calendar = await _reception_law(tx, cmd.processing_unit or unit, now, deps=deps, field=field)
    dossier = await _accept(
        tx,
        cmd,
        deps=deps,
        receiving_unit=unit,
        processing_unit=processing_unit,
        channel=cmd.channel,
        rules=rules,
        calendar=calendar,
        received_by=user.subject,
        received_at=now,
        counted_from=now,
        postal_tracking_number=cmd.postal_tracking_number,
        idempotency_key=idempotency_key,
    )
    return dossier, True


def _portal_submission(body: bytes) -> PortalDossier:
    """The portal's JSON as a command; a 422 problem naming the fields otherwise."""
    try:
        return PortalDossier.model_validate_json(body)
    except ValidationError as exc:
        errors = [{"location": [str(p) for p in e["loc"]], "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['location'])}: {e['message']}" for e in errors[:5])
        raise Problem(422, "validation-error", "The request is not valid", detail, errors=errors) from None


async def receive_portal_dossier(
    tx: UnitOfWork, body: bytes, *, timestamp: str | None, signature: str | None, deps: IntakeDeps
) -> tuple[store.Dossier, bool]:
    """Accept an online dossier from the portal's signed webhook; the same portal id twice gives the first dossier."""
    settings = deps.settings
    await check_signed_request(
        tx.session, secret=settings.portal_webhook_secret, timestamp=timestamp, given=signature, body=body,
        now=tx.now, max_age_seconds=settings.portal_webhook_max_age_seconds, who="Portal",
    )  # fmt: skip
    cmd = _portal_submission(body)
    _check_identification(cmd, "portal", deps)
    earlier = await store.by_portal_id(session=tx.session, portal_dossier_id=cmd.portal_dossier_id)
    if earlier is not None:
        return earlier, False
    now = tx.now
    field = "processing_unit" if cmd.processing_unit else "unit"
    processing_unit, rules, calendar = await _reception_law(tx, cmd.processing_unit or cmd.unit, now, deps=deps, field=field)
    dossier = await _accept(
        tx,
        cmd,
        deps=deps,
        receiving_unit=cmd.unit,
        processing_unit=processing_unit,
        channel="online",
        rules=rules,
        calendar=calendar,
        received_by="portal",
        received_at=now,
        counted_from=calendar.open_instant(min(cmd.submitted_at, now)),
        portal_dossier_id=cmd.portal_dossier_id,
        submitted_at=cmd.submitted_at,
    )
    return dossier, True


async def record_not_accepted(tx: UnitOfWork, cmd: NotAccepted, *, deps: IntakeDeps, user: Principal) -> store.IntakeRecord:
    """Keep a record of guidance (out of scope), Form 02 (incomplete) or Form 03 (refused); no code, no clock. The record
    keeps the ref of the rules in force, whose Form 02 or 03 it prints."""
    unit = _single_unit(user)
    user.require_unit(unit)
    now = tx.now
    rules = await rules_of_unit(tx, unit, now, deps=deps)
    name = None
    if cmd.procedure_code:
        name = (await procedure_in_force(tx, cmd.procedure_code, domain.receipt_day(now))).name
    sequence = await store.next_record_sequence(session=tx.session, unit=unit, day=domain.receipt_day(now))
    prefix = {"out_of_scope": "HD", "incomplete": "BS", "refused": "TC"}[cmd.outcome]
    row = store.IntakeRecord(
        reference=f"{unit}-{domain.receipt_day(now):%y%m%d}-{prefix}{sequence:03d}",
        outcome=cmd.outcome,
        unit=unit,
        procedure_code=cmd.procedure_code,
        procedure_name=name,
        channel=cmd.channel,
        applicant_name=cmd.applicant_name.strip(),
        details={"guidance": cmd.guidance, "missing": cmd.missing, "reason": cmd.reason, "rules": rules.ref},
        created_at=now,
        created_by=user.subject,
    )
    store.add(session=tx.session, row=row)
    return row


async def get_record(tx: UnitOfWork, reference: str, *, user: Principal) -> store.IntakeRecord:
    """A not-accepted record of a unit the official sees."""
    row = await store.record(session=tx.session, reference=reference)
    if row is None or not user.can_see(row.unit):
        raise NotFound("intake record", reference)
    return row


# ---- after reception -------------------------------------------------------


async def get_dossier(tx: UnitOfWork, code: str, *, user: Principal) -> store.Dossier:
    """A received dossier, for the officials of its receiving or processing unit."""
    return await _visible(tx, code, user)


async def public_status(tx: UnitOfWork, code: str) -> store.Dossier:
    """A dossier by its code, for the citizen's status lookup (the route shows no personal data)."""
    dossier = await store.get(session=tx.session, code=code)
    if dossier is None:
        raise NotFound("dossier", code)
    return dossier


async def public_record(tx: UnitOfWork, reference: str) -> store.IntakeRecord:
    """A not-accepted record by its reference, for the page its Form 02 or 03 links to (the page shows no personal data)."""
    row = await store.record(session=tx.session, reference=reference)
    if row is None:
        raise NotFound("intake record", reference)
    return row


def _set_status(tx: UnitOfWork, dossier: store.Dossier, status: NationalStatus) -> None:
    """Move the citizen-facing status and owe the portal a push for online dossiers."""
    if dossier.status == status:
        return
    dossier.status = status
    tx.session.add(dossier)
    if dossier.portal_dossier_id:
        portal.queue_push(tx, dossier, status=status)


async def supplement(tx: UnitOfWork, code: str, cmd: Supplement, *, user: Principal) -> store.Dossier:
    """The requested additions arrived: ``dossier.supplemented`` resumes the clock."""
    dossier = await _visible(tx, code, user, lock=True)
    if dossier.status != NationalStatus.SUPPLEMENT_REQUESTED:
        raise Conflict(
            f"Dossier {code} has no open supplement request (status {dossier.status}: {STATUS_NAMES[dossier.status]}).",
            dossier_status=dossier.status,
        )
    now = tx.now
    dossier.components = [*dossier.components, *({**i.model_dump(), "reused": i.document_id is not None, "supplement": True} for i in cmd.items)]
    _set_status(tx, dossier, NationalStatus.PROCESSING)
    await tx.emit(DossierSupplemented(dossier_code=code, unit=dossier.unit, occurred_at=now, supplemented_at=now))
    return dossier


async def withdraw(tx: UnitOfWork, code: str, cmd: Withdrawal, *, user: Principal) -> store.Dossier:
    """The applicant withdrew the dossier (national status 7)."""
    dossier = await _visible(tx, code, user, lock=True)
    if dossier.status not in OPEN_STATUSES:
        raise Conflict(f"Dossier {code} is closed (status {dossier.status}: {STATUS_NAMES[dossier.status]}).", dossier_status=dossier.status)
    _set_status(tx, dossier, NationalStatus.WITHDRAWN)
    await tx.emit(DossierWithdrawn(dossier_code=code, unit=dossier.unit, occurred_at=tx.now, reason=cmd.reason))
    return dossier


async def portal_pushes(tx: UnitOfWork, code: str, *, user: Principal) -> list[store.PortalPush]:
    """Every status push owed to the portal for a dossier the official sees, in order."""
    await _visible(tx, code, user)
    return await store.pushes(session=tx.session, dossier_code=code)


# ---- printed forms ---------------------------------------------------------


async def receipt_pdf(tx: UnitOfWork, code: str, *, deps: IntakeDeps, user: Principal) -> bytes:
    """Form 01 of a dossier the official sees (drawn in a thread)."""
    dossier = await _visible(tx, code, user)
    rules = await rules_of_dossier(tx, dossier, deps=deps)
    return await asyncio.to_thread(printing.receipt, dossier, deps.settings, rules)


async def record_pdf(tx: UnitOfWork, reference: str, *, deps: IntakeDeps, user: Principal) -> tuple[bytes, str]:
    """Form 02 (incomplete) or 03 (refused) of a record the official sees, and its form number."""
    row = await get_record(tx, reference, user=user)
    book = await deps.law.book(tx)
    registry = await deps.law.registry(tx)
    rules = book.rules_of(row.details.get("rules"), row.created_at, province_of(registry, row.unit))
    pdf = await asyncio.to_thread(printing.not_accepted, row, deps.settings, rules)
    if pdf is None:
        raise NotFound("form of intake record", reference)
    spec = rules.form(printing.NOT_ACCEPTED_FORM_KEYS[row.outcome])
    return pdf, spec.number if spec else domain.NOT_ACCEPTED_FORMS[row.outcome]


# ---- paper registers brought in (issue #22) -------------------------------------------------------------------------

_IMPORTED_STATUS = {
    "open": NationalStatus.ACCEPTED, "done": NationalStatus.RESOLVED, "returned": NationalStatus.RETURNED,
    "rejected": NationalStatus.NOT_ACCEPTED, "stopped": NationalStatus.STOPPED, "withdrawn": NationalStatus.WITHDRAWN,
}  # fmt: skip


def register_unit(user: Principal, unit: str | None) -> str:
    """The unit whose register is imported: the one asked for (within the token), else the token's one unit."""
    if unit is None:
        return _single_unit(user)
    user.require_unit(unit)
    return unit


async def _register_law(tx: UnitOfWork, unit: str, *, deps: IntakeDeps) -> registers.Law:
    """The rules and the calendar of a dossier of the unit received at any instant (loaded once for the whole file)."""
    book = await deps.law.book(tx)
    province = province_of(await deps.law.registry(tx), unit)
    declared = [(d.day, d.working, d.note) for d in await store.calendar_days(session=tx.session, province=province)]
    calendars: dict[tuple[Any, ...], WorkingCalendar] = {}
    by_day: dict[date, tuple[Rules, WorkingCalendar]] = {}  # rule versions change between days, never within one

    def law(received_at: datetime) -> tuple[Rules, WorkingCalendar]:
        try:
            day = received_at.astimezone(VN_TZ).date()
        except OverflowError:
            raise LookupError(f"{received_at.isoformat()} is out of range") from None
        if day in by_day:
            return by_day[day]
        rules = book.in_force(day, province)
        office = rules.office
        key = (office.opens, office.closes, office.cutoff)
        if key not in calendars:
            national = WorkingCalendar(start_of_day=office.opens, end_of_day=office.closes, cutoff=office.cutoff)
            calendars[key] = national.with_declared_days(declared)
        by_day[day] = rules, calendars[key]
        return by_day[day]

    return law


def _imported_event(row: registers.RegisterRow, unit: str, import_id: int) -> DossierImported:
    p = row.procedure
    return DossierImported(
        dossier_code=row.code, unit=unit, occurred_at=row.received_at, import_id=import_id, line=row.line,
        procedure_code=p.code, procedure_name=p.name, procedure_version=p.version, procedure_field=p.field or None,
        procedure_field_code=p.field_code, applicant_name=row.applicant, receiving_unit=unit, received_at=row.received_at,
        appointment_at=row.appointment_at, due_at=row.due_at, paused_working_days=row.paused_days,
        outcome=row.outcome,  # type: ignore[arg-type]
        finished_at=row.finished_at, returned_at=row.returned_at,
        timeliness=row.timeliness,  # type: ignore[arg-type]
        officer=row.officer, notes=row.notes, rules=row.rules,
    )  # fmt: skip


def _imported_columns(row: registers.RegisterRow, unit: str, import_id: int, by: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dossier's row and what its register line said beyond it."""
    p = row.procedure
    dossier = _DOSSIER_DEFAULTS | {
        "code": row.code, "unit": unit, "receiving_unit": unit, "procedure_code": p.code, "procedure_version": p.version,
        "procedure_name": p.name, "channel": "imported", "applicant_name": row.applicant, "received_at": row.received_at,
        "appointment_at": row.appointment_at, "legal_due_at": row.due_at, "status": int(_IMPORTED_STATUS[row.outcome]),
        "received_by": row.officer or f"import:{by}", "rules": row.rules,
    }  # fmt: skip
    imported = {
        "code": row.code, "import_id": import_id, "line": row.line, "digest": row.digest, "outcome": row.outcome,
        "due_at": row.due_at, "paused_days": row.paused_days, "finished_at": row.finished_at, "returned_at": row.returned_at,
        "officer": row.officer, "notes": row.notes,
    }  # fmt: skip
    return dossier, imported


# every column of a dossier row, for the set-based insert (each row of one statement names the same columns)
_DOSSIER_DEFAULTS: dict[str, Any] = {
    "applicant_kind": "citizen", "applicant_id_number": None, "applicant_tax_code": None, "applicant_address": None,
    "applicant_phone": None, "applicant_email": None, "components": [], "sets": 1, "return_channel": "counter",
    "postal_tracking_number": None, "portal_dossier_id": None, "submitted_at": None,
    "fee": {"items": [], "total": 0, "pending_lines": [], "currency": "VND"}, "idempotency_key": None,
    "identification": "none", "population_data_reused": False,
}  # fmt: skip


async def import_register(
    tx: UnitOfWork, upload: registers.Upload, *, unit: str, dry_run: bool, deps: IntakeDeps, user: Principal
) -> RegisterImportReport:
    """Check every line of a unit's paper register and, unless a dry run, bring in the dossiers new to the system: all
    or nothing. Each added dossier is stored with channel ``imported`` and announced by ``dossier.imported`` (its
    historical facts), which workflow and reporting project. A line whose code was imported with the same content is
    skipped; with other content, or a code received here, it is a bad line. A file with a bad line is refused whole
    (422, ``errors``); a dry run reports them (200)."""
    if not dry_run:
        await store.lock_register(session=tx.session, unit=unit)
    versions = await store.versions(session=tx.session)
    catalog = registers.Catalog(
        registers.ProcedureInForce(code=v.code, version=v.version, effective_from=v.effective_from, name=v.name, field=v.field,
                                   field_code=v.document.get("field_code"))
        for v in versions
    )  # fmt: skip
    law = await _register_law(tx, unit, deps=deps)
    now = tx.now
    try:
        checked = await asyncio.to_thread(
            lambda: registers.check(registers.read(upload.path), unit=unit, catalog=catalog, law=law, now=now)
        )
    except registers.FileProblem as exc:
        raise Problem(422, exc.slug, exc.title, exc.detail, **exc.extensions) from None
    existing = await store.existing_codes(session=tx.session, codes=[r.code for r in checked.rows])
    new, skipped = registers.against_system(checked, existing)
    counts = {k: 0 for k in _IMPORTED_STATUS}
    for row in new:
        counts[row.outcome] += 1
    errors = [RegisterRowProblem(line=e.line, code=e.code, column=e.column, reason=e.reason) for e in checked.errors]
    report = RegisterImportReport(
        dry_run=dry_run, unit=unit, filename=upload.filename, sha256=upload.sha256, lines=checked.lines,
        valid=checked.lines - len(errors), added=len(new), skipped=skipped, counts=counts, errors=errors,
    )  # fmt: skip
    if dry_run:
        return report
    if errors:
        shown = "; ".join(f"line {e.line}: {e.reason}" for e in errors[:3])
        raise Problem(
            422, "register-rows-invalid", "The register has bad lines",
            f"{len(errors)} of {checked.lines} lines cannot be imported, so nothing was: {shown}{' …' if len(errors) > 3 else ''}",
            errors=[e.model_dump() for e in errors], lines=checked.lines,
        )  # fmt: skip
    if not new:
        return report  # the same file again: nothing changes
    kept = await store.insert_register_import(
        session=tx.session,
        row=store.RegisterImport(
            unit=unit, filename=upload.filename, sha256=upload.sha256, lines=checked.lines, added=len(new), skipped=skipped,
            counts=counts, imported_at=now, imported_by=user.subject,
        ),
    )  # fmt: skip
    assert kept.id is not None
    columns = [_imported_columns(row, unit, kept.id, user.subject) for row in new]
    await store.insert_imported(session=tx.session, dossiers=[c[0] for c in columns], imported=[c[1] for c in columns])
    last_by_day: dict[date, int] = {}
    for row in new:
        day = domain.receipt_day(row.received_at)
        last_by_day[day] = max(last_by_day.get(day, 0), row.sequence)
    await store.raise_sequences(session=tx.session, unit=unit, last_by_day=last_by_day)
    await tx.emit_many([_imported_event(row, unit, kept.id) for row in new])
    return report.model_copy(update={"import_id": kept.id})


# ---- consumed events -------------------------------------------------------


async def follow_case(tx: UnitOfWork, event: Event, envelope: Envelope) -> None:
    """A workflow event changes the status the citizen and the portal see."""
    status = domain.STATUS_BY_EVENT.get(envelope.type)
    dossier = await store.get(session=tx.session, code=event.dossier_code, lock=True)
    if status is None or dossier is None:
        return
    _set_status(tx, dossier, status)


def subscriptions(deps: IntakeDeps) -> Subscription:
    """What intake listens to: the workflow's case events move the status the citizen and the portal see."""
    return Subscription(
        producers=(WORKFLOW,),
        handlers={
            model: follow_case
            for model in (
                CaseAssigned,
                CaseClockResumed,
                CasePaymentAwaited,
                CaseStopped,
                CaseSupplementRequested,
                CaseTransferred,
                CaseTransferReturned,
                CaseApproved,
                CaseRejected,
                CaseResultReady,
                CaseReturned,
            )
        },
    )
