"""Where a service keeps the law in force and the unit registry: two tables in its own database, and a cache.

Intake owns both (its admin API publishes); workflow and reporting keep copies from intake's facts
(``RulesPublished``, ``UnitsDeclared``, ``UnitMerged``) applied by ``apply_*`` in the consumer's transaction. The
shipped national versions (``shared/law/rulesets.json``) are always part of the book, so a service never depends on an
event to know the regimes of this release.

``LawCache`` keeps the book and the registry in memory for ``ttl`` seconds and drops them after a commit that changed
them in this process; another replica sees a change within ``ttl``. A version published for today therefore reaches
every replica within ``ttl`` seconds; one dated in the future (the usual case) is there long before it applies.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import UnitOfWork
from shared.events import RulesPublished, UnitMerged, UnitsDeclared
from shared.rules import (
    RuleBook,
    RuleVersion,
    dump_version,
    parse_version,
    shipped_versions,
)
from shared.units import AdminUnit, UnitRegistry

metadata = sa.MetaData()

rule_versions = sa.Table(
    "rule_versions",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True),
    sa.Column("regime", sa.String(40), nullable=False),
    sa.Column("effective_from", sa.Date(), nullable=False),
    sa.Column("document", JSONB(), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("published_by", sa.String(), nullable=True),
)

admin_units = sa.Table(
    "admin_units",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("valid_from", sa.Date(), nullable=True),
    sa.Column("valid_to", sa.Date(), nullable=True),
    sa.Column("successor", sa.String(64), nullable=True),
)


def create_tables(op: object) -> None:
    """For a service's Alembic migration: ``lawstore.create_tables(op)``."""
    for table in (rule_versions, admin_units):
        columns = [sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in table.columns]
        op.create_table(table.name, *columns)  # type: ignore[attr-defined]


def drop_tables(op: object) -> None:
    """The migration's downgrade."""
    for table in (admin_units, rule_versions):
        op.drop_table(table.name)  # type: ignore[attr-defined]


async def load_book(session: AsyncSession) -> RuleBook:
    """The shipped versions and every version published here (a stored version wins over a shipped one of its ref)."""
    rows = (await session.execute(sa.select(rule_versions.c.document))).scalars().all()
    stored = [parse_version(d) for d in rows]
    refs = {v.ref for v in stored}
    return RuleBook([*(v for v in shipped_versions() if v.ref not in refs), *stored])


async def load_registry(session: AsyncSession) -> UnitRegistry:
    """Every unit entered here."""
    rows = (await session.execute(sa.select(admin_units))).mappings().all()
    return UnitRegistry(AdminUnit.model_validate(dict(r)) for r in rows)


async def save_version(session: AsyncSession, v: RuleVersion) -> None:
    """Store a published version (again: nothing changes; history is never rewritten)."""
    statement = insert(rule_versions).values(
        scope=v.scope, version=v.version, regime=v.regime, effective_from=v.effective_from, document=dump_version(v),
        published_at=v.published_at, published_by=v.published_by,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["scope", "version"]))


async def save_units(session: AsyncSession, units: Iterable[AdminUnit]) -> None:
    """Store units, a unit entered again replacing its row."""
    values = [u.model_dump() for u in units]
    if not values:
        return
    statement = insert(admin_units).values(values)
    columns = {c: statement.excluded[c] for c in ("name", "tier", "parent", "valid_from", "valid_to", "successor")}
    await session.execute(statement.on_conflict_do_update(index_elements=["code"], set_=columns))


class LawCache:
    """The rule book and the unit registry of this process, read at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = 10.0, *, monotonic: Callable[[], float] = _time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._book: tuple[float, RuleBook] | None = None
        self._registry: tuple[float, UnitRegistry] | None = None

    def _fresh(self, entry: tuple[float, object] | None) -> bool:
        return entry is not None and self._monotonic() - entry[0] < self.ttl

    async def book(self, tx: UnitOfWork) -> RuleBook:
        """The rule book (from the cache while fresh)."""
        if not self._fresh(self._book):
            self._book = (self._monotonic(), await load_book(tx.session))
        assert self._book is not None
        return self._book[1]

    async def registry(self, tx: UnitOfWork) -> UnitRegistry:
        """The unit registry (from the cache while fresh)."""
        if not self._fresh(self._registry):
            self._registry = (self._monotonic(), await load_registry(tx.session))
        assert self._registry is not None
        return self._registry[1]

    def invalidate(self, tx: UnitOfWork | None = None) -> None:
        """Forget both, now or (given the transaction that changed them) when it commits."""
        if tx is None:
            self._book = self._registry = None
        else:
            tx.after_commit(self.invalidate)


# ---- applying intake's facts in another service ----------------------------------------------------------------


async def apply_rules_published(tx: UnitOfWork, fact: RulesPublished, cache: LawCache) -> None:
    """Keep the published version."""
    await save_version(tx.session, parse_version(fact.document))
    cache.invalidate(tx)


async def apply_units_declared(tx: UnitOfWork, fact: UnitsDeclared, cache: LawCache) -> None:
    """Keep the declared units."""
    await save_units(tx.session, [AdminUnit.model_validate(u) for u in fact.units])
    cache.invalidate(tx)


async def apply_unit_merged(tx: UnitOfWork, fact: UnitMerged, cache: LawCache) -> None:
    """Keep the merged unit's end and successor."""
    await save_units(tx.session, [AdminUnit.model_validate(fact.unit)])
    cache.invalidate(tx)
