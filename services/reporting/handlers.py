"""Reporting use cases: every dossier event appends to its dossier's hash chain and moves the projections; the reports,
the 766 index, the accountability list and the timeline read them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import partial
from typing import Any

from services.reporting import domain, projections, store
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
    tables = await _tables(tx, deps.rules, scope=scope, periods=[period], by="none", field=field, procedure=procedure)
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
    tables = await _tables(tx, deps.rules, scope=scope, periods=chosen, by=by, field=field, procedure=procedure)
    return {"scope": scope.code, "periods": tables}


async def _tables(
    tx: UnitOfWork,
    rules: domain.ReportRules,
    *,
    scope: domain.Scope,
    periods: list[domain.Period],
    by: store.Dimension,
    field: str | None,
    procedure: str | None,
) -> list[dict[str, Any]]:
    """The standard table per period, one row per field, procedure or officer, and the period's total."""
    out = []
    for period in periods:
        horizon = domain.near_due_horizon(period.end, rules.near_due_threshold, rules.near_due_unit, rules.calendar)
        raw = await store.report_counts(
            session=tx.session, scope=scope, period=period, horizon=horizon, by=by, field=field, procedure=procedure
        )
        rows = [_row(r["key"], r["name"], r, rules) for r in raw]
        totals = {k: sum(int(r[k]) for r in raw) for k in domain.COMPUTED}
        out.append({"period": period, "rows": rows if by != "none" else [], "total": _row("", "Tổng", totals, rules)})
    return out


def _row(key: str, name: str, raw: Mapping[str, Any], rules: domain.ReportRules) -> dict[str, Any]:
    counts = domain.complete_counts(raw)
    return {"key": key, "name": name, **counts, "rates": domain.rates(counts, rules.targets)}


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
    """The 766 indicators a local system can compute for a unit (or roll-up) and month (``YYYY-MM``), with points,
    total and band; and the scope."""
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
    }
    result = domain.index_766(measured, rules.indicators, rules.bands)
    by_procedure: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for code, name, received, finished in times:
        by_procedure.setdefault((code, name), []).append((received, finished))
    result["average_processing"] = [
        {"procedure_code": code, "procedure_name": name, "dossiers": len(pairs),
         "average_working_days": domain.average_working_days(pairs, rules.calendar)}
        for (code, name), pairs in sorted(by_procedure.items())
    ]  # fmt: skip
    return {"scope": scope.code, **result}


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
