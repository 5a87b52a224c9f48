"""Reporting routes: the standard report, breakdowns, the accountability list, the 766 index, exports and the timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, create_model

from services.reporting import domain, exports, handlers, store
from shared.auth import CurrentUser, Principal, Role, require_roles
from shared.errors import NotFound, Problem
from shared.service import DbDep

router = APIRouter(prefix="/api/v1", tags=["reports"])

OFFICIALS = (Role.CLERK, Role.SPECIALIST, Role.LEADER, Role.ADMIN, Role.AUDITOR)


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

ReportCounts = create_model(  # type: ignore[call-overload]
    "ReportCounts", **{name: (int, Field(description=label)) for name, label in domain.COUNTS.items()}
)


class RatePublic(BaseModel):
    """A plan indicator (DOMAIN §4.4): numerator / denominator, as a percent (null when the denominator is 0)."""

    indicator: str
    label: str
    numerator: int
    denominator: int
    percent: float | None
    target: float | None
    met: bool | None


class SummaryPublic(ReportCounts):  # type: ignore[misc, valid-type]
    """The standard report's counts for one unit (or roll-up) and period, and the plan's rates."""

    unit: str
    scope: str = Field(description="the unit code as a roll-up (zero groups cover every unit below)")
    from_: date = Field(serialization_alias="from")
    to: date
    field: str | None
    procedure: str | None
    rates: dict[str, RatePublic]


class BreakdownRow(ReportCounts):  # type: ignore[misc, valid-type]
    """One row of a breakdown: a field, a procedure or an officer."""

    key: str
    name: str
    rates: dict[str, RatePublic]


class BreakdownPeriod(BaseModel):
    """One period of a breakdown."""

    label: str
    from_: date = Field(serialization_alias="from")
    to: date
    rows: list[BreakdownRow]
    total: BreakdownRow


class BreakdownPublic(BaseModel):
    """The standard table by field, procedure or officer, per week, month, quarter or year."""

    unit: str
    scope: str
    by: str
    period: str
    data: list[BreakdownPeriod]


class LateDossier(BaseModel):
    """A late dossier, who held it when it went late, and the apology (DOMAIN §8.3)."""

    code: str
    unit: str
    procedure_code: str | None
    procedure_name: str | None
    field: str
    received_at: datetime
    due_at_original: datetime | None
    due_at: datetime | None
    late_at: datetime | None
    late_reason: str
    state: Literal["resolved_late", "withdrawn_late", "pending_overdue"]
    closed_at: datetime | None
    holder_unit: str | None
    holder_officer: str | None
    apology_issued: bool
    apology_at: datetime | None
    apology_timely: bool | None
    new_appointment_at: datetime | None
    explained: bool


class LatePublic(BaseModel):
    """The accountability list of one unit and period."""

    unit: str
    scope: str
    from_: date = Field(serialization_alias="from")
    to: date
    data: list[LateDossier]
    count: int


class IndicatorPublic(BaseModel):
    """One 766 indicator."""

    code: str
    name: str
    numerator: int
    denominator: int
    percent: float | None
    max_points: float
    full_at_percent: float
    points: float | None


class NotComputable(BaseModel):
    """An indicator only the national system computes."""

    code: str
    reason: str


class ProcessingTime(BaseModel):
    """766 indicator 2.2 (monitoring): average working days to process, per procedure."""

    procedure_code: str
    procedure_name: str
    dossiers: int
    average_working_days: float | None


class Index766Public(BaseModel):
    """The 766 index of one unit and month (DOMAIN §4.2-§4.3)."""

    unit: str
    scope: str
    month: str
    indicators: list[IndicatorPublic]
    total: float
    max_points: float
    scaled: float | None = Field(description="total × 100 / the maximum of the indicators computed here")
    band: str | None
    not_computable: list[NotComputable]
    average_processing: list[ProcessingTime]


class TimelineEntry(BaseModel):
    """One event of a dossier's stream."""

    sequence: int
    event_id: str
    type: str
    source: str
    time: datetime
    recorded_at: datetime
    actor: str | None
    trace_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class TimelinePublic(BaseModel):
    """A dossier's events in order."""

    dossier_code: str
    data: list[TimelineEntry]
    count: int


class ChainVerdict(BaseModel):
    """Whether a dossier's hash chain is intact."""

    dossier_code: str
    intact: bool
    events: int
    first_broken_sequence: int | None
    head_hash: str | None


def _rules(request: Request) -> handlers.ReportRules:
    return request.app.state.report_rules


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


Reader = Annotated[Principal, require_roles(*OFFICIALS)]


async def _summary(request: Request, db: DbDep, user: Principal, unit: str, first: date, last: date,
                   field: str | None, procedure: str | None) -> SummaryPublic:  # fmt: skip
    scope, period = _scope(user, unit), _period(first, last)
    body = await handlers.summary(db, _rules(request), scope=scope, period=period, field=field, procedure=procedure)
    return SummaryPublic(unit=unit, scope=scope.code, from_=first, to=last, field=field, procedure=procedure, **body)


@router.get("/reports/summary", response_model=SummaryPublic, response_model_by_alias=True, summary="Standard report")
async def summary(
    request: Request, db: DbDep, user: Reader, unit: Unit, from_: FromDay, to: ToDay,
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> SummaryPublic:  # fmt: skip
    return await _summary(request, db, user, unit, from_, to, field, procedure)


Dimension = Literal["field", "procedure", "officer", "none"]


async def _breakdown(
    request: Request, db: DbDep, user: Principal, *, unit: str, by: Dimension, period: domain.PeriodKind | None,
    year: int | None, number: int | None, first: date | None, last: date | None, field: str | None, procedure: str | None,
) -> BreakdownPublic:  # fmt: skip
    scope = _scope(user, unit)
    if period is not None:
        if year is None or first is not None or last is not None:
            raise Problem(422, "validation-error", "The request is not valid", "period: give 'year' (and optionally 'number'), not 'from'/'to'.")
        try:
            chosen = domain.periods(period, year, number)
        except ValueError as exc:
            raise Problem(422, "validation-error", "The request is not valid", f"number: {exc}") from exc
    elif first is not None and last is not None:
        chosen = [_period(first, last)]
    else:
        raise Problem(422, "validation-error", "The request is not valid", "give 'period' and 'year', or 'from' and 'to'.")
    found = await handlers.breakdown(db, _rules(request), scope=scope, periods=chosen, by=by, field=field, procedure=procedure)
    data = [
        BreakdownPeriod(label=p["period"].label, from_=p["period"].first, to=p["period"].last, rows=p["rows"], total=p["total"])
        for p in found
    ]
    return BreakdownPublic(unit=unit, scope=scope.code, by=by, period=period or "custom", data=data)


@router.get("/reports/breakdown", response_model=BreakdownPublic, response_model_by_alias=True, summary="The standard table by field, procedure or officer")
async def breakdown(
    request: Request, db: DbDep, user: Reader, unit: Unit,
    by: Annotated[Dimension, Query(description="one row per field, procedure or officer (the dossier's handler)")] = "field",
    period: Annotated[domain.PeriodKind | None, Query(description="every week (ISO), month, quarter or the year of 'year'")] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    number: Annotated[int | None, Query(ge=1, le=53, description="only this week, month or quarter of the year")] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> BreakdownPublic:  # fmt: skip
    return await _breakdown(request, db, user, unit=unit, by=by, period=period, year=year, number=number, first=from_,
                            last=to, field=field, procedure=procedure)  # fmt: skip


async def _late(db: DbDep, user: Principal, unit: str, first: date, last: date, field: str | None, procedure: str | None) -> LatePublic:
    scope, period = _scope(user, unit), _period(first, last)
    rows = await handlers.late_list(db, scope=scope, period=period, field=field, procedure=procedure)
    return LatePublic(unit=unit, scope=scope.code, from_=first, to=last, data=[LateDossier(**r) for r in rows], count=len(rows))


@router.get("/reports/late", response_model=LatePublic, response_model_by_alias=True, summary="Accountability list: every late dossier")
async def late(
    db: DbDep, user: Reader, unit: Unit, from_: FromDay, to: ToDay, field: FieldFilter = None, procedure: ProcedureFilter = None
) -> LatePublic:
    return await _late(db, user, unit, from_, to, field, procedure)


Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM", examples=["2026-11"])]


async def _index(request: Request, db: DbDep, user: Principal, unit: str, month: str) -> Index766Public:
    scope = _scope(user, unit)
    year, number = (int(x) for x in month.split("-"))
    body = await handlers.index_766(db, _rules(request), scope=scope, period=domain.periods("month", year, number)[0])
    return Index766Public(unit=unit, scope=scope.code, month=month, **body)


@router.get("/reports/index-766", response_model=Index766Public, summary="The 766 index of a unit and month")
async def index_766(request: Request, db: DbDep, user: Reader, unit: Unit, month: Month) -> Index766Public:
    return await _index(request, db, user, unit, month)


# ---- exports: the same reports as CSV or XLSX, with Vietnamese headers ---------------------------------------------

_FILE = {200: {"content": {exports.CSV_TYPE: {}, exports.XLSX_TYPE: {}}, "description": "the report as a file"}}
_DIMENSION_HEADERS = {"field": "Lĩnh vực", "procedure": "Mã TTHC", "officer": "Cán bộ xử lý", "none": ""}
_RATE_HEADERS = [f"{label} (%)" for _, _, label, _, _ in domain.RATES]


def _file(kind: str, fmt: str, title: str, caption: str, headers: list[str], rows: list[list[Any]]) -> Response:
    if fmt == "csv":
        body, media = exports.to_csv(headers, rows), exports.CSV_TYPE
    else:
        body, media = exports.to_xlsx(title, headers, rows, caption=caption), exports.XLSX_TYPE
    name = f"{kind}.{fmt}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _figures(row: Any) -> list[Any]:
    values = row.model_dump()
    return [values[k] for k in domain.COUNTS] + [values["rates"][k]["percent"] for k, *_ in domain.RATES]


@router.get("/reports/summary/export", responses=_FILE, response_class=Response, summary="Standard report as CSV or XLSX")
async def summary_export(
    request: Request, db: DbDep, user: Reader, unit: Unit, from_: FromDay, to: ToDay, format: ExportFormat = "xlsx",
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _summary(request, db, user, unit, from_, to, field, procedure)
    headers = ["Đơn vị", "Từ ngày", "Đến ngày", "Lĩnh vực", "Mã TTHC", *domain.COUNTS.values(), *_RATE_HEADERS]
    row = [unit, from_, to, field, procedure, *_figures(report)]
    caption = f"Báo cáo tình hình giải quyết TTHC: {unit}, {from_:%d/%m/%Y} - {to:%d/%m/%Y}"
    return _file("bao-cao-tong-hop", format, "Tổng hợp", caption, headers, [row])


@router.get("/reports/breakdown/export", responses=_FILE, response_class=Response, summary="Breakdown as CSV or XLSX")
async def breakdown_export(
    request: Request, db: DbDep, user: Reader, unit: Unit,
    by: Annotated[Dimension, Query()] = "field",
    period: Annotated[domain.PeriodKind | None, Query()] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    number: Annotated[int | None, Query(ge=1, le=53)] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    format: ExportFormat = "xlsx", field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _breakdown(request, db, user, unit=unit, by=by, period=period, year=year, number=number, first=from_,
                              last=to, field=field, procedure=procedure)  # fmt: skip
    headers = ["Kỳ báo cáo", "Từ ngày", "Đến ngày", _DIMENSION_HEADERS[by] or "Nhóm", "Tên", *domain.COUNTS.values(), *_RATE_HEADERS]
    rows = [
        [p.label, p.from_, p.to, r.key, r.name, *_figures(r)] for p in report.data for r in [*p.rows, p.total]
    ]
    caption = f"Báo cáo chi tiết theo {(_DIMENSION_HEADERS[by] or 'kỳ').lower()}: {unit}"
    return _file("bao-cao-chi-tiet", format, "Chi tiết", caption, headers, rows)


@router.get("/reports/late/export", responses=_FILE, response_class=Response, summary="Accountability list as CSV or XLSX")
async def late_export(
    db: DbDep, user: Reader, unit: Unit, from_: FromDay, to: ToDay, format: ExportFormat = "xlsx",
    field: FieldFilter = None, procedure: ProcedureFilter = None,
) -> Response:  # fmt: skip
    report = await _late(db, user, unit, from_, to, field, procedure)
    rows = [[getattr(d, k) for k in domain.LATE_COLUMNS] for d in report.data]
    caption = f"Danh sách hồ sơ trễ hạn: {unit}, {from_:%d/%m/%Y} - {to:%d/%m/%Y}"
    return _file("ho-so-tre-han", format, "Trễ hạn", caption, list(domain.LATE_COLUMNS.values()), rows)


@router.get("/reports/index-766/export", responses=_FILE, response_class=Response, summary="The 766 index as CSV or XLSX")
async def index_766_export(
    request: Request, db: DbDep, user: Reader, unit: Unit, month: Month, format: ExportFormat = "xlsx"
) -> Response:
    report = await _index(request, db, user, unit, month)
    headers = ["Mã chỉ tiêu", "Chỉ tiêu", "Tử số", "Mẫu số", "Tỷ lệ (%)", "Điểm tối đa", "Đạt điểm tối đa khi tỷ lệ (%)", "Điểm"]
    rows: list[list[Any]] = [
        [i.code, i.name, i.numerator, i.denominator, i.percent, i.max_points, i.full_at_percent, i.points] for i in report.indicators
    ]
    rows.append(["TONG", "Tổng điểm các chỉ tiêu tính được", None, None, None, report.max_points, None, report.total])
    rows.append(["QUY_DOI", f"Quy đổi thang 100 (xếp loại: {report.band or ''})", None, None, None, 100, None, report.scaled])
    caption = f"Chỉ số 766: {unit}, tháng {month}"
    return _file("chi-so-766", format, "Chỉ số 766", caption, headers, rows)


async def _visible_timeline(db: DbDep, user: Principal, code: str, *, by_time: bool) -> list[store.EventRecord]:
    if not user.roles & set(OFFICIALS):
        raise Problem(403, "role-forbidden", "Role not allowed", "Only officials and auditors read timelines.")
    async with db.sessions() as session:
        records = await store.timeline(session=session, dossier_code=code, by_time=by_time)
    if not records or not domain.token_covers(user.units, domain.parse_scope(records[0].unit)):
        raise NotFound("dossier timeline", code)
    return records


@router.get("/dossiers/{code}/timeline", response_model=TimelinePublic, summary="A dossier's events in the order they happened")
async def timeline(code: str, db: DbDep, user: CurrentUser) -> TimelinePublic:
    records = await _visible_timeline(db, user, code, by_time=True)
    entries = [TimelineEntry.model_validate(r, from_attributes=True) for r in records]
    return TimelinePublic(dossier_code=code, data=entries, count=len(entries))


@router.get("/dossiers/{code}/timeline/verify", response_model=ChainVerdict, summary="Check the hash chain")
async def verify(code: str, db: DbDep, user: CurrentUser) -> ChainVerdict:
    records = await _visible_timeline(db, user, code, by_time=False)
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
    return ChainVerdict(
        dossier_code=code,
        intact=broken is None,
        events=len(records),
        first_broken_sequence=broken,
        head_hash=records[-1].hash if records else None,
    )
