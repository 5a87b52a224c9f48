"""Digitization tables and queries. Store functions never commit: the caller's unit of work does."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Column, DateTime, Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.counters import UnitCounter


def _ts(nullable: bool = True) -> datetime | None:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))  # type: ignore[return-value]


class DossierRef(SQLModel, table=True):
    """A dossier whose papers and result this service will hold."""

    __tablename__ = "dossier_refs"

    code: str = Field(primary_key=True, max_length=64)
    unit: str = Field(index=True, max_length=64)
    receiving_unit: str | None = Field(default=None, max_length=64)
    procedure_code: str = Field(max_length=32)
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    result_expected_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

    def seen_by(self, units_check) -> bool:
        """Whether a caller's units cover the processing or the receiving unit."""
        return units_check(self.unit) or (self.receiving_unit is not None and units_check(self.receiving_unit))


class StoredBlob(SQLModel, table=True):
    """A blob of the file store, named by its SHA-256."""

    __tablename__ = "blobs"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    media_type: str = Field(max_length=100)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Document(SQLModel, table=True):
    """A digitized paper, a result, a certified copy, or a paper reused from the owner's store for a dossier."""

    __tablename__ = "documents"

    id: str = Field(primary_key=True, max_length=36)
    dossier_code: str | None = Field(default=None, index=True, max_length=64)  # None: back-digitized from the archive
    unit: str = Field(max_length=64)
    receiving_unit: str | None = Field(default=None, max_length=64)
    stage: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    component_code: str | None = Field(default=None, max_length=64)
    component_name: str | None = Field(default=None, max_length=300)
    component_key: str = Field(max_length=300)
    mandatory: bool = True
    paper_code: str | None = Field(default=None, max_length=64)
    paper_name: str | None = Field(default=None, max_length=300)
    paper_number: str | None = Field(default=None, max_length=100)
    issuer: str | None = Field(default=None, max_length=300)
    issued_on: date | None = None
    valid_until: date | None = None
    scope: str | None = Field(default=None, max_length=300)
    owner_key: str | None = Field(default=None, max_length=64, index=True)
    owner_hint: str | None = Field(default=None, max_length=20)
    original_sha256: str = Field(max_length=64)
    original_media_type: str = Field(max_length=100)
    original_size: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    original_filename: str | None = Field(default=None, max_length=255)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    pages: int
    signed: bool = False
    signer: str | None = Field(default=None, max_length=300)
    certificate_serial: str | None = Field(default=None, max_length=80)
    signed_at: datetime | None = _ts()
    signed_by: str | None = Field(default=None, max_length=200)
    reused_from: str | None = Field(default=None, max_length=36)
    copy_number: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=200)
    # A certified copy's revocation (a leader of its unit): set once, all three together.
    revoked_at: datetime | None = _ts()
    revoked_by: str | None = Field(default=None, max_length=200)
    revocation_reason: str | None = Field(default=None, max_length=500)


class DossierOwner(SQLModel, table=True):
    """A person whose papers a dossier concerns, declared by the official who checked the id (keyed hash only)."""

    __tablename__ = "dossier_owners"

    dossier_code: str = Field(primary_key=True, max_length=64)
    owner_key: str = Field(primary_key=True, max_length=64)
    owner_hint: str = Field(max_length=20)
    declared_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    declared_by: str = Field(max_length=200)


class DocumentAccess(SQLModel, table=True):
    """One access to the citizen's document store, granted or denied: who, why (the dossier), what, when."""

    __tablename__ = "document_accesses"

    id: int | None = Field(default=None, sa_column=Column(sa.BigInteger, sa.Identity(always=True), primary_key=True))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=200)
    roles: str = Field(max_length=200)
    action: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    dossier_code: str | None = Field(default=None, max_length=64)
    owner_key: str | None = Field(default=None, max_length=64, index=True)
    owner_hint: str | None = Field(default=None, max_length=20)
    document_id: str | None = Field(default=None, max_length=36)
    detail: str | None = None


class IntakeCompletion(SQLModel, table=True):
    """A dossier whose required components were all digitized or reused at intake (once per dossier)."""

    __tablename__ = "intake_completions"

    dossier_code: str = Field(primary_key=True, max_length=64)
    completed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    completed_by: str = Field(max_length=200)
    required: int
    digitized: int
    reused: int


# The unit's certified-copy numbers of the year; the row lock orders concurrent copies across replicas.
COPY_NUMBERS = UnitCounter("copy_sequences", period="year")


# ---- dossiers -------------------------------------------------------------------


async def remember(*, session: AsyncSession, ref: DossierRef) -> None:
    """Record a dossier once."""
    await session.execute(
        insert(DossierRef).values(**ref.model_dump()).on_conflict_do_nothing(index_elements=["code"])
    )


async def expect_result(*, session: AsyncSession, code: str, at: datetime) -> None:
    """Note that a dossier's result is ready to be digitized and signed."""
    await session.execute(sa.update(DossierRef).where(DossierRef.code == code).values(result_expected_at=at))


async def close(*, session: AsyncSession, code: str, at: datetime) -> None:
    """The dossier is over (returned, withdrawn, refused): its owners' store is no longer open to it."""
    await session.execute(
        sa.update(DossierRef).where(DossierRef.code == code, col(DossierRef.closed_at).is_(None)).values(closed_at=at)
    )


async def dossier(*, session: AsyncSession, code: str) -> DossierRef | None:
    """A known dossier."""
    return await session.get(DossierRef, code)


# ---- blobs ----------------------------------------------------------------------


async def lock_blob(*, session: AsyncSession, sha256: str) -> None:
    """Serialise writers and deleters of one blob until the transaction ends."""
    await session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 7))"), {"s": sha256})


async def add_blob(*, session: AsyncSession, blob: StoredBlob) -> None:
    """Register a blob (once)."""
    await session.execute(insert(StoredBlob).values(**blob.model_dump()).on_conflict_do_nothing(index_elements=["sha256"]))


async def blob_known(*, session: AsyncSession, sha256: str) -> bool:
    """Whether the database holds the blob."""
    return await session.get(StoredBlob, sha256) is not None


# ---- documents ------------------------------------------------------------------


def add(*, session: AsyncSession, row: SQLModel) -> None:
    """Stage a new row."""
    session.add(row)


async def get(*, session: AsyncSession, document_id: str, lock: bool = False) -> Document | None:
    """A document by id; ``lock``: ``FOR UPDATE``, and read again even when this session holds it already."""
    return await session.get(Document, document_id, with_for_update=lock, populate_existing=lock)


async def same_upload(*, session: AsyncSession, dossier_code: str, stage: str, component_key: str, original_sha256: str) -> Document | None:
    """The document an identical earlier upload of the same component made."""
    result = await session.exec(
        select(Document).where(
            Document.dossier_code == dossier_code,
            Document.stage == stage,
            Document.component_key == component_key,
            Document.original_sha256 == original_sha256,
            col(Document.reused_from).is_(None),
        )
    )
    return result.first()


async def reuse_of(*, session: AsyncSession, dossier_code: str, component_key: str, source_id: str) -> Document | None:
    """The document an earlier reuse of the same source for the same component made."""
    result = await session.exec(
        select(Document).where(
            Document.dossier_code == dossier_code, Document.component_key == component_key, Document.reused_from == source_id
        )
    )
    return result.first()


async def of_dossier(*, session: AsyncSession, dossier_code: str) -> list[Document]:
    """Every document of a dossier, oldest first."""
    result = await session.exec(select(Document).where(Document.dossier_code == dossier_code).order_by(Document.created_at, Document.id))
    return list(result.all())


async def of_owner(*, session: AsyncSession, owner_key: str, paper_code: str | None = None) -> list[Document]:
    """The owner's store: original documents filed under the owner (reuses point at them), newest first."""
    query = select(Document).where(Document.owner_key == owner_key, col(Document.reused_from).is_(None))
    if paper_code:
        query = query.where(Document.paper_code == paper_code)
    result = await session.exec(query.order_by(col(Document.created_at).desc()))
    return list(result.all())


async def references_to(*, session: AsyncSession, sha256: str) -> int:
    """How many documents use a blob (as content or as original)."""
    result = await session.execute(
        sa.select(sa.func.count()).where(sa.or_(Document.sha256 == sha256, Document.original_sha256 == sha256))
    )
    return result.scalar_one()


# ---- owners and the access audit ----------------------------------------------------


async def declare_owner(*, session: AsyncSession, owner: DossierOwner) -> bool:
    """Link an owner to a dossier; True when the link is new."""
    result = await session.execute(
        insert(DossierOwner).values(**owner.model_dump()).on_conflict_do_nothing(index_elements=["dossier_code", "owner_key"]).returning(DossierOwner.dossier_code)
    )
    return result.first() is not None


async def is_owner(*, session: AsyncSession, dossier_code: str, owner_key: str) -> bool:
    """Whether the owner was declared for the dossier."""
    return await session.get(DossierOwner, (dossier_code, owner_key)) is not None


async def owners_of(*, session: AsyncSession, dossier_code: str) -> list[DossierOwner]:
    """The declared owners of a dossier."""
    result = await session.exec(select(DossierOwner).where(DossierOwner.dossier_code == dossier_code))
    return list(result.all())


async def accesses(
    *, session: AsyncSession, owner_key: str | None, dossier_code: str | None, document_id: str | None, actor: str | None,
    limit: int, offset: int,
) -> tuple[list[DocumentAccess], int]:
    """A page of the access audit, newest first, and the total."""
    where = []
    if owner_key:
        where.append(DocumentAccess.owner_key == owner_key)
    if dossier_code:
        where.append(DocumentAccess.dossier_code == dossier_code)
    if document_id:
        where.append(DocumentAccess.document_id == document_id)
    if actor:
        where.append(DocumentAccess.actor == actor)
    total = (await session.execute(sa.select(sa.func.count()).select_from(DocumentAccess).where(*where))).scalar_one()
    result = await session.exec(
        select(DocumentAccess).where(*where).order_by(col(DocumentAccess.id).desc()).limit(limit).offset(offset)
    )
    return list(result.all()), total


# ---- completion -----------------------------------------------------------------------


async def completion(*, session: AsyncSession, dossier_code: str) -> IntakeCompletion | None:
    """The dossier's intake completion, if recorded."""
    return await session.get(IntakeCompletion, dossier_code)


# ---- back-digitization (issue #22) ------------------------------------------------------


class BackfileBatch(SQLModel, table=True):
    """A batch of scanned results of one unit, filed all together (the same ZIP again is this batch)."""

    __tablename__ = "backfile_batches"
    __table_args__ = (sa.UniqueConstraint("unit", "sha256", name="backfile_batches_same_zip"),)

    id: str = Field(primary_key=True, max_length=36)
    unit: str = Field(max_length=64, index=True)
    sheet: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    documents: int
    pages: int
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=200)


class BackfileResult(SQLModel, table=True):
    """A back-digitized result: its document, its field, and the key that keeps it from being filed twice."""

    __tablename__ = "backfile_results"

    document_id: str = Field(primary_key=True, max_length=36)
    batch_id: str = Field(max_length=36, index=True)
    line: int
    unit: str = Field(max_length=64)
    field: str = Field(max_length=200)
    result_key: str = Field(sa_column=Column(sa.Text, nullable=False, unique=True))
    valid_until: date | None = None


class ResultsInForce(SQLModel, table=True):
    """A unit's declared count of results still in force in a field (the denominator of its progress)."""

    __tablename__ = "backfile_results_in_force"

    unit: str = Field(primary_key=True, max_length=64)
    field: str = Field(primary_key=True, max_length=200)
    results_in_force: int
    note: str | None = Field(default=None, max_length=500)
    declared_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    declared_by: str = Field(max_length=200)


async def backfile_batch(*, session: AsyncSession, batch_id: str) -> BackfileBatch | None:
    """A batch by id."""
    return await session.get(BackfileBatch, batch_id)


async def backfile_batch_of_zip(*, session: AsyncSession, unit: str, sha256: str) -> BackfileBatch | None:
    """The unit's batch made from these very bytes, if any."""
    result = await session.exec(select(BackfileBatch).where(BackfileBatch.unit == unit, BackfileBatch.sha256 == sha256))
    return result.first()


async def batch_documents(*, session: AsyncSession, batch_id: str) -> list[str]:
    """The batch's document ids, in the order of its sheet."""
    result = await session.exec(select(BackfileResult.document_id).where(BackfileResult.batch_id == batch_id).order_by(BackfileResult.line))
    return list(result.all())


async def filed_results(*, session: AsyncSession, keys: list[str]) -> dict[str, str]:
    """Which of these result keys are filed already: key → document id."""
    if not keys:
        return {}
    result = await session.execute(
        sa.select(BackfileResult.result_key, BackfileResult.document_id).where(col(BackfileResult.result_key).in_(keys))
    )
    return {key: document_id for key, document_id in result.all()}


async def declare_results_in_force(*, session: AsyncSession, row: ResultsInForce) -> ResultsInForce:
    """Declare (or declare again) a unit's count for a field: the newest declaration holds."""
    values = row.model_dump()
    await session.execute(
        insert(ResultsInForce).values(**values).on_conflict_do_update(
            index_elements=["unit", "field"], set_={k: v for k, v in values.items() if k not in ("unit", "field")}
        )
    )
    return row


async def backfile_counts(*, session: AsyncSession, unit: str, today: date) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """A unit's declared counts by field, and its back-filed results by field: (still in force, expired) on ``today``."""
    declared = await session.exec(select(ResultsInForce).where(ResultsInForce.unit == unit))
    in_force = sa.or_(col(BackfileResult.valid_until).is_(None), col(BackfileResult.valid_until) >= today)
    filed = await session.execute(
        sa.select(
            BackfileResult.field,
            sa.func.count().filter(in_force),
            sa.func.count().filter(sa.not_(in_force)),
        ).where(BackfileResult.unit == unit).group_by(BackfileResult.field)
    )
    return {r.field: r.results_in_force for r in declared.all()}, {f: (int(n), int(x)) for f, n, x in filed.all()}
