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
from shared.consumer import Subscription
from shared.db import UnitOfWork
from shared.envelope import Envelope
from shared.errors import NotFound, Problem
from shared.events import PRODUCERS, Event, dossier_events, event_class
from shared.roles import OFFICIALS
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
    store.append(
        session=tx.session,
        head=head,
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


def _scope(user: Principal, unit: str) -> domain.Scope:
    """The report scope of a unit code, if the caller's token covers it."""
    scope = domain.parse_scope(unit)
    if not domain.token_covers(user.units, scope):
        raise Problem(403, "unit-forbidden", "Unit outside your token", f"Your token does not cover unit {unit!r}.")
    return scope


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
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The standard table of one unit (or roll-up) and period: the scope, every count and every plan rate."""
    scope, period = _scope(user, unit), _period(first, last)
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
    deps: ReportingDeps,
    user: Principal,
) -> dict[str, Any]:
    """The standard table per period (``period`` and ``year``, or ``first`` to ``last``), one row per field, procedure
    or officer, and each period's total; and the scope."""
    scope = _scope(user, unit)
    chosen = _periods(period, year, number, first, last)
    tables = await _tables(tx, deps, scope=scope, periods=chosen, by=by, field=field, procedure=procedure)
    return {"scope": scope.code, "periods": tables}


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
    out = []
    for period in periods:
        horizon = domain.near_due_horizon(period.end, rules.near_due_threshold, rules.near_due_unit, rules.calendar)
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
    user: Principal,
) -> dict[str, Any]:
    """The accountability list (DOMAIN §8.3) of a unit (or roll-up) and period, and the scope."""
    scope, period = _scope(user, unit), _period(first, last)
    rows = await store.late_dossiers(session=tx.session, scope=scope, period=period, field=field, procedure=procedure)
    return {"scope": scope.code, "data": rows}


async def index_766(tx: UnitOfWork, unit: str, month: str, *, deps: ReportingDeps, user: Principal) -> dict[str, Any]:
    """The 766 index of a unit (or roll-up) and month (``YYYY-MM``): every indicator whose facts reporting has, with
    points; every other with the reason; the points earned of the points computable and of 100, and the band with
    the score it rests on; and the scope."""
    rules = deps.rules
    scope = _scope(user, unit)
    year, number = (int(x) for x in month.split("-"))
    period = domain.periods("month", year, number)[0]
    horizon = domain.near_due_horizon(period.end, rules.near_due_threshold, rules.near_due_unit, rules.calendar)
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
    result = domain.index_766(measured, rules.indicators, rules.bands, reasons=reasons, basis=rules.band_basis)
    by_procedure: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for code, name, received, finished in times:
        by_procedure.setdefault((code, name), []).append((received, finished))
    result["average_processing"] = [
        {"procedure_code": code, "procedure_name": name, "dossiers": len(pairs),
         "average_working_days": domain.average_working_days(pairs, rules.calendar)}
        for (code, name), pairs in sorted(by_procedure.items())
    ]  # fmt: skip
    return {"scope": scope.code, **result}


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
    late = await late_list(tx, unit, period.first, period.last, user=reader)
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
    scope = _scope(user, unit)
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


async def _visible_timeline(tx: UnitOfWork, code: str, *, user: Principal, by_time: bool) -> list[store.EventRecord]:
    if not user.roles & OFFICIALS:
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials and auditors read timelines.")
    records = await store.timeline(session=tx.session, dossier_code=code, by_time=by_time)
    if not records or not domain.token_covers(user.units, domain.parse_scope(records[0].unit)):
        raise NotFound("dossier timeline", code)
    return records


async def timeline(tx: UnitOfWork, code: str, *, user: Principal) -> list[store.EventRecord]:
    """A dossier's events in the order they happened, if the caller's token covers its unit."""
    return await _visible_timeline(tx, code, user=user, by_time=True)


async def verify(tx: UnitOfWork, code: str, *, user: Principal) -> dict[str, Any]:
    """Whether a dossier's hash chain is intact: the events, the first broken link and the head."""
    records = await _visible_timeline(tx, code, user=user, by_time=False)
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
    """Reporting listens to every dossier event of every producer (calendar facts have no dossier stream)."""
    handler = partial(on_dossier_event, deps=deps)
    return Subscription(producers=PRODUCERS, handlers={model: handler for model in dossier_events()})
