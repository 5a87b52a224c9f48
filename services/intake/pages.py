"""Intake's pages for people, under ``/tra-cuu``: a dossier's status (what the receipt's QR opens), a dossier not
accepted (what the QR of Forms 02 and 03 opens) and the unit's procedure board (niêm yết thủ tục hành chính).

Routes as in ``api.py``: open the transaction, call one handler, map its result, here to a page. The mapping keeps
to what the public lookup (``GET /api/v1/public/dossiers/{code}``) shows: a view is built from the public fields
only, so a template cannot reach the applicant's name, number, address or contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse

from services.intake import domain, handlers, printing, store
from services.intake.caches import procedure_of
from services.intake.deps import Deps
from services.intake.settings import IntakeSettings
from shared.calendar import TimeLimit, TimeUnit
from shared.fees import FeeLine, FeeUnit
from shared.pages import PageRouter, Pages, format_vnd_text
from shared.ratelimit import Policy, rate_limited
from shared.rules import OfficeHours, shipped_book
from shared.status import NationalStatus

TEMPLATES = FilePath(__file__).with_name("templates")
# Built once: the router renders its error pages with it, and ``IntakeDeps.pages`` is this same object.
PAGES = Pages(TEMPLATES)
PREFIX = "/tra-cuu"

router = PageRouter(pages=PAGES, prefix=PREFIX, dependencies=[rate_limited(Policy.PUBLIC)])

UNIT_CODE = r"^[0-9A-Za-z.\-]{1,64}$"


# ---- the dossier's status -------------------------------------------------------------------------------------------

# What each national status means for the person holding the receipt, and how it is coloured (shared/static/motcua.css).
STATUS_TEXT: dict[int, tuple[str, str]] = {
    NationalStatus.REGISTERED: ("", "Hồ sơ đã được đăng ký trực tuyến và đang chờ Bộ phận Một cửa kiểm tra, tiếp nhận."),
    NationalStatus.ACCEPTED: ("", "Hồ sơ đã được tiếp nhận và được chuyển đến bộ phận có thẩm quyền giải quyết."),
    NationalStatus.NOT_ACCEPTED: (
        "stopped",
        "Hồ sơ không đủ điều kiện giải quyết. Lý do đã được thông báo bằng văn bản cho người nộp hồ sơ.",
    ),
    NationalStatus.PROCESSING: ("", "Hồ sơ đang được giải quyết."),
    NationalStatus.SUPPLEMENT_REQUESTED: (
        "warning",
        "Hồ sơ cần bổ sung giấy tờ. Vui lòng xem thông báo yêu cầu bổ sung đã gửi cho ông/bà và nộp bổ sung tại "
        "Bộ phận Một cửa. Thời hạn giải quyết tạm dừng cho đến khi nhận đủ giấy tờ.",
    ),
    NationalStatus.AWAITING_PAYMENT: (
        "warning",
        "Hồ sơ đang chờ ông/bà thực hiện nghĩa vụ tài chính (phí, lệ phí, thuế) theo thông báo đã gửi.",
    ),
    NationalStatus.WITHDRAWN: ("stopped", "Hồ sơ đã được rút theo yêu cầu của người nộp hồ sơ."),
    NationalStatus.STOPPED: ("stopped", "Việc giải quyết hồ sơ đã dừng. Lý do đã được thông báo cho người nộp hồ sơ."),
    NationalStatus.RESOLVED: ("done", "Hồ sơ đã giải quyết xong; kết quả sẵn sàng để trả theo hình thức đã đăng ký."),
    NationalStatus.RETURNED: ("done", "Kết quả giải quyết đã được trả cho người nộp hồ sơ."),
}


@dataclass(frozen=True)
class StatusView:
    """What the status page shows: the public lookup's fields, and where the result is collected."""

    code: str
    procedure_name: str
    status: int
    status_class: str
    status_text: str
    received_at: datetime
    appointment_at: datetime
    collect: str
    office_hours: str | None
    board_url: str


# Ended without a result: what is handed back is the papers and the written answer, not a result.
ENDED_WITHOUT_RESULT = frozenset({NationalStatus.NOT_ACCEPTED, NationalStatus.WITHDRAWN, NationalStatus.STOPPED})


def office_hours(opens: time, closes: time) -> str:
    """ "từ 07 giờ 30 đến 17 giờ 00, các ngày làm việc"."""
    return f"từ {opens:%H} giờ {opens:%M} đến {closes:%H} giờ {closes:%M}, các ngày làm việc."


def where_to_collect(return_channel: str, unit_name: str, status: int = NationalStatus.ACCEPTED) -> tuple[str, bool]:
    """Where the result is collected, and whether the person comes to the one-stop for it."""
    if status in ENDED_WITHOUT_RESULT:
        return f"Hồ sơ không có kết quả giải quyết. Giấy tờ đã nộp và văn bản trả lời (nếu có) được trả tại {unit_name}.", True
    if return_channel == "postal":
        return "Kết quả được gửi qua dịch vụ bưu chính công ích đến địa chỉ đã đăng ký khi nộp hồ sơ.", False
    if return_channel == "online":
        return f"Kết quả được trả trực tuyến qua Cổng Dịch vụ công; bản giấy (nếu có) nhận tại {unit_name}.", True
    return f"Tại {unit_name}. Khi đến nhận, vui lòng mang theo giấy tiếp nhận hồ sơ và hẹn trả kết quả.", True


def status_view(dossier: store.Dossier, settings: IntakeSettings, office: OfficeHours | None = None) -> StatusView:
    """The page's view of a dossier: nothing about the applicant. ``office``: the hours of the rules in force today for
    the unit's province (the route's); without it, the shipped national rules of the dossier's reception day."""
    if office is None:
        office = shipped_book().in_force(dossier.received_at).office
    unit_name = printing.unit_name(settings, dossier.receiving_unit)
    status_class, status_text = STATUS_TEXT.get(dossier.status, ("", ""))
    collect, in_person = where_to_collect(dossier.return_channel, unit_name, dossier.status)
    return StatusView(
        code=dossier.code,
        procedure_name=dossier.procedure_name,
        status=dossier.status,
        status_class=status_class,
        status_text=status_text,
        received_at=dossier.received_at,
        appointment_at=dossier.appointment_at,
        collect=collect,
        office_hours=office_hours(office.opens, office.closes) if in_person else None,
        board_url=f"{printing.board_path(dossier.receiving_unit)}#tt-{dossier.procedure_code}",
    )


@router.get("/ho-so/{code}", name="dossier_status_page")
async def dossier_status(request: Request, code: Annotated[str, Path(max_length=64)], deps: Deps) -> HTMLResponse:
    """The status of a dossier by its code: what the receipt's QR opens."""
    async with deps.db.reading() as tx:
        dossier = await handlers.public_status(tx, code)
        rules = await handlers.rules_of_unit(tx, dossier.receiving_unit, tx.now, deps=deps)
    view = status_view(dossier, deps.settings, rules.office)
    context = {"d": view, "unit_name": printing.unit_name(deps.settings, dossier.receiving_unit), "page_title": f"Hồ sơ {view.code}"}
    return deps.pages.render(request, "status.html", context)


# ---- a dossier not accepted (Forms 02 and 03) -----------------------------------------------------------------------

# What each outcome of a not-accepted record means, in a word and in a sentence (the form itself says what and why).
OUTCOME_TEXT: dict[str, tuple[str, str]] = {
    "incomplete": (
        "Hồ sơ chưa đầy đủ",
        "Hồ sơ chưa được tiếp nhận vì còn thiếu giấy tờ. Các giấy tờ cần bổ sung được ghi trên phiếu yêu cầu bổ sung, "
        "hoàn thiện hồ sơ đã giao cho ông/bà; khi đủ giấy tờ, vui lòng nộp lại hồ sơ.",
    ),
    "refused": (
        "Từ chối tiếp nhận",
        "Hồ sơ không đủ điều kiện tiếp nhận, giải quyết. Lý do được ghi trên phiếu từ chối tiếp nhận đã giao cho ông/bà.",
    ),
    "out_of_scope": (
        "Hướng dẫn nộp tại cơ quan khác",
        "Thủ tục không thuộc thẩm quyền tiếp nhận của đơn vị; ông/bà đã được hướng dẫn nộp hồ sơ tại cơ quan có thẩm quyền.",
    ),
}


@dataclass(frozen=True)
class RecordView:
    """What the page of a not-accepted record shows: the outcome, the procedure, when and where; no one's name."""

    reference: str
    outcome: str
    outcome_text: str
    procedure_name: str | None
    created_at: datetime
    board_url: str | None


def record_view(row: store.IntakeRecord) -> RecordView:
    """The page's view of a record: nothing about the applicant, nor the missing papers or the reason typed on the form."""
    outcome, text = OUTCOME_TEXT[row.outcome]
    board = f"{printing.board_path(row.unit)}#tt-{row.procedure_code}" if row.procedure_code else None
    return RecordView(row.reference, outcome, text, row.procedure_name, row.created_at, board)


@router.get("/phieu/{reference}", name="intake_record_page")
async def intake_record(request: Request, reference: Annotated[str, Path(max_length=80)], deps: Deps) -> HTMLResponse:
    """A dossier the one-stop did not accept: what the QR of Form 02 (incomplete) or Form 03 (refused) opens."""
    async with deps.db.reading() as tx:
        row = await handlers.public_record(tx, reference)
    context = {"r": record_view(row), "unit_name": printing.unit_name(deps.settings, row.unit), "page_title": f"Phiếu {row.reference}"}
    return deps.pages.render(request, "record.html", context)


# ---- the procedure board --------------------------------------------------------------------------------------------

ONLINE_LEVEL_TEXT: dict[domain.OnlineLevel, str] = {
    domain.OnlineLevel.FULL: (
        "Trực tiếp tại Bộ phận Một cửa, qua dịch vụ bưu chính công ích, hoặc trực tuyến toàn trình trên Cổng Dịch vụ công."
    ),
    domain.OnlineLevel.PARTIAL: (
        "Trực tiếp tại Bộ phận Một cửa, qua dịch vụ bưu chính công ích, hoặc trực tuyến một phần trên Cổng Dịch vụ công "
        "(xuất trình bản chính khi nhận kết quả)."
    ),
    domain.OnlineLevel.IN_PERSON: "Trực tiếp tại Bộ phận Một cửa; thủ tục này không thực hiện trực tuyến.",
}
FORM_TEXT = {"original": "bản chính", "copy": "bản sao", "certified_copy": "bản sao chứng thực", "electronic": "bản điện tử"}
# Who a fee line exempts, by the catalog's code; a code not listed here reads "một số đối tượng theo quy định".
EXEMPTION_TEXT = {
    "merit_family": "người có công với cách mạng và thân nhân",
    "poor_household": "hộ nghèo",
    "disability": "người khuyết tật",
    "art4_circular_75_2022": "các đối tượng tại Điều 4 Thông tư số 75/2022/TT-BTC",
}
_PER = {FeeUnit.PER_CASE: "hồ sơ", FeeUnit.PER_PAGE: "trang", FeeUnit.PER_COPY: "bản"}
_DAYS = {TimeUnit.WORKING_DAY: "ngày làm việc", TimeUnit.WORKING_HOUR: "giờ làm việc", TimeUnit.CALENDAR_DAY: "ngày"}


def time_limit_text(limit: TimeLimit, *, cutoff: time) -> str:
    """A processing time in words: "3 ngày làm việc", "Trong ngày làm việc; hồ sơ nhận sau 15 giờ 00 …"."""
    if limit.unit is TimeUnit.SAME_DAY:
        text = "Trong ngày làm việc"
        if limit.cutoff_rule:
            text += f"; hồ sơ nhận sau {cutoff:%H} giờ {cutoff:%M} được trả trong ngày làm việc tiếp theo"
    else:
        text = f"{limit.amount} {_DAYS[limit.unit]} kể từ khi nhận đủ hồ sơ hợp lệ"
    if limit.verification_extra:
        text += f"; trường hợp cần xác minh: thêm {limit.verification_extra} ngày làm việc"
    return text + "."


def fee_text(line: FeeLine) -> str:
    """One fee line in words: "Lệ phí đăng ký tạm trú: 15.000 đồng/hồ sơ; nộp trực tuyến: 7.000 đồng/hồ sơ"."""
    per = _PER[line.unit]
    if line.amount == 0 and not line.online_amount:
        return f"{line.name.removesuffix(' (miễn)')}: không thu."
    parts = [f"{line.name}: {format_vnd_text(line.amount)}/{per}"]
    if line.online_amount is not None and line.online_amount != line.amount:
        parts.append(f"nộp trực tuyến: {format_vnd_text(line.online_amount)}/{per}")
    if line.reduced_from_page and line.reduced_amount is not None:
        parts.append(f"từ trang thứ {line.reduced_from_page} trở đi: {format_vnd_text(line.reduced_amount)}/trang")
    if line.cap_per_copy:
        parts.append(f"tối đa {format_vnd_text(line.cap_per_copy)}/bản")
    if line.exemptions:
        who = ", ".join(EXEMPTION_TEXT.get(e, "một số đối tượng theo quy định") for e in dict.fromkeys(line.exemptions))
        parts.append(f"miễn cho {who}")
    return "; ".join(parts) + "."


@dataclass(frozen=True)
class Paper:
    """A paper the procedure asks for."""

    name: str
    form: str
    mandatory: bool


@dataclass(frozen=True)
class BoardEntry:
    """One procedure as the board shows it."""

    code: str
    anchor: str
    name: str
    field: str
    papers: tuple[Paper, ...]
    time_limit: str
    committed: str | None
    on_the_spot: bool
    steps: tuple[str, ...]
    fees: tuple[str, ...]
    how_to_submit: str


def board_entry(row: store.ProcedureVersion, *, cutoff: time) -> BoardEntry:
    """A catalog row as the board shows it."""
    p = procedure_of(row)
    committed = None
    if p.committed_limit and p.committed_limit != p.time_limit:
        committed = time_limit_text(p.committed_limit, cutoff=cutoff)
    return BoardEntry(
        code=p.code,
        anchor=f"tt-{p.code}",
        name=p.name,
        field=p.field,
        papers=tuple(Paper(c.name, FORM_TEXT.get(c.form, c.form), c.mandatory) for c in p.components),
        time_limit=time_limit_text(p.time_limit, cutoff=cutoff),
        committed=committed,
        on_the_spot=p.on_the_spot,
        steps=tuple(f"{s.agency}: {s.amount} {_DAYS.get(s.unit, 'ngày')}" for s in p.lien_thong_steps),
        fees=tuple(fee_text(line) for line in p.fee_lines) or ("Không thu phí, lệ phí.",),
        how_to_submit=ONLINE_LEVEL_TEXT[p.online_level],
    )


def board_fields(entries: list[BoardEntry]) -> list[tuple[str, str, list[BoardEntry]]]:
    """The entries by field (lĩnh vực), in catalog order: (field, anchor, entries)."""
    fields: dict[str, list[BoardEntry]] = {}
    for entry in entries:
        fields.setdefault(entry.field, []).append(entry)
    return [(name, f"linh-vuc-{n}", rows) for n, (name, rows) in enumerate(fields.items(), start=1)]


@router.get("/niem-yet/{unit}", name="procedure_board_page")
async def procedure_board(
    request: Request,
    unit: Annotated[str, Path(pattern=UNIT_CODE)],
    deps: Deps,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or code")] = None,
) -> HTMLResponse:
    """The procedures in force that the unit's one-stop receives, as posted at its counter."""
    text = (q or "").strip() or None
    async with deps.db.reading() as tx:
        rows = await handlers.list_procedures(tx, field=None, text=text, at=None)
        today = domain.receipt_day(tx.now)
        rules = await handlers.rules_of_unit(tx, unit, tx.now, deps=deps)
    entries = [board_entry(row, cutoff=rules.office.cutoff) for row in rows]
    name = printing.unit_name(deps.settings, unit)
    context: dict[str, Any] = {
        "unit_name": name,
        "page_title": "Niêm yết thủ tục hành chính",
        "fields": board_fields(entries),
        "count": len(entries),
        "q": text or "",
        "today": today,
        "action": printing.board_path(unit),
    }
    return deps.pages.render(request, "board.html", context)
