"""Folding events into reporting's projections: a dossier's facts, its deadlines and feedback, and the monthly roll-up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import partial
from weakref import WeakKeyDictionary

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reporting import domain, store
from shared.db import UnitOfWork
from shared.events import Event

# The roll-up changes of each open transaction, written just before it commits (store.RollupDelta).
_PENDING: WeakKeyDictionary[UnitOfWork, store.RollupDelta] = WeakKeyDictionary()


def rollup_of(tx: UnitOfWork) -> store.RollupDelta:
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
    horizons: domain.Horizons | None,
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
    await store.add_late_steps(session=session, code=code, steps=folded.late_steps)


async def count_rollup(session: AsyncSession, horizons: domain.Horizons, *, through: date) -> None:
    """Count the roll-up of every month from the dossiers' rows (into an empty roll-up), open ones ``through`` a month."""
    rolled = f"({store.IN_MONTH}) OR (f.received_at < :end AND {store.IDLE_OPEN})"
    for month in await store.rollup_months_of_facts(session=session, through=through):
        where = rolled if month <= through else store.IN_MONTH
        await store.count_rollup_month(session=session, month=month, horizon=horizons(month), where=where)
    await store.set_rolled_through(session=session, month=through)
