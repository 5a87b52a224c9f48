"""Reporting handlers: every event appends to its dossier's hash chain and updates the projections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, datetime
from functools import partial
from typing import Any
from weakref import WeakKeyDictionary

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reporting import domain, store
from shared.calendar import WorkingCalendar
from shared.consumer import Subscription
from shared.db import Database, UnitOfWork
from shared.envelope import Envelope
from shared.events import PRODUCERS, Event, dossier_events, event_class
from shared.telemetry import current_trace_id


class Horizons:
    """The near-due horizon at the end of each month, by the report rules: what the roll-up counts near due with."""

    def __init__(self, rules: ReportRules) -> None:
        self.rules = rules
        self._known: dict[date, datetime] = {}

    def __call__(self, month: date) -> datetime:
        if month not in self._known:
            end = domain.month_period(month).end
            self._known[month] = domain.near_due_horizon(
                end, self.rules.near_due_threshold, self.rules.near_due_unit, self.rules.calendar
            )
        return self._known[month]

    def of(self, fact: domain.Fact | None, rolled_through: date | None) -> dict[date, datetime]:
        """The horizon of every month the dossier has roll-up rows in."""
        return {m: self(m) for m in domain.active_months(fact, rolled_through)} if fact is not None else {}


async def record(
    tx: UnitOfWork, event: Event, envelope: Envelope, *, fields: Mapping[str, str], horizons: Horizons
) -> None:
    """Append the event to its dossier's stream, then project it (``fields``: procedure code → field)."""
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
            recorded_at=tx.db.clock.now(),
            actor=envelope.actor,
            trace_id=current_trace_id(),
            data=link.data,
            prev_hash=link.prev_hash,
            hash=domain.link_hash(link),
        ),
    )
    await project(
        tx.session, event, actor=envelope.actor, fields=fields, horizons=horizons, now=tx.db.clock.now(), rollup=_rollup_of(tx)
    )


# The roll-up changes of each open transaction, written just before it commits (store.RollupDelta).
_PENDING: WeakKeyDictionary[UnitOfWork, store.RollupDelta] = WeakKeyDictionary()


def _rollup_of(tx: UnitOfWork) -> store.RollupDelta:
    """The transaction's roll-up changes, flushed when it commits: once per batch, in key order."""
    pending = _PENDING.get(tx)
    if pending is None:
        pending = _PENDING[tx] = store.RollupDelta()
        tx.before_commit(partial(pending.flush, tx.session))
    return pending


async def project(
    session: AsyncSession,
    event: Event,
    *,
    actor: str | None,
    fields: Mapping[str, str],
    horizons: Horizons | None,
    now: datetime | None = None,
    rollup: store.RollupDelta | None = None,
) -> None:
    """Fold one event into its dossier's facts (the chain head lock held by the caller orders a dossier's events).

    With ``horizons`` the monthly roll-up moves in the same transaction from what the dossier counted before the
    event to what it counts after (both counted by the reports' own SQL); without, the caller counts it afterwards.
    The move is added to ``rollup`` (written when the transaction commits), or without one written now.
    """
    stored = await store.get_fact(session=session, code=event.dossier_code)
    fact = stored or domain.new_fact(event.dossier_code, event.unit)
    folded = domain.fold(fact, event, actor=actor, fields=fields)
    if not horizons:
        await _save(session, event.dossier_code, folded)
        return
    pending = rollup if rollup is not None else store.RollupDelta()
    # the roll-up reaches this month (``now``) before anything moves in it; held, it stays there until the commit
    month = domain.month_of(now or event.occurred_at)
    if pending.held is None or pending.held < month:
        pending.held = await store.hold_rollup(session=session, month=month, horizons=horizons)
    rolled = pending.held
    was = horizons.of(stored, rolled)
    before = pending.known(event.dossier_code, was)
    if before is None:  # not yet counted by this transaction (its last event of the dossier left ``after`` = before)
        before = await store.contributions(session=session, code=event.dossier_code, horizons=was)
    await _save(session, event.dossier_code, folded)
    months = horizons.of(folded.fact, rolled)
    after = await store.contributions(session=session, code=event.dossier_code, horizons=months)
    pending.add(event.dossier_code, before, after, months)
    if rollup is None:
        await pending.flush(session)


async def _save(session: AsyncSession, code: str, folded: domain.Folded) -> None:
    """Write what the event changed of the dossier's rows."""
    await store.save_fact(session=session, fact=folded.fact)
    await store.add_deadlines(session=session, code=code, changes=folded.deadlines)
    await store.apply_feedback(session=session, code=code, unit=folded.fact.unit, changes=folded.feedback)


async def rebuild(db: Database, *, fields: Mapping[str, str], rules: ReportRules) -> int:
    """Empty the projections and replay reporting's own event log in the order it was applied; the events replayed.

    The roll-up is counted once at the end, a month per statement, by the same SQL the handlers count it with.
    One transaction: the consumer's appends and the reports (TRUNCATE locks the projections) wait for it.
    """
    replayed = 0
    async with db.unit_of_work(actor="reporting-rebuild") as tx:
        await store.lock_log(session=tx.session)
        await store.truncate_projections(session=tx.session)
        async for record in store.log_in_order(session=tx.session):
            model = event_class(record.type)
            if model is None:
                raise ValueError(f"event_log row {record.id} has an unknown type {record.type!r}")
            await project(tx.session, model.model_validate(record.data), actor=record.actor, fields=fields, horizons=None)
            replayed += 1
        await count_rollup(tx.session, Horizons(rules), through=domain.month_of(db.clock.now()))
    return replayed


async def count_rollup(session: AsyncSession, horizons: Horizons, *, through: date) -> None:
    """Count the roll-up of every month from the dossiers' rows (into an empty roll-up), open ones ``through`` a month."""
    rolled = f"({store.IN_MONTH}) OR (f.received_at < :end AND {store.IDLE_OPEN})"
    for month in await store.rollup_months_of_facts(session=session, through=through):
        where = rolled if month <= through else store.IN_MONTH
        await store.count_rollup_month(session=session, month=month, horizon=horizons(month), where=where)
    await store.set_rolled_through(session=session, month=through)


def subscriptions(fields: Mapping[str, str], rules: ReportRules) -> Subscription:
    """Reporting listens to every dossier event of every producer (calendar facts have no dossier stream)."""
    handler = partial(record, fields=fields, horizons=Horizons(rules))
    return Subscription(producers=PRODUCERS, handlers={model: handler for model in dossier_events()})


# ---- reports (read-only use cases) ----------------------------------------------------------------------------------


async def summary(
    db: Database,
    rules: ReportRules,
    *,
    scope: domain.Scope,
    period: domain.Period,
    field: str | None = None,
    procedure: str | None = None,
) -> dict[str, Any]:
    """The standard table of one scope and period: every count and every plan rate."""
    rows = await breakdown(db, rules, scope=scope, periods=[period], by="none", field=field, procedure=procedure)
    return rows[0]["total"]


async def breakdown(
    db: Database,
    rules: ReportRules,
    *,
    scope: domain.Scope,
    periods: list[domain.Period],
    by: store.Dimension,
    field: str | None = None,
    procedure: str | None = None,
) -> list[dict[str, Any]]:
    """The standard table per period, one row per field, procedure or officer, and the period's total."""
    out = []
    async with db.sessions() as session:
        for period in periods:
            horizon = domain.near_due_horizon(period.end, rules.near_due_threshold, rules.near_due_unit, rules.calendar)
            raw = await store.report_counts(
                session=session, scope=scope, period=period, horizon=horizon, by=by, field=field, procedure=procedure
            )
            rows = [_row(r["key"], r["name"], r, rules) for r in raw]
            totals = {k: sum(int(r[k]) for r in raw) for k in domain.COMPUTED}
            out.append({"period": period, "rows": rows if by != "none" else [], "total": _row("", "Tổng", totals, rules)})
    return out


def _row(key: str, name: str, raw: Mapping[str, Any], rules: ReportRules) -> dict[str, Any]:
    counts = domain.complete_counts(raw)
    return {"key": key, "name": name, **counts, "rates": domain.rates(counts, rules.targets)}


async def late_list(
    db: Database,
    *,
    scope: domain.Scope,
    period: domain.Period,
    field: str | None = None,
    procedure: str | None = None,
) -> list[dict[str, Any]]:
    """The accountability list (DOMAIN §8.3) of a scope and period."""
    async with db.sessions() as session:
        return await store.late_dossiers(session=session, scope=scope, period=period, field=field, procedure=procedure)


async def index_766(db: Database, rules: ReportRules, *, scope: domain.Scope, period: domain.Period) -> dict[str, Any]:
    """The 766 indicators a local system can compute for a scope and month, with points, total and band."""
    horizon = domain.near_due_horizon(period.end, rules.near_due_threshold, rules.near_due_unit, rules.calendar)
    async with db.sessions() as session:
        raw = await store.report_counts(session=session, scope=scope, period=period, horizon=horizon)
        feedback_on_time, feedback_total = await store.feedback_counts(session=session, scope=scope, period=period)
        times = await store.processing_times(session=session, scope=scope, period=period)
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
    return result


@dataclass(frozen=True)
class ReportRules:
    """What the reports need besides the database: the calendar, the near-due threshold, targets and 766 points."""

    calendar: WorkingCalendar
    near_due_threshold: float = 1
    near_due_unit: domain.NearDueUnit = "working_days"
    targets: Mapping[str, float] = dc_field(default_factory=dict)
    indicators: tuple[domain.IndicatorRule, ...] = ()
    bands: tuple[tuple[float, str], ...] = domain.DEFAULT_BANDS
