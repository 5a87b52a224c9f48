"""Reporting routes: the standard report, breakdowns, the accountability list, the 766 index, exports and the timeline."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from services.reporting import domain, exports, handlers, printing
from services.reporting.deps import Deps
from services.reporting.models import (
    BreakdownPeriod,
    BreakdownPublic,
    ChainVerdict,
    DvcqgSyncAttemptPublic,
    DvcqgSyncPublic,
    DvcqgSyncsPublic,
    Index766Public,
    LateDossier,
    LatePublic,
    SummaryPublic,
    TimelineEntry,
    TimelinePublic,
)
from shared.auth import CurrentUser, Principal, require_roles
from shared.roles import OFFICIALS, Role

router = APIRouter(prefix="/api/v1", tags=["reports"])


Unit = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        description="a unit code (QCVN 102); zero groups roll up: 000.00.12.H56 = district 12 of H56 and every unit "
        "below it, H56 = the whole province, 001.05.12.H56 = that unit only",
    ),
]
FromDay = Annotated[date, Query(alias="from", description="first day, Vietnamese calendar (inclusive)")]
ToDay = Annotated[date, Query(alias="to", description="last day, Vietnamese calendar (inclusive)")]
FieldFilter = Annotated[str | None, Query(max_length=200, description="only this field (lĩnh vực)")]
ProcedureFilter = Annotated[str | None, Query(max_length=32, description="only this procedure code")]
ExportFormat = Annotated[Literal["csv", "xlsx"], Query(description="file type")]
AttributionQuery = Annotated[
    Literal["processing", "receiving"],
    Query(description="count the dossiers the unit processes (default) or those its one-stop received, for any unit"),
]


Reader = Annotated[Principal, require_roles(*OFFICIALS)]


async def _summary(deps: Deps, user: Principal, unit: str, first: date, last: date,
                   field: str | None, procedure: str | None, attribution: domain.Attribution = "processing") -> SummaryPublic:  # fmt: skip
    async with deps.db.reading() as tx:
        body = await handlers.summary(tx, unit, first, last, field=field, procedure=procedure, attribution=attribution,
                                      deps=deps, user=user)  # fmt: skip
    return SummaryPublic(unit=unit, from_=first, to=last, field=field, procedure=procedure, **body)


@router.get("/reports/summary", response_model=SummaryPublic, response_model_by_alias=True, summary="Standard report")
async def summary(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay,
    field: FieldFilter = None, procedure: ProcedureFilter = None, attribution: AttributionQuery = "processing",
) -> SummaryPublic:  # fmt: skip
    return await _summary(deps, user, unit, from_, to, field, procedure, attribution)


Dimension = Literal["field", "procedure", "officer", "none"]


async def _breakdown(
    deps: Deps, user: Principal, *, unit: str, by: Dimension, period: domain.PeriodKind | None,
    year: int | None, number: int | None, first: date | None, last: date | None, field: str | None, procedure: str | None,
    attribution: domain.Attribution = "processing",
) -> BreakdownPublic:  # fmt: skip
    async with deps.db.reading() as tx:
        found = await handlers.breakdown(tx, unit, by=by, period=period, year=year, number=number, first=first, last=last,
                                         field=field, procedure=procedure, attribution=attribution, deps=deps, user=user)  # fmt: skip
    data = [
        BreakdownPeriod(label=p["period"].label, from_=p["period"].first, to=p["period"].last, rows=p["rows"], total=p["total"],
                        late_steps=p["late_steps"])  # fmt: skip
        for p in found["periods"]
    ]
    return BreakdownPublic(unit=unit, scope=found["scope"], by=by, period=period or "custom", data=data)


@router.get("/reports/breakdown", response_model=BreakdownPublic, response_model_by_alias=True, summary="The standard table by field, procedure or officer")
async def breakdown(
    deps: Deps, user: Reader, unit: Unit,
    by: Annotated[Dimension, Query(description="one row per field, procedure or officer (the dossier's handler)")] = "field",
    period: Annotated[domain.PeriodKind | None, Query(description="every week (ISO), month, quarter or the year of 'year'")] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    number: Annotated[int | None, Query(ge=1, le=53, description="only this week, month or quarter of the year")] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    field: FieldFilter = None, procedure: ProcedureFilter = None, attribution: AttributionQuery = "processing",
) -> BreakdownPublic:  # fmt: skip
    return await _breakdown(deps, user, unit=unit, by=by, period=period, year=year, number=number, first=from_,
                            last=to, field=field, procedure=procedure, attribution=attribution)  # fmt: skip


async def _late(deps: Deps, user: Principal, unit: str, first: date, last: date, field: str | None, procedure: str | None,
                attribution: domain.Attribution = "processing") -> LatePublic:  # fmt: skip
    async with deps.db.reading() as tx:
        found = await handlers.late_list(tx, unit, first, last, field=field, procedure=procedure, attribution=attribution,
                                         deps=deps, user=user)  # fmt: skip
    rows = found["data"]
    return LatePublic(unit=unit, scope=found["scope"], from_=first, to=last, data=[LateDossier(**r) for r in rows], count=len(rows),
                      late_steps=found["late_steps"])  # fmt: skip


@router.get("/reports/late", response_model=LatePublic, response_model_by_alias=True, summary="Accountability list: every late dossier")
async def late(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay, field: FieldFilter = None, procedure: ProcedureFilter = None,
    attribution: AttributionQuery = "processing",
) -> LatePublic:
    return await _late(deps, user, unit, from_, to, field, procedure, attribution)


Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM", examples=["2026-11"])]


async def _index(deps: Deps, user: Principal, unit: str, month: str) -> Index766Public:
    async with deps.db.reading() as tx:
        body = await handlers.index_766(tx, unit, month, deps=deps, user=user)
    return Index766Public(unit=unit, month=month, **body)


@router.get("/reports/index-766", response_model=Index766Public, summary="The 766 index of a unit and month")
async def index_766(deps: Deps, user: Reader, unit: Unit, month: Month) -> Index766Public:
    return await _index(deps, user, unit, month)


# ---- exports: the same reports as CSV or XLSX, with Vietnamese headers ---------------------------------------------

_FILE = {200: {"content": {exports.CSV_TYPE: {}, exports.XLSX_TYPE: {}}, "description": "the report as a file"}}


def _download(file: exports.ReportFile) -> Response:
    return Response(file.body, media_type=file.media_type, headers={"Content-Disposition": f'attachment; filename="{file.name}"'})


@router.get("/reports/summary/export", responses=_FILE, response_class=Response, summary="Standard report as CSV or XLSX")
async def summary_export(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay, format: ExportFormat = "xlsx",
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _summary(deps, user, unit, from_, to, field, procedure)
    return _download(exports.summary_file(report, format))


@router.get("/reports/breakdown/export", responses=_FILE, response_class=Response, summary="Breakdown as CSV or XLSX")
async def breakdown_export(
    deps: Deps, user: Reader, unit: Unit,
    by: Annotated[Dimension, Query()] = "field",
    period: Annotated[domain.PeriodKind | None, Query()] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    number: Annotated[int | None, Query(ge=1, le=53)] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    format: ExportFormat = "xlsx", field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _breakdown(deps, user, unit=unit, by=by, period=period, year=year, number=number, first=from_,
                              last=to, field=field, procedure=procedure)  # fmt: skip
    return _download(exports.breakdown_file(report, format))


@router.get("/reports/late/export", responses=_FILE, response_class=Response, summary="Accountability list as CSV or XLSX")
async def late_export(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay, format: ExportFormat = "xlsx",
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _late(deps, user, unit, from_, to, field, procedure)
    return _download(exports.late_file(report, format))


@router.get("/reports/index-766/export", responses=_FILE, response_class=Response, summary="The 766 index as CSV or XLSX")
async def index_766_export(deps: Deps, user: Reader, unit: Unit, month: Month, format: ExportFormat = "xlsx") -> Response:
    report = await _index(deps, user, unit, month)
    return _download(exports.index_766_file(report, format))


# ---- the register, "Sổ theo dõi hồ sơ" (Form 07; 06 before July 2025) ----------------------------------------------

_PDF_TYPE = "application/pdf"


@router.get("/reports/register.xlsx", responses={200: {"content": {exports.XLSX_TYPE: {}}, "description": "the register"}},
            response_class=Response, summary="The register (Sổ theo dõi hồ sơ) of a unit and period as XLSX")  # fmt: skip
async def register_xlsx(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay, attribution: AttributionQuery = "processing"
) -> Response:
    async with deps.db.reading() as tx:
        found = await handlers.register(tx, unit, from_, to, attribution=attribution, deps=deps, user=user)
    file = exports.register_xlsx(number=found["number"], title=found["title"], unit=unit, unit_name=found["unit_name"],
                                 period=found["period"], lines=found["lines"])  # fmt: skip
    return _download(file)


@router.get("/reports/register.pdf", responses={200: {"content": {_PDF_TYPE: {}}, "description": "the register"}},
            response_class=Response, summary="The register (Sổ theo dõi hồ sơ) of a unit and period as PDF")  # fmt: skip
async def register_pdf(
    deps: Deps, user: Reader, unit: Unit, from_: FromDay, to: ToDay, attribution: AttributionQuery = "processing"
) -> Response:
    async with deps.db.reading() as tx:
        found = await handlers.register(tx, unit, from_, to, attribution=attribution, deps=deps, user=user)
    body = await asyncio.to_thread(printing.render_register, printing.Register(**found))
    name = f"so-theo-doi-ho-so-{unit}-{from_:%Y%m%d}-{to:%Y%m%d}.pdf"
    return _download(exports.ReportFile(name=name, media_type=_PDF_TYPE, body=body))


# ---- a dossier's timeline ---------------------------------------------------------------------------------------------


@router.get("/dossiers/{code}/timeline", response_model=TimelinePublic, summary="A dossier's events in the order they happened")
async def timeline(code: str, deps: Deps, user: CurrentUser) -> TimelinePublic:
    async with deps.db.reading() as tx:
        records = await handlers.timeline(tx, code, deps=deps, user=user)
        entries = [TimelineEntry.model_validate(r, from_attributes=True) for r in records]
    return TimelinePublic(dossier_code=code, data=entries, count=len(entries))


@router.get("/dossiers/{code}/timeline/verify", response_model=ChainVerdict, summary="Check the hash chain")
async def verify(code: str, deps: Deps, user: CurrentUser) -> ChainVerdict:
    async with deps.db.reading() as tx:
        verdict = await handlers.verify(tx, code, deps=deps, user=user)
    return ChainVerdict(dossier_code=code, **verdict)


# ---- the DVCQG sync ---------------------------------------------------------------------------------------------------


def _sync(view: handlers.SyncView) -> DvcqgSyncPublic:
    row, attempts, on_time = view
    return DvcqgSyncPublic.model_validate(
        {**row.model_dump(), "on_time": on_time,
         "history": [DvcqgSyncAttemptPublic.model_validate(a, from_attributes=True) for a in attempts]}
    )  # fmt: skip


@router.get(
    "/dossiers/{code}/dvcqg-syncs", response_model=DvcqgSyncsPublic, tags=["dvcqg"],
    summary="A dossier's syncs to the national portal (DVCQG): each attempt, its payload and the LGSP's answer",
)  # fmt: skip
async def dossier_syncs(code: str, deps: Deps, user: CurrentUser) -> DvcqgSyncsPublic:
    async with deps.db.reading() as tx:
        views = await handlers.sync_history(tx, code, deps=deps, user=user)
    data = [_sync(v) for v in views]
    return DvcqgSyncsPublic(data=data, count=len(data))


@router.get(
    "/dvcqg-syncs", response_model=DvcqgSyncsPublic, tags=["dvcqg"],
    summary="The syncs of a unit in a state (given_up: what an admin may replay), oldest status change first",
)  # fmt: skip
async def unit_syncs(
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.ADMIN, Role.AUDITOR)],
    unit: Unit,
    state: Annotated[Literal["pending", "accepted", "given_up", "superseded"], Query(description="the syncs' state")] = "given_up",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DvcqgSyncsPublic:
    async with deps.db.reading() as tx:
        views = await handlers.list_syncs(tx, unit, state, limit, deps=deps, user=user)
    data = [_sync(v) for v in views]
    return DvcqgSyncsPublic(data=data, count=len(data))


@router.post(
    "/dvcqg-syncs/{sync_id}/replay", response_model=DvcqgSyncPublic, tags=["dvcqg"],
    summary="Send a given-up sync again (admin); the dossier's later syncs follow it",
)  # fmt: skip
async def replay_sync(
    sync_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the sync's id (in a dossier's dvcqg-syncs)")],
    deps: Deps,
    user: Annotated[Principal, require_roles(Role.ADMIN)],
) -> DvcqgSyncPublic:
    async with deps.db.unit_of_work(actor=user.subject) as tx:
        view = await handlers.replay_sync(tx, sync_id, deps=deps, user=user)
    return _sync(view)
