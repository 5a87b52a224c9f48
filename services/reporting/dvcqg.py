"""The DVCQG sync, pure (no I/O): which syncs a dossier event owes, and what each one says (DOMAIN.md §7).

Reporting sees every status change of every dossier of every channel (it consumes every producer's events), so the
sync to the national portal lives here. Each consumed event may owe syncs, queued in the event's transaction:

- a **status push** (``DongBoHoSoMC``) when the event moves the dossier's national status (``TrangThaiHoSo``),
  or is one of the ``update_events`` that change what the portal shows without changing the status (a supplement's
  new appointment);
- a **progress step** (``CapNhatTienDoHoSoMC``) for a processing step (assignment, transfer, approval).

What a push says is built when it is sent, from the dossier's events as reporting recorded them (``dossier_state``
folds them, ``dossier_payload`` maps them): the status and its time are the sync's own, everything else (fees,
papers, supplements, results) is what is known by then, so a push never says less than the one before it.

Every name the national side sees is configuration (``SyncMapping``, from ``REPORTING_DVCQG_MAPPING``): service
names, status and channel codes, procedure, field and unit codes, the payment and e-identity codes, and the field
names themselves (``field_names`` renames any key). They are observed in public implementations (OpenCPS
``DVCQGIntegrationAction``, DOMAIN §7), not a published specification.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any

from shared.clock import VN_TZ
from shared.status import NationalStatus

RECEIVED = "vn.motcua.dossier.received.v1"
SUPPLEMENTED = "vn.motcua.dossier.supplemented.v1"
WITHDRAWN = "vn.motcua.dossier.withdrawn.v1"
ASSIGNED = "vn.motcua.case.assigned.v1"
SUPPLEMENT_REQUESTED = "vn.motcua.case.supplement_requested.v1"
CLOCK_RESUMED = "vn.motcua.case.clock_resumed.v1"
TRANSFERRED = "vn.motcua.case.transferred.v1"
TRANSFER_RETURNED = "vn.motcua.case.transfer_returned.v1"
APPROVED = "vn.motcua.case.approved.v1"
REJECTED = "vn.motcua.case.rejected.v1"
STOPPED = "vn.motcua.case.stopped.v1"
PAYMENT_AWAITED = "vn.motcua.case.payment_awaited.v1"
RESULT_READY = "vn.motcua.case.result_ready.v1"
RETURNED = "vn.motcua.case.returned.v1"
APOLOGY = "vn.motcua.case.apology_issued.v1"
DIGITIZED = "vn.motcua.document.digitized.v1"
SIGNED = "vn.motcua.document.signed.v1"
REUSED = "vn.motcua.document.reused.v1"
PAYMENT_REQUESTED = "vn.motcua.payment.requested.v1"
PAYMENT_CONFIRMED = "vn.motcua.payment.confirmed.v1"
PAYMENT_REFUNDED = "vn.motcua.payment.refunded.v1"

STATUS, PROGRESS = "status", "progress"
PENDING, ACCEPTED, GIVEN_UP, SUPERSEDED = "pending", "accepted", "given_up", "superseded"
STATES = (PENDING, ACCEPTED, GIVEN_UP, SUPERSEDED)

# The defaults of REPORTING_DVCQG_MAPPING (DOMAIN §7); a province's JSON replaces any top-level key.
DEFAULT_MAPPING: dict[str, Any] = {
    "services": {"lookup": "TraCuuHoSo", "push": "DongBoHoSoMC", "progress": "CapNhatTienDoHoSoMC"},
    "push_data_key": "data",
    "progress_data_key": "data",
    "updating_key": "isUpdating",
    "updating_values": ["False", "True"],  # the first push of a dossier, every later one
    "lookup_key": "MaHoSo",
    # TraCuuHoSo found the dossier when its answer has a non-empty one of these; a refusal with one of the
    # not-found codes means "no such dossier" (then the first push creates it).
    "lookup_found_keys": ["result", "data", "HoSo"],
    "lookup_not_found_codes": [],
    # National status (TrangThaiHoSo) each event moves the dossier to (DOMAIN §7.3, as intake pushes them).
    "status_events": {
        RECEIVED: 2, SUPPLEMENTED: 4, WITHDRAWN: 7, ASSIGNED: 4, SUPPLEMENT_REQUESTED: 5, CLOCK_RESUMED: 4,
        TRANSFERRED: 4, TRANSFER_RETURNED: 4, APPROVED: 4, REJECTED: 3, STOPPED: 8, PAYMENT_AWAITED: 6,
        RESULT_READY: 9, RETURNED: 10,
    },
    # Pushed even when the status stays: they change what the portal shows (the supplement's date, its new
    # appointment). Both, so the pushes are the same whichever of intake's and workflow's topics reporting reads first.
    "update_events": [SUPPLEMENTED, CLOCK_RESUMED],
    # Processing steps (CapNhatTienDoHoSoMC), with the words of NoiDungXuLy ({placeholders} from the event).
    "progress_events": {
        ASSIGNED: "Phân công xử lý: {department}",
        TRANSFERRED: "Chuyển liên thông đến {to_agency}",
        TRANSFER_RETURNED: "Nhận lại kết quả liên thông từ {from_agency}",
        APPROVED: "Lãnh đạo phê duyệt kết quả",
    },
    # An online dossier with its submission time is first pushed as status 1 (Mới đăng ký) at that time.
    "registered_status": True,
    "channels": {"counter": 1, "online": 2, "postal": 3},  # KenhThucHien
    # DuocThanhToanTrucTuyen: 0 not paid online, 1 paid on DVCQG (its payment platform), 2 through the local gateway.
    "online_payment": {"none": 0, "gateway": 2, "providers": {"dvcqg": 1, "paygov": 1}},
    "identification": {"vneid_level2": 1, "chip_card": 0, "none": 0},  # TaiKhoanDuocXacThucVoiVNeID
    "procedure_codes": {},  # local procedure code → MaTTHC (unlisted: the same code)
    "field_codes": {},  # the procedure's field (lĩnh vực) → MaLinhVuc (unlisted: empty)
    "unit_codes": {},  # unit code → MaDinhDanhDV (unlisted: the unit code, a QCVN 102 identifier already)
    "unit_names": {},  # unit code → DonViXuLy (unlisted: none)
    "fee_kinds": {"lệ phí": 2, "phí": 1},  # LoaiPhiLePhi by how the fee line's name begins (lowercase; longest first)
    "fee_collection": {"online": 2, "counter": 1},  # HinhThucThu of a paid line
    "document_url": "",  # DuongDanTaiTepTin / DuongDanTepTinKetQua: "{document_id}" filled; empty: not sent
    "field_names": {},  # renames of any key the payloads carry: {"KenhThucHien": "HinhThuc"}
}  # fmt: skip


@dataclass(frozen=True)
class SyncMapping:
    """The national side's names and codes (``DEFAULT_MAPPING`` with the province's corrections)."""

    values: Mapping[str, Any]

    @classmethod
    def of(cls, overrides: Mapping[str, Any] | None = None) -> SyncMapping:
        """The defaults with ``overrides`` replacing whole top-level keys; an unknown key is an error."""
        unknown = sorted(set(overrides or {}) - set(DEFAULT_MAPPING))
        if unknown:
            raise ValueError(f"REPORTING_DVCQG_MAPPING: unknown keys {unknown}")
        return cls({**DEFAULT_MAPPING, **(overrides or {})})

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def service(self, purpose: str) -> str:
        """The service name of ``lookup``, ``push`` or ``progress``."""
        return str(self.values["services"][purpose])


# ---- what an event owes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owed:
    """One sync an event owes: a status push or a progress step, the status and when it changed."""

    kind: str
    status: int
    changed_at: datetime
    step: str = ""  # a progress step: the event type

    def key(self, code: str) -> str:
        """The idempotency key: dossier code, status and time (and the step of a progress row)."""
        stamp = self.changed_at.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S%f")
        base = f"{code}:{self.status}:{stamp}"
        return base if self.kind == STATUS else f"{base}:{self.step.rsplit('.', 2)[-2]}"


def owed(event_type: str, data: Mapping[str, Any], occurred_at: datetime, *, status_before: int | None, mapping: SyncMapping) -> list[Owed]:
    """The syncs one event owes, given the dossier's national status before it (None: no status yet).

    A status push when the status changes (or the event is an update event); a progress step for a processing
    step; ``dossier.received`` of an online dossier with its submission time first owes status 1 at that time.
    """
    out: list[Owed] = []
    status = mapping["status_events"].get(event_type)
    if event_type == RECEIVED:
        submitted = _instant(data.get("submitted_at"))
        if mapping["registered_status"] and data.get("channel") == "online" and submitted is not None and status_before is None:
            out.append(Owed(STATUS, int(NationalStatus.REGISTERED), min(submitted, occurred_at)))
            status_before = int(NationalStatus.REGISTERED)
    if status is not None and (status != status_before or event_type in mapping["update_events"]):
        out.append(Owed(STATUS, int(status), occurred_at))
    if event_type in mapping["progress_events"]:
        current = int(status) if status is not None else (status_before or int(NationalStatus.PROCESSING))
        out.append(Owed(PROGRESS, current, occurred_at, step=event_type))
    return out


# ---- a dossier's state, folded from its events ----------------------------------------------------------------------


@dataclass
class Supplement:
    """One supplement request and what became of it."""

    number: int
    requested_at: datetime
    requested_by: str | None
    reason: str
    items: list[str]
    due_before: datetime | None
    supplemented_at: datetime | None = None
    due_after: datetime | None = None


@dataclass
class Paper:
    """A paper of the dossier (submitted, or a result)."""

    document_id: str
    name: str
    component_code: str | None
    paper_code: str | None
    digitized: bool = False
    from_store: bool = False
    signed: bool = False


@dataclass
class DossierState:
    """What the national portal is told about a dossier, folded from reporting's record of its events."""

    code: str
    unit: str = ""
    procedure_code: str = ""
    procedure_name: str = ""
    field: str = ""
    channel: str | None = None
    applicant_name: str = ""
    received_at: datetime | None = None
    submitted_at: datetime | None = None
    appointment_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    refused_at: datetime | None = None
    identification: str | None = None
    population_data_reused: bool | None = None
    fee_due: int = 0
    fee_lines: list[dict[str, Any]] = dc_field(default_factory=list)
    payments: dict[str, dict[str, Any]] = dc_field(default_factory=dict)
    papers: dict[str, Paper] = dc_field(default_factory=dict)
    results: dict[str, Paper] = dc_field(default_factory=dict)
    supplements: list[Supplement] = dc_field(default_factory=list)
    reused_components: int = 0

    @property
    def known(self) -> bool:
        """Whether its reception is known (a push needs the procedure and the channel)."""
        return self.received_at is not None


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def dossier_state(
    code: str, events: Iterable[tuple[str, Mapping[str, Any], str | None]], *, as_of: datetime | None = None
) -> DossierState:
    """Fold a dossier's events ``(type, data, actor)``, in the order they happened, into what the portal is told.

    ``as_of``: only what had happened by then (a push tells the dossier as it was at its status change; a push sent
    late does not announce the return with the result-ready status). The reception is always known.
    """
    s = DossierState(code=code)
    for type_, data, actor in events:
        at = _instant(data.get("occurred_at"))
        if as_of is not None and at is not None and at > as_of and type_ != RECEIVED:
            continue
        if type_ == RECEIVED:
            s.unit = str(data.get("unit") or s.unit)
            s.procedure_code, s.procedure_name = str(data["procedure_code"]), str(data.get("procedure_name") or "")
            s.field = str(data.get("procedure_field") or s.field or "")
            s.channel, s.applicant_name = data.get("channel"), str(data.get("applicant_name") or "")
            s.received_at, s.submitted_at = _instant(data.get("received_at")), _instant(data.get("submitted_at"))
            s.appointment_at = s.appointment_at or _instant(data.get("appointment_at"))
            s.identification, s.population_data_reused = data.get("identification"), data.get("population_data_reused")
            s.fee_due, s.fee_lines = int(data.get("fee_due") or 0), list(data.get("fee_lines") or [])
            s.reused_components = int(data.get("reused_components") or 0)
        elif type_ == SUPPLEMENT_REQUESTED:
            s.supplements.append(Supplement(
                number=int(data.get("supplement_number") or len(s.supplements) + 1), requested_at=at or datetime.min,
                requested_by=actor, reason=str(data.get("reason") or ""), items=list(data.get("requested_items") or []),
                due_before=s.appointment_at,
            ))  # fmt: skip
        elif type_ == SUPPLEMENTED and s.supplements:
            s.supplements[-1].supplemented_at = s.supplements[-1].supplemented_at or _instant(data.get("supplemented_at"))
        elif type_ == CLOCK_RESUMED:
            due = _instant(data.get("due_at"))
            if s.supplements:
                last = s.supplements[-1]
                last.supplemented_at = last.supplemented_at or _instant(data.get("supplemented_at"))
                last.due_after = due
            s.appointment_at = due or s.appointment_at
        elif type_ == APOLOGY:
            s.appointment_at = _instant(data.get("new_appointment_at")) or s.appointment_at
        elif type_ == RESULT_READY:
            s.finished_at = s.finished_at or _instant(data.get("finished_at"))
        elif type_ == RETURNED:
            s.returned_at = _instant(data.get("returned_at"))
            s.finished_at = s.finished_at or _instant(data.get("finished_at")) or s.returned_at
        elif type_ == REJECTED:
            s.refused_at = s.refused_at or at
        elif type_ == DIGITIZED:
            _digitized(s, data)
        elif type_ == SIGNED and data.get("kind", "result") in ("result", "certified_copy"):
            paper = s.results.setdefault(str(data["document_id"]), Paper(str(data["document_id"]), "Kết quả giải quyết", None, None))
            paper.signed = True
        elif type_ == REUSED:
            doc = str(data["document_id"])
            s.papers[doc] = Paper(doc, str(data.get("component_name") or data.get("paper_code") or "Giấy tờ"),
                                  data.get("component_code"), data.get("paper_code"), digitized=True, from_store=True)  # fmt: skip
        elif type_ == PAYMENT_REQUESTED:
            if data.get("replaces_payment_id"):
                s.payments.pop(str(data["replaces_payment_id"]), None)
            s.payments[str(data["payment_id"])] = {"lines": list(data.get("lines") or []), "paid": None, "provider": None}
        elif type_ == PAYMENT_CONFIRMED:
            pay = s.payments.setdefault(str(data["payment_id"]), {"lines": [], "paid": None, "provider": None})
            pay["paid"], pay["provider"] = data.get("channel"), data.get("provider")
        elif type_ == PAYMENT_REFUNDED:
            s.payments.pop(str(data.get("payment_id")), None)
    return s


def _digitized(s: DossierState, data: Mapping[str, Any]) -> None:
    doc = str(data["document_id"])
    name = str(data.get("component_name") or data.get("paper_code") or "Giấy tờ")
    if data.get("stage") == "result" or data.get("kind") in ("result", "certified_copy"):
        paper = s.results.setdefault(doc, Paper(doc, name if data.get("component_name") else "Kết quả giải quyết",
                                                data.get("component_code"), data.get("paper_code")))  # fmt: skip
        paper.signed = paper.signed or bool(data.get("signed"))
        return
    paper = s.papers.setdefault(doc, Paper(doc, name, data.get("component_code"), data.get("paper_code")))
    paper.digitized = True


# ---- the payloads ------------------------------------------------------------------------------------------------------


def dvcqg_time(instant: datetime | None) -> str | None:
    """``yyyyMMddHHmmss`` in Asia/Ho_Chi_Minh (DOMAIN §7.1), or None."""
    return instant.astimezone(VN_TZ).strftime("%Y%m%d%H%M%S") if instant is not None else None


def _fee_kind(name: str, kinds: Mapping[str, int]) -> int | None:
    lowered = name.strip().lower()
    for prefix in sorted(kinds, key=len, reverse=True):
        if lowered.startswith(prefix):
            return int(kinds[prefix])
    return None


def _online_paid(s: DossierState, mapping: SyncMapping) -> int:
    codes = mapping["online_payment"]
    paid = [p for p in s.payments.values() if p["paid"] == "online"]
    if not paid:
        return int(codes["none"])
    providers = {str(k).lower(): int(v) for k, v in (codes.get("providers") or {}).items()}
    for p in paid:
        if str(p.get("provider") or "").lower() in providers:
            return providers[str(p["provider"]).lower()]
    return int(codes["gateway"])


def fees(s: DossierState, mapping: SyncMapping) -> list[dict[str, Any]]:
    """DanhSachLePhi: the lines of the dossier's payment requests; a dossier charged nothing lists its free lines."""
    out: list[dict[str, Any]] = []
    for payment in s.payments.values():
        for line in payment["lines"]:
            item: dict[str, Any] = {
                "TenPhiLePhi": str(line.get("name") or ""), "MaPhiLePhi": str(line.get("code") or ""),
                "Gia": int(float(line.get("amount") or 0)),  # the line's total for the dossier (FeeItem.amount)
            }  # fmt: skip
            kind = _fee_kind(item["TenPhiLePhi"], mapping["fee_kinds"])
            if kind is not None:
                item["LoaiPhiLePhi"] = kind
            if payment["paid"] in mapping["fee_collection"]:
                item["HinhThucThu"] = mapping["fee_collection"][payment["paid"]]
            out.append(item)
    if not out and s.fee_due == 0:
        for line in s.fee_lines:
            item = {"TenPhiLePhi": str(line.get("name") or ""), "MaPhiLePhi": str(line.get("code") or ""), "Gia": 0}
            kind = _fee_kind(item["TenPhiLePhi"], mapping["fee_kinds"])
            if kind is not None:
                item["LoaiPhiLePhi"] = kind
            out.append(item)
    return out


def _url(mapping: SyncMapping, document_id: str) -> dict[str, str]:
    template = str(mapping["document_url"] or "")
    return {"url": template.replace("{document_id}", document_id)} if template else {}


def papers(s: DossierState, mapping: SyncMapping) -> list[dict[str, Any]]:
    """TaiLieuNop: the submitted papers digitization knows, with DuocSoHoa and DuocLayTuKhoDMQG."""
    out = []
    for paper in s.papers.values():
        item: dict[str, Any] = {
            "TepDinhKemId": paper.document_id, "TenTepDinhKem": paper.name, "IsDeleted": False,
            "MaThanhPhanHoSo": paper.component_code or "", "DuocSoHoa": 1 if paper.digitized else 0,
            "DuocLayTuKhoDMQG": 1 if paper.from_store else 0,
        }  # fmt: skip
        if url := _url(mapping, paper.document_id):
            item["DuongDanTaiTepTin"] = url["url"]
        out.append(item)
    return out


def results(s: DossierState, mapping: SyncMapping) -> list[dict[str, Any]]:
    """DanhSachGiayToKetQua: the signed results."""
    out = []
    for paper in s.results.values():
        if not paper.signed:
            continue
        item: dict[str, Any] = {
            "TenGiayTo": paper.name, "MaThanhPhanHoSo": paper.component_code or "", "GiayToId": paper.document_id,
            "MaGiayToKetQua": paper.paper_code or paper.document_id,
        }  # fmt: skip
        if url := _url(mapping, paper.document_id):
            item["DuongDanTepTinKetQua"] = url["url"]
        out.append(item)
    return out


def supplements(s: DossierState) -> list[dict[str, Any]]:
    """DanhSachHoSoBoSung, each with NgayHenTraTruoc / NgayHenTraMoi."""
    out = []
    for sup in s.supplements:
        item: dict[str, Any] = {
            "HoSoBoSungId": f"{s.code}-BS{sup.number}", "NguoiYeuCauBoSung": sup.requested_by or "",
            "NoiDungBoSung": sup.reason, "NgayBoSung": dvcqg_time(sup.requested_at),
            "DanhSachGiayToBoSung": "; ".join(sup.items), "TrangThaiBoSung": 1 if sup.supplemented_at else 0,
            "NgayHenTraTruoc": dvcqg_time(sup.due_before),
        }  # fmt: skip
        if sup.supplemented_at:
            item["NgayTiepNhanBoSung"] = dvcqg_time(sup.supplemented_at)
        if sup.due_after:
            item["NgayHenTraMoi"] = dvcqg_time(sup.due_after)
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def dossier_payload(s: DossierState, status: int, mapping: SyncMapping) -> dict[str, Any]:
    """One ``DongBoHoSoMC`` item: the dossier as the portal should show it, at ``status`` (DOMAIN §7.2)."""
    payload: dict[str, Any] = {
        "MaHoSo": s.code,
        "MaTTHC": str(mapping["procedure_codes"].get(s.procedure_code, s.procedure_code)),
        "TenTTHC": s.procedure_name,
        "MaLinhVuc": str(mapping["field_codes"].get(s.field, "")),
        "TenLinhVuc": s.field,
        "MaDinhDanhDV": str(mapping["unit_codes"].get(s.unit, s.unit)),
        "ChuHoSo": s.applicant_name,
        "KenhThucHien": int(mapping["channels"].get(s.channel or "counter", mapping["channels"]["counter"])),
        "TrangThaiHoSo": int(status),
        "NgayNopHoSo": dvcqg_time(s.submitted_at or s.received_at),
        "NgayTiepNhan": dvcqg_time(s.received_at) if status != int(NationalStatus.REGISTERED) else None,
        "NgayHenTra": dvcqg_time(s.appointment_at),
        "NgayTra": dvcqg_time(s.returned_at),
        "NgayKetThucXuLy": dvcqg_time(s.finished_at),
        "NgayTuChoi": dvcqg_time(s.refused_at),
        "DuocThanhToanTrucTuyen": _online_paid(s, mapping),
        "HoSoCoThanhPhanSoHoa": 1 if s.reused_components or any(p.digitized for p in s.papers.values()) else 0,
        "DanhSachLePhi": fees(s, mapping),
        "TaiLieuNop": papers(s, mapping),
        "DanhSachHoSoBoSung": supplements(s),
        "DanhSachGiayToKetQua": results(s, mapping),
    }
    if s.unit in mapping["unit_names"]:
        payload["DonViXuLy"] = str(mapping["unit_names"][s.unit])
    if s.identification is not None:
        payload["TaiKhoanDuocXacThucVoiVNeID"] = int(mapping["identification"].get(s.identification, 0))
    return rename({k: v for k, v in payload.items() if v is not None}, mapping["field_names"])


def progress_payload(s: DossierState, step: str, status: int, data: Mapping[str, Any], actor: str | None,
                     mapping: SyncMapping) -> dict[str, Any]:  # fmt: skip
    """One ``CapNhatTienDoHoSoMC`` item: a processing step (DOMAIN §7.2 "Progress payload")."""
    at = _instant(data.get("occurred_at"))
    words = str(mapping["progress_events"].get(step, ""))
    fill = {k: ("" if v is None else v) for k, v in data.items()}
    try:
        content = words.format_map(_Blank(fill)).strip().rstrip(":").strip()
    except (ValueError, IndexError):
        content = words
    person = data.get("assignee") or data.get("approved_by") or actor or ""
    office = data.get("department") or data.get("to_agency") or data.get("from_agency") or ""
    payload = {
        "MaHoSo": s.code, "NguoiXuLy": str(person), "ChucDanh": "", "ThoiDiemXuLy": dvcqg_time(at),
        "PhongBanXuLy": str(office), "NoiDungXuLy": content, "TrangThai": int(status),
        "NgayBatDau": dvcqg_time(at), "NgayKetThucTheoQuyDinh": dvcqg_time(_instant(data.get("step_due_at")) or s.appointment_at),
    }  # fmt: skip
    return rename({k: v for k, v in payload.items() if v is not None}, mapping["field_names"])


class _Blank(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


def rename(value: Any, names: Mapping[str, str]) -> Any:
    """``value`` with every dict key in ``names`` renamed, at any depth."""
    if not names:
        return value
    if isinstance(value, dict):
        return {names.get(k, k): rename(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [rename(v, names) for v in value]
    return value


def lookup_found(answer: Mapping[str, Any], mapping: SyncMapping) -> bool:
    """Whether a ``TraCuuHoSo`` answer says the dossier is on the portal already."""
    return any(answer.get(key) not in (None, "", [], {}) for key in mapping["lookup_found_keys"])


# ---- retries, and the on-time rule -------------------------------------------------------------------------------


def backoff_seconds(attempt: int, *, initial: float, cap: float, rng: random.Random | None = None) -> float:
    """Wait before retry ``attempt`` (1-based): doubling from ``initial``, at most ``cap``, jittered down to half."""
    ceiling = min(cap, initial * math.pow(2, max(attempt - 1, 0)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def on_time(state: str, changed_at: datetime, accepted_at: datetime | None, *, window_seconds: float, now: datetime) -> bool | None:
    """Whether a status sync counts as on time for the indicator: accepted within the window after the change (True),
    accepted later, given up, superseded or unsent past the window (False), or not known yet (None)."""
    deadline = changed_at.timestamp() + window_seconds
    if state == ACCEPTED and accepted_at is not None:
        return accepted_at.timestamp() <= deadline
    if state == PENDING and now.timestamp() < deadline:
        return None
    return False


@dataclass(frozen=True)
class SyncOutcomes:
    """Status syncs of a scope whose status changed in a period (766 indicator 1.4 / DOSSIER_SYNC, DOMAIN §4.3.1).

    ``due``: status changes in the period that owe the portal a push. ``on_time``: accepted within the window after
    the change. ``late``: accepted after the window, given up, superseded, or still unsent when the window ran out.
    ``pending``: not accepted yet, the window still open (neither on time nor late yet). ``due = on_time + late +
    pending``.
    """

    due: int
    on_time: int
    late: int
    pending: int
    window_seconds: float

    @property
    def settled(self) -> int:
        """Syncs whose outcome is known (on time or late)."""
        return self.on_time + self.late
