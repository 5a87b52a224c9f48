"""Reporting use cases: every dossier event appends to its dossier's hash chain and moves the projections; the reports,
the 766 index, the accountability list and the timeline read them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import partial
from typing import Any

from services.reporting import domain, dvcqg, projections, store
from services.reporting.deps import ReportingDeps
from shared.auth import Principal
from shared.calendar import WorkingCalendar
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import NotFound, Problem
from shared.events import PRODUCERS, Event, RulesPublished, UnitMerged, UnitsDeclared, dossier_events, event_class
from shared.lawstore import apply_rules_published, apply_unit_merged, apply_units_declared
from shared.roles import OFFICIALS
from shared.rules import Rules
from shared.telemetry import current_trace_id

# ---- events ---------------------------------------------------------------------------------------------------------


async def on_dossier_event(tx: UnitOfWork, event: Event, envelope: Envelope, *, deps: ReportingDeps) -> None:
    """Append the event to its dossier's stream, then project it (the settings' procedure fields name a missing field)."""
    head = await store.lock_head(session=tx.session, dossier_code=envelope.subject, genesis=domain.GENESIS)
    link = domain.ChainLink(
        sequence=head.sequence + 1,
        event_id=envelope.id,
        type=envelope.type,
        source=envelope.source,
        time=domain.canonical_time(envelope.time),
        data=envelope.data,
        prev_hash=head.hash,
    )
    await store.append(
        session=tx.session,
        record=store.EventRecord(
            dossier_code=envelope.subject,
            sequence=link.sequence,
            event_id=link.event_id,
            type=link.type,
            source=link.source,
            unit=event.unit,
            time=envelope.time,
            recorded_at=tx.now,
            actor=envelope.actor,
            trace_id=current_trace_id(),
            data=link.data,
            prev_hash=link.prev_hash,
            hash=domain.link_hash(link),
        ),
    )
    deps.horizons.use(await deps.law.book(tx))  # near due by the national office hours in force
    await projections.project(
        tx.session,
        event,
        actor=envelope.actor,
        fields=deps.settings.procedure_fields,
        horizons=deps.horizons,
        now=tx.now,
        rollup=projections.rollup_of(tx),
    )
    if deps.settings.dvcqg_enabled:
        await _owe_syncs(tx, event, envelope, deps=deps)


async def _owe_syncs(tx: UnitOfWork, event: Event, envelope: Envelope, *, deps: ReportingDeps) -> None:
    """Queue the DVCQG syncs the event owes (a status push, a processing step) in the event's own transaction: the
    outbox of the national sync, never a dual write. Sent later, in order per dossier, by ``syncs.DvcqgSender``."""
    mapping = deps.sync_mapping
    if envelope.type not in mapping["status_events"] and envelope.type not in mapping["progress_events"]:
        return
    before = await store.sync_status_before(session=tx.session, dossier_code=event.dossier_code, at=event.occurred_at)
    owed = dvcqg.owed(envelope.type, envelope.data, event.occurred_at, status_before=before, mapping=mapping)
    now = tx.now
    where = {"unit": event.unit, "province": domain.province_of(event.unit), "scope_key": domain.scope_key(event.unit)}
    await store.queue_syncs(session=tx.session, rows=[
        {"dossier_code": event.dossier_code, **where, "kind": o.kind, "status": o.status, "step": o.step,
         "event_id": envelope.id, "changed_at": o.changed_at, "idempotency_key": o.key(event.dossier_code),
         "next_attempt_at": now, "created_at": now}
        for o in owed
    ])  # fmt: skip


async def rebuild(tx: UnitOfWork, *, deps: ReportingDeps) -> int:
    """Empty the projections and replay reporting's own event log in the order it was applied; the events replayed.

    The roll-up is counted once at the end, a month per statement, by the same SQL the handlers count it with.
    One transaction: the consumer's appends and the reports (TRUNCATE locks the projections) wait for it.
    """
    replayed = 0
    deps.horizons.use(await deps.law.book(tx))
    await store.lock_log(session=tx.session)
    await store.truncate_projections(session=tx.session)
    async for record in store.log_in_order(session=tx.session):
        model = event_class(record.type)
        if model is None:
            raise ValueError(f"event_log row {record.id} has an unknown type {record.type!r}")
        await projections.project(
            tx.session, model.model_validate(record.data), actor=record.actor, fields=deps.settings.procedure_fields, horizons=None
        )
        replayed += 1
    await projections.count_rollup(tx.session, deps.horizons, through=domain.month_of(tx.now))
    return replayed


# ---- reports (read-only use cases) ----------------------------------------------------------------------------------


async def on_rules_published(tx: UnitOfWork, event: RulesPublished, envelope: Envelope, *, deps: ReportingDeps) -> None:
    """Keep a published rule set version: a province's 766 points and office hours count from its date."""
    await apply_rules_published(tx, event, deps.law)


async def on_units_declared(tx: UnitOfWork, event: UnitsDeclared, envelope: Envelope, *, deps: ReportingDeps) -> None:
    """Keep declared units: reports of a unit follow the units of their period."""
    await apply_units_declared(tx, event, deps.law)


async def on_unit_merged(tx: UnitOfWork, event: UnitMerged, envelope: Envelope, *, deps: ReportingDeps) -> None:
    """Keep a merge: the successor's reports include the merged unit's dossiers."""
    await apply_unit_merged(tx, event, deps.law)


async def _scope(
    tx: UnitOfWork,
    deps: ReportingDeps,
    user: Principal,
    unit: str,
    first: date | None = None,
    last: date | None = None,
    attribution: domain.Attribution = "processing",
) -> domain.Scope:
    """The report scope of a unit code over a period (the registry's units of the period when it knows the unit, its
    code pattern otherwise), if the caller's token covers it."""
    registry = await deps.law.registry(tx)
    today = tx.now.astimezone(domain.VN_TZ).date()
    lo, hi = first or today, last or first or today
    scope = domain.resolve_scope(unit, registry, lo, hi, attribution)
    if not domain.token_covers(user.units, scope, registry, lo, hi):
        raise Problem(403, "unit-forbidden", "Unit outside your token", f"Your token does not cover unit {unit!r}.")
    return scope


async def _rules_of(tx: UnitOfWork, deps: ReportingDeps, scope: domain.Scope, period: domain.Period) -> Rules:
    """The rules in force on the period's last day in the scope's province (its 766 points, its forms)."""
    book = await deps.law.book(tx)
    registry = await deps.law.registry(tx)
    return domain.rules_on(book, period.last, domain.scope_province(scope, registry))


def _period(first: date, last: date) -> domain.Period:
    try:
        return domain.custom_period(first, last)
    except ValueError as exc:
        raise Problem(422, "validation-error", "The request is not valid", f"to: {exc}") from exc


def _periods(
    kind: domain.PeriodKind | None, year: int | None, number: int | None, first: date | None, last: date | None
) -> list[domain.Period]:
    """The periods of a breakdown: every week, month or quarter (or the ``number``-th) of a year, or one custom period."""
    if kind is not None:
        if year is None or first is not None or last is not None:
            raise Problem(422, "validation-error", "The request is not valid", "period: give 'year' (and optionally 'number'), not 'from'/'to'.")
        try:
            return domain.periods(kind, year, number)
        except ValueError as exc:
            raise Problem(422, "validation-error", "The request is not valid", f"number: {exc}") from exc
    if first is not None and last is not None:
        return [_period(first, last)]
    raise Problem(422, "validation-error", "The request is not valid", "give 'period' and 'year', or 'from' and 'to'.")


async def summary(
    tx: UnitOfWork,
    unit: str,
    first: date,
    last: date,
    *,
    field: str | None = None,
    procedure: str | None = None,
    attribution: domain.Attribution = "processing",
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The standard table of one unit (or roll-up) and period: the scope, every count and every plan rate."""
    scope = await _scope(tx, deps, user, unit, first, last, attribution)
    period = _period(first, last)
    tables = await _tables(tx, deps, scope=scope, periods=[period], by="none", field=field, procedure=procedure)
    return {"scope": scope.code, **tables[0]["total"]}


async def breakdown(
    tx: UnitOfWork,
    unit: str,
    *,
    by: store.Dimension,
    period: domain.PeriodKind | None,
    year: int | None,
    number: int | None,
    first: date | None,
    last: date | None,
    field: str | None = None,
    procedure: str | None = None,
    attribution: domain.Attribution = "processing",
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The standard table per period (``period`` and ``year``, or ``first`` to ``last``), one row per field, procedure
    or officer, and each period's total, with the late inter-agency steps per agency; and the scope."""
    span = _span(period, year, number, first, last)
    scope = await _scope(tx, deps, user, unit, span[0], span[1], attribution)
    chosen = _periods(period, year, number, first, last)
    tables = await _tables(tx, deps, scope=scope, periods=chosen, by=by, field=field, procedure=procedure)
    for table in tables:
        table["late_steps"] = await store.late_steps_by_agency(
            session=tx.session, scope=scope, period=table["period"], field=field, procedure=procedure
        )
    return {"scope": scope.code, "periods": tables}


def _span(
    kind: domain.PeriodKind | None, year: int | None, number: int | None, first: date | None, last: date | None
) -> tuple[date | None, date | None]:
    """The days a breakdown covers (for the registry's units), or (None, None) when its period is not valid."""
    if kind is not None and year is not None:
        try:
            chosen = domain.periods(kind, year, number)
        except ValueError:
            return None, None
        return chosen[0].first, chosen[-1].last
    return first, last


async def _tables(
    tx: UnitOfWork,
    deps: ReportingDeps,
    *,
    scope: domain.Scope,
    periods: list[domain.Period],
    by: store.Dimension,
    field: str | None,
    procedure: str | None,
) -> list[dict[str, Any]]:
    """The standard table per period, one row per field, procedure or officer, and the period's total.

    The sync rate (1.4) is the DVCQG sync outcomes' (not a count of the table): a period's total of a whole scope has
    it; a row of a field, procedure or officer, and a table of one field or procedure, do not (null: not measured so).
    """
    rules = deps.rules
    deps.horizons.use(await deps.law.book(tx))
    out = []
    for period in periods:
        horizon = deps.horizons.at(period)
        raw = await store.report_counts(
            session=tx.session, scope=scope, period=period, horizon=horizon, by=by, field=field, procedure=procedure
        )
        rows = [_row(r["key"], r["name"], r, rules) for r in raw]
        totals = {k: sum(int(r[k]) for r in raw) for k in domain.COMPUTED}
        sync = await _sync_facts(tx, deps, scope, period) if field is None and procedure is None else None
        total = _row("", "Tổng", totals, rules, measured={"sync": sync} if sync is not None else None)
        out.append({"period": period, "rows": rows if by != "none" else [], "total": total})
    return out


def _row(
    key: str, name: str, raw: Mapping[str, Any], rules: domain.ReportRules, measured: Mapping[str, tuple[int, int]] | None = None
) -> dict[str, Any]:
    counts = domain.complete_counts(raw)
    return {"key": key, "name": name, **counts, "rates": domain.rates(counts, rules.targets, measured=measured)}


async def _sync_facts(tx: UnitOfWork, deps: ReportingDeps, scope: domain.Scope, period: domain.Period) -> tuple[int, int] | None:
    """(on time, due) of the status syncs to DVCQG of a scope and period (766 1.4 / DOSSIER_SYNC: accepted within
    REPORTING_DVCQG_ON_TIME_SECONDS of the status change), or None when this installation does not sync."""
    settings = deps.settings
    if not settings.dvcqg_enabled:
        return None
    outcomes = await store.sync_outcomes(
        session=tx.session, scope=scope, period=period, window_seconds=settings.dvcqg_on_time_seconds, now=tx.now
    )
    return outcomes.on_time, outcomes.due


async def late_list(
    tx: UnitOfWork,
    unit: str,
    first: date,
    last: date,
    *,
    field: str | None = None,
    procedure: str | None = None,
    attribution: domain.Attribution = "processing",
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The accountability list (DOMAIN §8.3) of a unit (or roll-up) and period: each late dossier with the agencies its
    late inter-agency steps are blamed on, and per agency the late steps that came back in the period; and the scope."""
    scope = await _scope(tx, deps, user, unit, first, last, attribution)
    period = _period(first, last)
    rows = await store.late_dossiers(session=tx.session, scope=scope, period=period, field=field, procedure=procedure)
    agencies = await store.late_step_agencies(session=tx.session, codes=[r["code"] for r in rows], end=period.end)
    for row in rows:
        row["late_step_agencies"] = agencies.get(row["code"], [])
    by_agency = await store.late_steps_by_agency(session=tx.session, scope=scope, period=period, field=field, procedure=procedure)
    return {"scope": scope.code, "data": rows, "late_steps": by_agency}


async def index_766(tx: UnitOfWork, unit: str, month: str, *, deps: ReportingDeps, user: Principal) -> dict[str, Any]:
    """The 766 index of a unit (or roll-up) and month (``YYYY-MM``): every indicator whose facts reporting has, with
    points; every other with the reason; the points earned of the points computable and of 100, and the band with
    the score it rests on; and the scope."""
    rules = deps.rules
    year, number = (int(x) for x in month.split("-"))
    try:
        period = domain.periods("month", year, number)[0]
    except ValueError:  # a year the calendar does not have (0000): the token is checked first, as for any bad period
        await _scope(tx, deps, user, unit)
        raise Problem(422, "validation-error", "The request is not valid", f"month: {month} is not a calendar month.") from None
    scope = await _scope(tx, deps, user, unit, period.first, period.last)
    book = await deps.law.book(tx)
    deps.horizons.use(book)
    in_force = await _rules_of(tx, deps, scope, period)
    horizon = deps.horizons.at(period)
    raw = await store.report_counts(session=tx.session, scope=scope, period=period, horizon=horizon)
    feedback_on_time, feedback_total = await store.feedback_counts(session=tx.session, scope=scope, period=period)
    times = await store.processing_times(session=tx.session, scope=scope, period=period)
    c = domain.complete_counts(raw[0] if raw else {})
    measured = {
        "PROGRESS_ON_TIME": (c["received_within_time"], c["received_total"]),
        "ONLINE_DOSSIERS": (c["received_online"], c["received_total"]),
        "ORIGINAL_RESULT_AVAILABLE": (c["results_signed"], c["resolved_with_result"]),
        "SO_HOA_GIAY_TO_GIAI_QUYET": (c["digitization_complete"], c["received_total"]),
        "REUSED_DIGITIZED_DATA": (c["reused_components_dossiers"], c["received_total"]),
        "SYNCED_WITH_DVCQG_PERSONAL_STORAGE": (c["shared_with_store"], c["received_total"]),
        "ONLINE_PAYMENT_DOSSIERS": (c["paid_online"], c["fee_dossiers"]),
        "PETITION_PROCESSING_ON_TIME": (feedback_on_time, feedback_total),
        "DOSSIER_RECEIVING_SATISFACTION": (domain.rates(c)["satisfaction"]["numerator"], c["to_process"]),
        "CITIZEN_DATA_CONNECTED_DOSSIER": (c["population_data_used"], c["received_total"]),
    }
    reasons = {}
    sync = await _sync_facts(tx, deps, scope, period)
    if sync is not None:
        measured["DOSSIER_SYNC"] = sync
    else:
        reasons["DOSSIER_SYNC"] = domain.SYNC_UNAVAILABLE
    indicators = domain.indicator_rules(in_force.indicators)
    result = domain.index_766(measured, indicators, rules.bands, reasons=reasons, basis=rules.band_basis)
    by_procedure: dict[tuple[str, str], list[tuple[datetime, datetime, WorkingCalendar]]] = {}
    calendars: dict[tuple[str | None, str, date], WorkingCalendar] = {}
    for code, name, received, finished, ref, province in times:
        key = (ref, province, received.astimezone(domain.VN_TZ).date())
        if key not in calendars:  # each dossier's office hours: the rules it recorded at reception
            try:
                recorded = book.rules_of(ref, received, province)
            except LookupError:  # received before the first national rules
                recorded = domain.rules_on(book, key[2], province)
            calendars[key] = domain.calendar_of(recorded)
        by_procedure.setdefault((code, name), []).append((received, finished, calendars[key]))
    result["average_processing"] = [
        {"procedure_code": code, "procedure_name": name, "dossiers": len(pairs),
         "average_working_days": domain.average_working_days_each(pairs)}
        for (code, name), pairs in sorted(by_procedure.items())
    ]  # fmt: skip
    return {"scope": scope.code, "rules": in_force.ref, **result}


async def register(
    tx: UnitOfWork,
    unit: str,
    first: date,
    last: date,
    *,
    attribution: domain.Attribution = "processing",
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The register "Sổ theo dõi hồ sơ" of a unit (or roll-up) and period: every dossier received or returned in it,
    one line each, under the number and title of the register form of the rules in force on the period's last day
    (07 under Decree 118/2025, 06 under Decree 61/2018) in the scope's province."""
    scope = await _scope(tx, deps, user, unit, first, last, attribution)
    period = _period(first, last)
    rules = await _rules_of(tx, deps, scope, period)
    form = rules.form("register")
    rows = await store.register_rows(session=tx.session, scope=scope, period=period)
    registry = await deps.law.registry(tx)
    known = registry.get(unit)
    return {
        "number": form.number if form else "", "title": form.title if form else "Sổ theo dõi hồ sơ",
        "unit": unit, "unit_name": deps.settings.unit_names.get(unit) or (known.name if known else None),
        "period": period, "lines": domain.register_lines(rows, period, rules), "issued": tx.now,
    }  # fmt: skip


# ---- the public month (công khai): pages for people -------------------------------------------------------------------

PUBLIC_UNIT_MAX = 64  # as the reports' ``unit``


async def _public_unit(tx: UnitOfWork, unit: str) -> domain.Scope:
    """The scope of a unit reporting has heard of; a 404 for any other (no unit is told apart from a typo)."""
    scope = domain.parse_scope(unit)
    if len(unit) > PUBLIC_UNIT_MAX or not await store.unit_known(session=tx.session, scope=scope):
        raise NotFound("unit", unit)
    return scope


async def public_month(tx: UnitOfWork, unit: str, month: str, *, deps: ReportingDeps) -> dict[str, Any]:
    """A unit's published month: the standard report's counts and rates and its late dossiers (codes, procedures and
    dates only, ``domain.PUBLIC_LATE_FIELDS``), for a month that has ended.

    The figures are the reports' own: ``summary`` and ``late_list`` read them for a reader whose token is this unit
    alone. A month that is not ``YYYY-MM`` is a 422; a unit reporting never heard of, or a month not yet over, a 404.
    """
    period = domain.public_month(month)
    if period is None:
        raise Problem(422, "validation-error", "The request is not valid", "month: YYYY-MM, from 2000-01 to 2100-12.")
    scope = await _public_unit(tx, unit)
    if not domain.month_closed(period, tx.now):
        raise Problem(404, "month-not-published", "Month not published", f"The month {month} has not ended yet.")
    reader = Principal(subject="cong-khai", roles=frozenset(), units=frozenset({unit}))
    report = await summary(tx, unit, period.first, period.last, deps=deps, user=reader)
    late = await late_list(tx, unit, period.first, period.last, deps=deps, user=reader)
    following = domain.month_after(period)
    return {
        "unit": unit,
        "unit_name": deps.settings.unit_names.get(unit),
        "scope": report["scope"],
        "rollup": scope.unit is None,  # a district or province: every unit below it counts
        "period": period,
        "counts": {k: report[k] for k in domain.COUNTS},
        "rates": report["rates"],
        "late": [domain.public_late(row) for row in late["data"]],
        "previous": domain.month_before(period),
        "next": following if following is not None and domain.month_closed(following, tx.now) else None,
    }


async def latest_public_month(tx: UnitOfWork, unit: str) -> domain.Period:
    """The month a unit's public board opens on: the last one that has ended (a 404 for a unit never heard of)."""
    await _public_unit(tx, unit)
    return domain.last_closed_month(tx.now)


# ---- the DVCQG sync: history, given-up syncs, replay ------------------------------------------------------------------

SyncView = tuple[store.DvcqgSync, list[store.DvcqgSyncAttempt], bool | None]


def _sync_view(row: store.DvcqgSync, attempts: list[store.DvcqgSyncAttempt], deps: ReportingDeps, now: datetime) -> SyncView:
    on_time = None
    if row.kind == dvcqg.STATUS:
        on_time = dvcqg.on_time(row.state, row.changed_at, row.accepted_at, window_seconds=deps.settings.dvcqg_on_time_seconds, now=now)
    return row, attempts, on_time


async def sync_history(tx: UnitOfWork, code: str, *, deps: ReportingDeps, user: Principal) -> list[SyncView]:
    """A dossier's syncs to the national portal in sending order, each with every attempt (payload and answer) and
    whether it counts as on time; for officials whose token covers the dossier's unit."""
    if not user.roles & OFFICIALS:
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials and auditors read a dossier's syncs.")
    rows = await store.sync_history(session=tx.session, dossier_code=code)
    if not rows or not domain.token_covers(user.units, domain.parse_scope(rows[0][0].unit)):
        raise NotFound("dossier syncs", code)
    return [_sync_view(row, attempts, deps, tx.now) for row, attempts in rows]


async def list_syncs(tx: UnitOfWork, unit: str, state: str, limit: int, *, deps: ReportingDeps, user: Principal) -> list[SyncView]:
    """The syncs of a unit (or roll-up) in a state, oldest change first: what an admin looks through before a replay."""
    scope = await _scope(tx, deps, user, unit)
    rows = await store.list_syncs(session=tx.session, scope=scope, state=state, limit=limit)
    return [_sync_view(row, [], deps, tx.now) for row in rows]


async def replay_sync(tx: UnitOfWork, sync_id: int, *, deps: ReportingDeps, user: Principal) -> SyncView:
    """Put a given-up sync back in the queue (admin of its unit); the dossier's later syncs follow it. A sync in another
    state is left as it is (409)."""
    row = await store.get_sync(session=tx.session, sync_id=sync_id, lock=True)
    if row is None or not domain.token_covers(user.units, domain.parse_scope(row.unit)):
        raise NotFound("sync", str(sync_id))
    if row.state != dvcqg.GIVEN_UP:
        raise Problem(409, "sync-not-given-up", "Sync not given up", f"Sync {sync_id} is {row.state}; only a given-up sync is replayed.")
    replayed = await store.replay_sync(session=tx.session, sync_id=sync_id, now=tx.now, actor=user.subject)
    assert replayed is not None
    return _sync_view(replayed, [], deps, tx.now)


# ---- a dossier's timeline -------------------------------------------------------------------------------------------


async def _covers_dossier(tx: UnitOfWork, code: str, unit: str, *, deps: ReportingDeps | None, user: Principal) -> bool:
    """Whether the caller's token covers a dossier: its processing unit or the one-stop that received it, by code
    pattern or through the registry (a province's communes, a unit merged into the token's)."""
    if domain.token_covers(user.units, domain.parse_scope(unit)):
        return True
    if deps is None:
        return False
    registry = await deps.law.registry(tx)
    fact = await store.get_fact(session=tx.session, code=code)
    units = {unit, *((fact.unit, fact.one_stop) if fact is not None else ())}
    return any(domain.token_covers(user.units, domain.resolve_scope(u, registry, date.min, date.max), registry) for u in units)


async def _visible_timeline(
    tx: UnitOfWork, code: str, *, user: Principal, by_time: bool, deps: ReportingDeps | None = None
) -> list[store.EventRecord]:
    if not user.roles & OFFICIALS:
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials and auditors read timelines.")
    records = await store.timeline(session=tx.session, dossier_code=code, by_time=by_time)
    if not records or not await _covers_dossier(tx, code, records[0].unit, deps=deps, user=user):
        raise NotFound("dossier timeline", code)
    return records


async def timeline(tx: UnitOfWork, code: str, *, deps: ReportingDeps | None = None, user: Principal) -> list[store.EventRecord]:
    """A dossier's events in the order they happened, if the caller's token covers its processing or receiving unit."""
    return await _visible_timeline(tx, code, user=user, by_time=True, deps=deps)


async def verify(tx: UnitOfWork, code: str, *, deps: ReportingDeps | None = None, user: Principal) -> dict[str, Any]:
    """Whether a dossier's hash chain is intact: the events, the first broken link and the head."""
    records = await _visible_timeline(tx, code, user=user, by_time=False, deps=deps)
    links = [
        (
            domain.ChainLink(
                sequence=r.sequence,
                event_id=r.event_id,
                type=r.type,
                source=r.source,
                time=domain.canonical_time(r.time),
                data=r.data,
                prev_hash=r.prev_hash,
            ),
            r.hash,
        )
        for r in records
    ]
    broken = domain.first_break(links)
    return {
        "intact": broken is None,
        "events": len(records),
        "first_broken_sequence": broken,
        "head_hash": records[-1].hash if records else None,
    }


def subscriptions(deps: ReportingDeps) -> Subscription:
    """Reporting listens to every dossier event of every producer (calendar facts have no dossier stream), and to
    intake's facts of the law in force: rule set versions, declared units, merges."""
    handler = partial(on_dossier_event, deps=deps)
    law = {
        RulesPublished: partial(on_rules_published, deps=deps),
        UnitsDeclared: partial(on_units_declared, deps=deps),
        UnitMerged: partial(on_unit_merged, deps=deps),
    }
    return Subscription(producers=PRODUCERS, handlers={**{model: handler for model in dossier_events()}, **law})
