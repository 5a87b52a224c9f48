"""Intake rules: procedures and their versions, appointments, dossier codes, fees, the webhook signature.

Pure: no I/O, no clock (times come in as arguments).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from shared.calendar import TimeLimit, TimeUnit, WorkingCalendar, due_at
from shared.calendar import province_of as calendar_province_of
from shared.clock import local
from shared.fees import FeeItem, FeeLine, FeeUnit, PagesNeeded, assess
from shared.status import NationalStatus

SEED_FILE = Path(__file__).with_name("seed") / "procedures.json"
SEED_EFFECTIVE_FROM = date(2000, 1, 1)
DEFAULT_CODE_FORMAT = "{unit}-{day:%y%m%d}-{sequence:04d}"


class OnlineLevel(StrEnum):
    """How far a procedure can be done online (Decree 42/2022)."""

    FULL = "full"
    PARTIAL = "partial"
    IN_PERSON = "in_person"


# What each workflow event means for the status shown to the citizen and pushed to the portal.
STATUS_BY_EVENT: dict[str, NationalStatus] = {
    "vn.motcua.case.assigned.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.supplement_requested.v1": NationalStatus.SUPPLEMENT_REQUESTED,
    "vn.motcua.case.transferred.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.transfer_returned.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.approved.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.rejected.v1": NationalStatus.NOT_ACCEPTED,
    "vn.motcua.case.payment_awaited.v1": NationalStatus.AWAITING_PAYMENT,
    "vn.motcua.case.clock_resumed.v1": NationalStatus.PROCESSING,
    "vn.motcua.case.stopped.v1": NationalStatus.STOPPED,
    "vn.motcua.case.result_ready.v1": NationalStatus.RESOLVED,
    "vn.motcua.case.returned.v1": NationalStatus.RETURNED,
}

# The form a not-accepted record is issued on, by outcome; out-of-scope guidance has none.
NOT_ACCEPTED_FORMS: dict[str, str] = {"incomplete": "02", "refused": "03"}


@dataclass(frozen=True)
class Component:
    """A paper a procedure asks for."""

    name: str
    mandatory: bool = True
    form: str = "original"
    digitize: bool = True


@dataclass(frozen=True)
class LienThongStep:
    """One agency's share of an inter-agency procedure's time."""

    agency: str
    amount: int
    unit: TimeUnit


@dataclass(frozen=True)
class Procedure:
    """One version of a procedure of the catalog."""

    code: str
    name: str
    field: str
    time_limit: TimeLimit
    online_level: OnlineLevel
    version: int = 1
    effective_from: date = SEED_EFFECTIVE_FROM
    code_verified: bool = True
    committed_limit: TimeLimit | None = None
    fee_lines: tuple[FeeLine, ...] = ()
    components: tuple[Component, ...] = ()
    on_the_spot: bool = False
    lien_thong_steps: tuple[LienThongStep, ...] = ()
    evidence: str = ""

    @property
    def has_fee(self) -> bool:
        """Whether any line can charge something."""
        return any(line.amount > 0 or (line.online_amount or 0) > 0 for line in self.fee_lines)


def _limit(data: dict[str, Any]) -> TimeLimit:
    return TimeLimit(
        amount=int(data["amount"]),
        unit=TimeUnit(data["unit"]),
        cutoff_rule=bool(data.get("cutoff_rule", True)),
        verification_extra=int(data.get("verification_extra", 0)),
    )


def _limit_json(limit: TimeLimit) -> dict[str, Any]:
    return {
        "amount": limit.amount,
        "unit": limit.unit.value,
        "cutoff_rule": limit.cutoff_rule,
        "verification_extra": limit.verification_extra,
    }


def procedure_from_json(data: dict[str, Any], *, version: int = 1, effective_from: date = SEED_EFFECTIVE_FROM) -> Procedure:
    """A procedure from its catalog document."""
    return Procedure(
        code=data["code"],
        name=data["name"],
        field=data["field"],
        time_limit=_limit(data["time_limit"]),
        online_level=OnlineLevel(data["online_level"]),
        version=version,
        effective_from=effective_from,
        code_verified=bool(data.get("code_verified", True)),
        committed_limit=_limit(data["committed_limit"]) if data.get("committed_limit") else None,
        fee_lines=tuple(
            FeeLine(
                code=f["code"],
                name=f["name"],
                amount=int(f["amount"]),
                unit=FeeUnit(f.get("unit", "per_case")),
                online_amount=f.get("online_amount"),
                reduced_from_page=f.get("reduced_from_page"),
                reduced_amount=f.get("reduced_amount"),
                cap_per_copy=f.get("cap_per_copy"),
                exemptions=tuple(f.get("exemptions", ())),
            )
            for f in data.get("fee_lines", ())
        ),
        components=tuple(Component(**c) for c in data.get("components", ())),
        on_the_spot=bool(data.get("on_the_spot", False)),
        lien_thong_steps=tuple(
            LienThongStep(agency=s["agency"], amount=int(s["amount"]), unit=TimeUnit(s["unit"]))
            for s in data.get("lien_thong_steps", ())
        ),
        evidence=data.get("evidence", ""),
    )


def procedure_to_json(p: Procedure) -> dict[str, Any]:
    """The catalog document of a procedure version (without version and date, which are the catalog's)."""
    return {
        "code": p.code,
        "code_verified": p.code_verified,
        "name": p.name,
        "field": p.field,
        "time_limit": _limit_json(p.time_limit),
        "committed_limit": _limit_json(p.committed_limit) if p.committed_limit else None,
        "fee_lines": [
            {
                "code": f.code,
                "name": f.name,
                "amount": f.amount,
                "unit": f.unit.value,
                "online_amount": f.online_amount,
                "reduced_from_page": f.reduced_from_page,
                "reduced_amount": f.reduced_amount,
                "cap_per_copy": f.cap_per_copy,
                "exemptions": list(f.exemptions),
            }
            for f in p.fee_lines
        ],
        "online_level": p.online_level.value,
        "components": [c.__dict__ for c in p.components],
        "on_the_spot": p.on_the_spot,
        "lien_thong_steps": [{"agency": s.agency, "amount": s.amount, "unit": s.unit.value} for s in p.lien_thong_steps],
        "evidence": p.evidence,
    }


@cache
def seed_documents() -> tuple[dict[str, Any], ...]:
    """The procedures of DOMAIN.md §6 as catalog documents (version 1 of each)."""
    return tuple(json.loads(SEED_FILE.read_text(encoding="utf-8")))


# ---- appointments -----------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    """When the result is promised, and when the law says it is due."""

    appointment_at: datetime
    legal_due_at: datetime


def appointment(received_at: datetime, procedure: Procedure, calendar: WorkingCalendar, *, verification: bool = False) -> Appointment:
    """The appointment follows the unit's committed time when it publishes one; the legal limit stays on record."""
    legal = due_at(received_at, procedure.time_limit, calendar, verification=verification)
    committed = (
        due_at(received_at, procedure.committed_limit, calendar, verification=verification)
        if procedure.committed_limit
        else legal
    )
    return Appointment(appointment_at=min(committed, legal), legal_due_at=legal)


# ---- dossier codes ----------------------------------------------------------


def receipt_day(received_at: datetime) -> date:
    """The Vietnamese calendar day of a receipt (sequences restart each day)."""
    return local(received_at).date()


def dossier_code(unit: str, received_at: datetime, sequence: int, code_format: str = DEFAULT_CODE_FORMAT) -> str:
    """``<unit>-<yymmdd>-<daily sequence>`` by default (DOMAIN.md §1.8); the format is a setting."""
    return code_format.format(unit=unit, day=receipt_day(received_at), sequence=sequence)


def province_of(unit: str) -> str:
    """The province part of a QCVN 102:2016 unit code (``000.00.12.H56`` → ``H56``); workflow uses the same rule."""
    return calendar_province_of(unit)


# ---- e-identity at reception -------------------------------------------------

# How an applicant was identified (DOMAIN §4.3 4.5, §7.2 TaiKhoanDuocXacThucVoiVNeID), and who may say so.
IDENTIFICATIONS = ("vneid_level2", "chip_card", "none")
ASSERTING_PARTIES = ("clerk", "portal")
# [I] A clerk reads the chip of the id card at the counter; the portal's signed webhook vouches for a VNeID level-2
# login. A province changes it with INTAKE_IDENTIFICATION_ASSERTED_BY.
DEFAULT_IDENTIFICATION_ASSERTERS: dict[str, tuple[str, ...]] = {"clerk": ("chip_card",), "portal": ("vneid_level2",)}
_PARTY_NAMES = {"clerk": "A clerk", "portal": "The portal"}
_IDENTIFICATION_NAMES = {"vneid_level2": "a VNeID level-2 login", "chip_card": "a chip id card read"}


def identification_refusal(party: str, identification: str, asserters: Mapping[str, Iterable[str]]) -> str | None:
    """Why ``party`` may not assert this identification (``none`` always may), or None when it may."""
    if identification == "none" or identification in asserters.get(party, ()):
        return None
    who = [p for p, methods in asserters.items() if identification in methods]
    by = f" only {' or '.join(_PARTY_NAMES.get(p, p).lower() for p in who)} can" if who else " nobody is configured to"
    return (
        f"identification: {_PARTY_NAMES.get(party, party)} cannot assert {_IDENTIFICATION_NAMES.get(identification, identification)}"
        f" ({identification!r});{by} assert it."
    )


# ---- fees -------------------------------------------------------------------


@dataclass(frozen=True)
class FeeAssessment:
    """The fee assessed at reception; per-page lines wait for the page count."""

    items: tuple[FeeItem, ...] = ()
    total: int = 0
    pending: tuple[str, ...] = field(default_factory=tuple)


def assess_fee(procedure: Procedure, *, online: bool, pages: int | None, copies: int, exemption: str | None) -> FeeAssessment:
    """Assess every line that can be assessed now."""
    items, pending = [], []
    for line in procedure.fee_lines:
        try:
            items.extend(assess([line], online=online, pages=pages, copies=copies, exemption=exemption))
        except PagesNeeded:
            pending.append(line.code)
    return FeeAssessment(items=tuple(items), total=sum(i.amount for i in items), pending=tuple(pending))


# ---- the national procedure list (LayDanhSachTTHC, LayThuTuc) --------------------------------------------------

# Where the LGSP's answers keep what the catalog reads, observed in public implementations (OpenCPS
# DVCQGIntegrationAction, TD.DichVuCong's import of LayThuTuc), not a published specification [S:code]: a province
# corrects any of it with INTAKE_NATIONAL_CATALOG_MAPPING (a key given replaces the default). A path is dotted: a key,
# a list index, or KEY=VALUE for the first list item whose KEY is VALUE.
DEFAULT_NATIONAL_MAPPING: dict[str, Any] = {
    "list_service": "LayDanhSachTTHC",
    "list_payload": {},  # extra fields of the list call
    "list_items": "result",  # the procedures in its answer
    "list_code": "MATTHC",  # a procedure's code in one of them
    "detail_service": "LayThuTuc",
    "detail_code_param": "maTTHC",  # the field the detail call names the procedure in
    "detail_record": "result.0",  # the procedure in its answer
    "code": "MATTHC",
    "name": "TENTTHC",
    "field": "LINHVUCTHUCHIEN.0.TENLINHVUC",
    "field_code": "LINHVUCTHUCHIEN.0.MALINHVUC",
    # the time limit of the in-person channel (KENH 1)
    "time_amount": "CACHTHUCTHUCHIEN.KENH=1.THOIGIAN.0.THOIGIANGIAIQUYET",
    "time_unit": "CACHTHUCTHUCHIEN.KENH=1.THOIGIAN.0.DONVITINH",
    "time_units": {"ngày làm việc": "WORKING_DAY", "ngày": "CALENDAR_DAY", "giờ làm việc": "WORKING_HOUR",
                   "giờ": "WORKING_HOUR", "trong ngày": "SAME_DAY", "ngay trong ngày": "SAME_DAY"},  # fmt: skip
    # fee lines of the in-person channel; the online channel's amount of the same line is its online amount
    "fee_items": "CACHTHUCTHUCHIEN.KENH=1.THOIGIAN.0.PHILEPHI",
    "online_fee_items": "CACHTHUCTHUCHIEN.KENH=2.THOIGIAN.0.PHILEPHI",
    "fee_code": "MAPHILEPHI",
    "fee_name": "MOTA",
    "fee_amount": "SOTIEN",
    "component_items": "THANHPHANHOSO.0.GIAYTO",
    "component_name": "TENGIAYTO",
    # the online level, when the record says it; otherwise a new procedure with an online channel is "partial"
    "online_level": "MUCDO",
    "online_levels": {"4": "full", "toàn trình": "full", "3": "partial", "một phần": "partial", "2": "in_person"},
    "online_channel": "CACHTHUCTHUCHIEN.KENH=2",
}
# The catalog document's keys the national record can give; the others (committed time, the 15:00 rule, exemptions,
# on the spot, inter-agency steps, evidence …) are the province's own and are never taken from it.
NATIONAL_FIELDS = ("name", "field", "field_code", "time_limit", "fee_lines", "components", "online_level", "code_verified")


def national_mapping(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The mapping in force: the defaults, each key a province gives replaced; an unknown key is refused."""
    unknown = sorted(set(overrides or {}) - set(DEFAULT_NATIONAL_MAPPING))
    if unknown:
        raise ValueError(f"unknown national catalog mapping keys: {unknown}")
    return {**DEFAULT_NATIONAL_MAPPING, **(overrides or {})}


def pick(record: Any, path: str) -> Any:
    """The value at a dotted path (a key, a list index, or KEY=VALUE for the first list item whose KEY is VALUE); None
    when anything on the way is missing."""
    value = record
    for part in path.split(".") if path else ():
        if isinstance(value, list):
            if "=" in part:
                key, _, wanted = part.partition("=")
                value = next((i for i in value if isinstance(i, dict) and str(i.get(key)).strip() == wanted), None)
            elif part.isdigit():
                value = value[int(part)] if int(part) < len(value) else None
            else:
                return None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
        if value is None:
            return None
    return value


def _text(value: Any) -> str | None:
    return " ".join(str(value).split()) or None if value is not None else None


def _whole(value: Any) -> int | None:
    """A whole number from the national record (``12``, ``"12"``, ``12.0``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


_FREE = {"", "0", "không", "miễn", "miễn phí", "không thu", "không có"}


def vnd_amount(value: Any) -> int | None:
    """A fee amount in whole VND as the national record writes it (``50000``, ``"50.000"``, ``"50.000 đồng"``,
    ``"Không"`` = 0); None when it is not one amount (``"2.000 đồng/trang"``)."""
    if value is None:
        return 0
    whole = _whole(value)
    if whole is not None or isinstance(value, (int, float)):
        return whole
    text = str(value).strip().lower()
    if text in _FREE:
        return 0
    for suffix in ("đồng", "vnđ", "vnd", "đ"):
        text = text.removesuffix(suffix).strip()
    digits = text.replace(".", "").replace(",", "").replace(" ", "")
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class NationalProcedure:
    """What a national record says about a procedure, in the catalog's terms: only the fields it gives and could be
    read (``fields``), and what it gives that could not be read (``notes``: those fields stay as the catalog has them)."""

    code: str
    fields: dict[str, Any]
    notes: tuple[str, ...] = ()


def national_procedure(record: Mapping[str, Any], mapping: Mapping[str, Any], code: str | None = None) -> NationalProcedure:
    """A LayThuTuc record read through the mapping."""
    fields: dict[str, Any] = {"code_verified": True}  # in the national list: the code is the national one
    notes: list[str] = []
    code = code or _text(pick(record, mapping["code"])) or ""
    for key in ("name", "field", "field_code"):
        value = _text(pick(record, mapping[key]))
        if value:
            fields[key] = value
    amount, unit_text = pick(record, mapping["time_amount"]), _text(pick(record, mapping["time_unit"]))
    if amount is not None or unit_text:
        units = {k.lower(): v for k, v in mapping["time_units"].items()}
        unit = units.get((unit_text or "").lower())
        whole = _whole(amount) if amount is not None else (0 if unit == "SAME_DAY" else None)
        if unit is None:
            notes.append(f"time_limit: unit {unit_text!r} is not in time_units")
        elif whole is None:
            notes.append(f"time_limit: {amount!r} is not a whole number of {unit_text}")
        else:
            fields["time_limit"] = {"amount": whole, "unit": unit}
    # An empty list says nothing: a national record often leaves a fee the province's council sets to the province.
    items = pick(record, mapping["fee_items"])
    if isinstance(items, list) and items:
        lines = _fee_lines(items, pick(record, mapping["online_fee_items"]), mapping, notes)
        if lines is not None:
            fields["fee_lines"] = lines
    components = pick(record, mapping["component_items"])
    if isinstance(components, list):
        names = [n for n in dict.fromkeys(_text(pick(c, mapping["component_name"])) for c in components) if n]
        if names:
            fields["components"] = names
    level = _text(pick(record, mapping["online_level"]))
    if level:
        known = {str(k).lower(): v for k, v in mapping["online_levels"].items()}.get(level.lower())
        if known in {lv.value for lv in OnlineLevel}:
            fields["online_level"] = known
        else:
            notes.append(f"online_level: {level!r} is not in online_levels")
    elif pick(record, mapping["online_channel"]) is not None:
        fields["online_channel"] = True  # a new procedure is at least partly online; an existing one keeps its level
    return NationalProcedure(code=code, fields=fields, notes=tuple(notes))


def _fee_lines(items: list[Any], online: Any, mapping: Mapping[str, Any], notes: list[str]) -> list[dict[str, Any]] | None:
    """The fee lines of a record (codes made unique), or None when one amount is not a whole VND amount."""
    online_items = online if isinstance(online, list) else []
    lines, seen = [], set()
    for n, item in enumerate(items, start=1):
        raw = pick(item, mapping["fee_amount"])
        amount = vnd_amount(raw)
        if amount is None:
            notes.append(f"fee_lines: {raw!r} is not one amount in VND")
            return None
        code = _text(pick(item, mapping["fee_code"])) or f"DVCQG-{n}"
        code = code if code not in seen else f"{code}-{n}"
        seen.add(code)
        line: dict[str, Any] = {"code": code, "name": _text(pick(item, mapping["fee_name"])) or "Phí, lệ phí", "amount": amount}
        if n <= len(online_items):
            online_amount = vnd_amount(pick(online_items[n - 1], mapping["fee_amount"]))
            if online_amount is not None and online_amount != amount:
                line["online_amount"] = online_amount
        lines.append(line)
    return lines


_NEW_FEE_LINE = {"unit": "per_case", "online_amount": None, "reduced_from_page": None, "reduced_amount": None,
                 "cap_per_copy": None, "exemptions": []}  # fmt: skip
_NEW_COMPONENT = {"mandatory": True, "form": "original", "digitize": True}


def merge_national(local: Mapping[str, Any] | None, national: NationalProcedure, *, evidence: str) -> dict[str, Any]:
    """The catalog document after taking what the national record gives: each field it gives replaces the local one,
    and each field it lacks stays as the province has it. A fee line or component the record names keeps the local
    details it has no word for (a line's unit, page rule, cap and exemptions; a component's form, whether it is
    mandatory or digitized). A new procedure starts from the catalog's defaults."""
    given = national.fields
    if local is None:
        doc: dict[str, Any] = {
            "code": national.code, "code_verified": True, "name": "", "field": "", "committed_limit": None, "fee_lines": [],
            "online_level": OnlineLevel.PARTIAL.value if given.get("online_channel") else OnlineLevel.IN_PERSON.value,
            "components": [], "on_the_spot": False, "lien_thong_steps": [], "evidence": evidence,
        }  # fmt: skip
    else:
        doc = {**local}
    for key in ("name", "field", "field_code", "online_level", "code_verified"):
        if key in given:
            doc[key] = given[key]
    if "time_limit" in given:
        base = doc.get("time_limit") or {"cutoff_rule": True, "verification_extra": 0}
        doc["time_limit"] = {**base, **given["time_limit"]}
    if "fee_lines" in given:
        known = {f.get("code"): f for f in doc.get("fee_lines") or []}
        doc["fee_lines"] = [{**_NEW_FEE_LINE, **known.get(f["code"], {}), **f} for f in given["fee_lines"]]
    if "components" in given:
        known = {c.get("name"): c for c in doc.get("components") or []}
        doc["components"] = [{"name": n, **_NEW_COMPONENT, **{k: v for k, v in known.get(n, {}).items() if k != "name"}}
                             for n in given["components"]]  # fmt: skip
    return doc


def document_problem(doc: Mapping[str, Any]) -> str | None:
    """Why a catalog document is not a usable procedure (what ``procedure_from_json`` refuses), or None."""
    missing = [k for k in ("name", "field", "time_limit") if not doc.get(k)]
    if missing:
        return f"the national record gives no {', '.join(missing)}"
    try:
        procedure_from_json(dict(doc))
    except (KeyError, ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each top-level field whose value differs, with both values."""
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]  # fmt: skip


def catalog_diff(
    local: Mapping[str, Mapping[str, Any]],
    national: Iterable[NationalProcedure],
    *,
    evidence: str,
    listed: Iterable[str] | None = None,
) -> dict[str, Any]:
    """What importing the national records would do to the catalog (``local``: the latest document of each code).

    ``added``: in the national list, not in the catalog, usable; ``changed``: in both, with the fields that change and
    the document the new version would publish; ``unchanged``; ``local_only``: in the catalog, not in the national
    list (``listed``: every code of it, when only some records were read), and they stay; ``unusable``: national
    records that give no usable procedure (nothing happens to them). ``notes`` name the fields a record gives that
    could not be read (the catalog keeps its own).
    """
    added, changed, unchanged, unusable = [], [], [], []
    seen: set[str] = set()
    for record in national:
        if not record.code or record.code in seen:
            continue
        seen.add(record.code)
        before = local.get(record.code)
        after = merge_national(before, record, evidence=evidence)
        problem = document_problem(after)
        entry = {"code": record.code, "name": after.get("name") or (before or {}).get("name") or "", "notes": list(record.notes)}
        if problem is not None:
            unusable.append({**entry, "reason": problem})
        elif before is None:
            added.append({**entry, "document": after})
        elif changes := changed_fields(before, after):
            changed.append({**entry, "changes": changes, "document": after})
        else:
            unchanged.append(entry)
    national_codes = seen | set(listed or ())
    local_only = [{"code": code, "name": doc.get("name", "")} for code, doc in sorted(local.items()) if code not in national_codes]
    return {"added": added, "changed": changed, "unchanged": unchanged, "local_only": local_only, "unusable": unusable}
