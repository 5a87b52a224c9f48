"""The paper register (Sổ theo dõi hồ sơ, Form 06/07) as a file: read it row by row (CSV in UTF-8, or XLSX) and check
every row against the catalog and the rules in force at its own date. Pure: the handler loads the catalog, the rules
and the calendars, and asks the database which codes exist.

Nothing is guessed: a column not in ``COLUMNS``, a CSV in a legacy Vietnamese encoding, a date in another format or a
result word not in ``OUTCOMES`` is a problem that names the line and the column.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import string
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from shared.calendar import WorkingCalendar, classify
from shared.clock import VN_TZ
from shared.rules import Rules

MAX_FILE_BYTES = 64 * 1024 * 1024  # a 50,000-row register is about 8 MB as CSV, 4 MB as XLSX
MAX_ROWS = 200_000
MAX_CELL = 2000

# key → the headers accepted for it: the register form's own words first (what the template prints), then variants.
# The English key itself is always accepted too.
COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("STT", "Số thứ tự"),
    "code": ("Mã hồ sơ", "Số hồ sơ"),
    "procedure": ("Thủ tục hành chính", "Mã thủ tục", "Tên thủ tục"),
    "applicant": ("Người nộp", "Tên người nộp", "Tổ chức, cá nhân nộp"),
    "received_at": ("Ngày nhận", "Ngày tiếp nhận", "Ngày nhận hồ sơ"),
    "appointment": ("Hẹn trả", "Ngày hẹn trả", "Ngày hẹn trả kết quả"),
    "finished_at": ("Ngày chuyển/xử lý xong", "Ngày xử lý xong", "Ngày giải quyết xong"),
    "returned_at": ("Ngày trả", "Ngày trả kết quả"),
    "result": ("Kết quả/trạng thái", "Kết quả", "Trạng thái"),
    "notes": ("Ghi chú",),
    "officer": ("Cán bộ xử lý", "Cán bộ giải quyết", "Người xử lý"),
    "paused_days": ("Số ngày tạm dừng", "Số ngày dừng tính thời gian"),
}
REQUIRED = ("code", "procedure", "applicant", "received_at", "appointment")
TEMPLATE_KEYS = ("number", "code", "procedure", "applicant", "received_at", "appointment", "finished_at", "returned_at",
                 "result", "notes", "officer", "paused_days")  # fmt: skip


def _fold(text: str) -> str:
    """A header or word as compared: NFC, case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


_HEADER_KEYS: dict[str, str] = {_fold(h): key for key, names in COLUMNS.items() for h in (key, *names)}

# What the result column may say (national status names of the rules, their numbers, the English keys) → the outcome.
OUTCOMES: dict[str, str] = {
    _fold(word): outcome
    for outcome, words in {
        "open": ("open", "processing", "2", "4", "Được tiếp nhận", "Đang xử lý", "Đang giải quyết"),
        "done": ("done", "resolved", "9", "Đã xử lý xong", "Đã giải quyết", "Đã giải quyết, chưa trả kết quả"),
        "returned": ("returned", "10", "Đã trả kết quả", "Đã trả"),
        "rejected": ("rejected", "Từ chối", "Từ chối giải quyết"),
        "stopped": ("stopped", "8", "Dừng xử lý"),
        "withdrawn": ("withdrawn", "7", "Công dân yêu cầu rút hồ sơ", "Công dân rút hồ sơ", "Rút hồ sơ"),
        "waiting": ("5", "Yêu cầu bổ sung giấy tờ", "Chờ bổ sung hồ sơ", "Chờ bổ sung"),
    }.items()
    for word in words
}

# dd/mm/yyyy or dd-mm-yyyy, optionally HH:MM[:SS] (what the register and Excel write); ISO 8601 is read apart.
_VN_DATE = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")


class FileProblem(Exception):
    """The file as a whole cannot be read: its kind, its encoding, its header."""

    def __init__(self, slug: str, title: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.slug, self.title, self.detail, self.extensions = slug, title, detail, extensions


# ---- legacy encodings --------------------------------------------------------------------------------------------

# TCVN 5712:1993 (TCVN3, "ABC"): the one-byte codes of the lowercase Vietnamese letters (and ĂÂÊÔƠƯĐ), read through
# Latin-1. Only for recognising a TCVN3 header: such a file is refused, never converted.
_TCVN3_UNICODE = "àáâãèéêìíòóôõùúýăđĩũơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĂÂÊÔƠƯĐ"
_TCVN3_BYTES = "µ¸©·ÌÐª×Ýßã«âïóý¨®Üò¬\xad¹¶ÊÇÈÉË¾»¼½ÆÑÎÏÕÒÓÔÖØÞäáèåæçéíêëìîôñøõö÷ùúþûü¡¢£¤¥¦§"
TCVN3_TO_UNICODE = dict(zip(_TCVN3_BYTES, _TCVN3_UNICODE, strict=True))
UNICODE_TO_TCVN3 = {u: t.encode("latin-1") for t, u in TCVN3_TO_UNICODE.items()}


def _known_header_words(line: str) -> int:
    """How many cells of a first line are headers this reader knows (after folding)."""
    return sum(_fold(cell.strip().strip('"')) in _HEADER_KEYS for cell in line.replace(";", ",").replace("\t", ",").split(","))


def legacy_encoding(head: bytes) -> str:
    """The legacy encoding a CSV that is not UTF-8 is in, when its header says so; otherwise a description."""
    first = head.split(b"\n", 1)[0]
    cp1258 = unicodedata.normalize("NFC", first.decode("cp1258", errors="replace"))
    tcvn3 = "".join(TCVN3_TO_UNICODE.get(ch, ch) for ch in first.decode("latin-1"))
    scores = {"Windows-1258": _known_header_words(cp1258), "TCVN3 (ABC)": _known_header_words(tcvn3)}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] and scores[best] > min(scores.values()):
        return best
    return "a legacy Vietnamese encoding (Windows-1258, TCVN3 or VNI)"


def _refuse_encoding(head: bytes, where: str) -> FileProblem:
    found = legacy_encoding(head)
    return FileProblem(
        "register-encoding", "The file is not UTF-8",
        f"{where} is not UTF-8: the file looks like {found}. Nothing was imported. Save it again as "
        "'CSV UTF-8 (Comma delimited)' (Excel) or convert it to UTF-8 (for TCVN3 or VNI: Unikey's converter, "
        "'Chuyển mã'), or send it as XLSX.",
        detected=found,
    )  # fmt: skip


# ---- reading -------------------------------------------------------------------------------------------------------

Cell = str | datetime | date | int | float | None


@dataclass(frozen=True)
class RawRow:
    """One data line of the file: its line number (the header is line 1) and its cells by key."""

    line: int
    cells: dict[str, Cell]


def _header(cells: Iterable[Cell]) -> list[str | None]:
    """The key of each header cell (None: an empty trailing cell); a FileProblem for an unknown or repeated one."""
    keys: list[str | None] = []
    unknown = []
    for cell in cells:
        text = "" if cell is None else str(cell)
        if not text.strip():
            keys.append(None)
            continue
        key = _HEADER_KEYS.get(_fold(text))
        if key is None:
            unknown.append(text.strip())
        keys.append(key)
    if unknown:
        accepted = "; ".join(f"{k} ({', '.join(names)})" for k, names in COLUMNS.items())
        raise FileProblem("register-columns", "Unknown columns", f"Unknown column(s): {', '.join(unknown)}. Accepted: {accepted}.",
                          unknown=unknown)  # fmt: skip
    named = [k for k in keys if k]
    if twice := sorted({k for k in named if named.count(k) > 1}):
        raise FileProblem("register-columns", "Repeated columns", f"Column(s) given twice: {', '.join(twice)}.")
    if missing := [k for k in REQUIRED if k not in named]:
        names = ", ".join(f"{COLUMNS[k][0]} ({k})" for k in missing)
        raise FileProblem("register-columns", "Missing columns", f"The register needs the column(s): {names}.", missing=missing)
    return keys


def _rows(header: list[str | None], lines: Iterator[tuple[int, list[Cell]]]) -> Iterator[RawRow]:
    width = len(header)
    for line, values in lines:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue  # a blank line (Excel leaves them at the end)
        if len(values) > width and any(v not in (None, "") for v in values[width:]):
            yield RawRow(line, {"__extra__": f"{len(values)} cells for {width} columns"})
            continue
        yield RawRow(line, {k: v for k, v in zip(header, values, strict=False) if k})


def is_xlsx(head: bytes) -> bool:
    """An XLSX (a zip) rather than a CSV."""
    return head.startswith(b"PK\x03\x04")


def read(path: Path) -> Iterator[RawRow]:
    """The rows of a register file, streamed: XLSX through openpyxl's read-only mode, CSV decoded as UTF-8 (with or
    without a byte-order mark). A FileProblem for a file that cannot be read as a register."""
    with path.open("rb") as raw:
        head = raw.read(64 * 1024)
    if is_xlsx(head):
        yield from _read_xlsx(path)
    else:
        yield from _read_csv(path, head)


def _read_xlsx(path: Path) -> Iterator[RawRow]:
    from openpyxl import load_workbook  # only when an XLSX comes (its import costs a few hundred ms)

    from openpyxl.utils.exceptions import InvalidFileException

    handle = path.open("rb")  # a file object: openpyxl judges a path by its suffix, and the spooled upload has none
    try:
        book = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
        handle.close()
        raise FileProblem("register-file", "The file cannot be read", f"Not a readable XLSX workbook: {exc}.") from None
    try:
        sheet = book.worksheets[0]
        lines = ((n, list(values)) for n, values in enumerate(sheet.iter_rows(values_only=True), start=1))
        first = next(lines, None)
        if first is None:
            raise FileProblem("register-empty", "The file is empty", "The first sheet has no header line.")
        yield from _rows(_header(first[1]), lines)
    finally:
        book.close()
        handle.close()


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d])


def _read_csv(path: Path, head: bytes) -> Iterator[RawRow]:
    body = head[len(codecs.BOM_UTF8):] if head.startswith(codecs.BOM_UTF8) else head
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end < len(body) - 3 or exc.reason != "unexpected end of data":
            raise _refuse_encoding(body, "The file") from None
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        line_no = 0
        try:
            first = text.readline()
            if not first.strip():
                raise FileProblem("register-empty", "The file is empty", "The file has no header line.")
            delimiter = _delimiter(first)
            header = _header(next(csv.reader([first], delimiter=delimiter)))
            reader = csv.reader(text, delimiter=delimiter)

            def lines() -> Iterator[tuple[int, list[Cell]]]:
                nonlocal line_no
                for values in reader:
                    line_no = reader.line_num + 1
                    yield line_no, list(values)

            yield from _rows(header, lines())
        except UnicodeDecodeError:
            raise _refuse_encoding(head, f"Line {line_no + 1} or after") from None
        except csv.Error as exc:
            raise FileProblem("register-file", "The file cannot be read", f"Line {line_no + 1}: {exc}.") from None


# ---- checking ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcedureInForce:
    """A catalog version as the import reads it."""

    code: str
    version: int
    effective_from: date
    name: str
    field: str
    field_code: str | None = None


class Catalog:
    """Every version of every procedure: the one in force on a day, by code or by exact name."""

    def __init__(self, versions: Iterable[ProcedureInForce]) -> None:
        self._by_code: dict[str, list[ProcedureInForce]] = {}
        for v in sorted(versions, key=lambda v: (v.effective_from, v.version)):
            self._by_code.setdefault(v.code, []).append(v)
        self._by_name: dict[str, set[str]] = {}
        for code, vs in self._by_code.items():
            for v in vs:
                self._by_name.setdefault(_fold(v.name), set()).add(code)

    def in_force(self, text: str, day: date) -> tuple[ProcedureInForce | None, str]:
        """The version in force on the day of the procedure a register names (by code, or by its exact name)."""
        code = text.strip()
        if code not in self._by_code:
            codes = self._by_name.get(_fold(text), set())
            if len(codes) > 1:
                return None, f"the name {text!r} belongs to several procedures ({', '.join(sorted(codes))}): give the code"
            if not codes:
                return None, f"no procedure {text!r} in the catalog (give its code, e.g. 1.004194)"
            code = next(iter(codes))
        found = [v for v in self._by_code[code] if v.effective_from <= day]
        if not found:
            first = self._by_code[code][0].effective_from
            return None, f"procedure {code} was not in force on {day:%d/%m/%Y} (its first version is from {first:%d/%m/%Y})"
        return found[-1], ""


Law = Callable[[datetime], tuple[Rules, WorkingCalendar]]  # the rules and the calendar of a dossier received then


@dataclass(frozen=True)
class RegisterRow:
    """A row that passed every check: the dossier as it will be imported."""

    line: int
    code: str
    sequence: int
    procedure: ProcedureInForce
    applicant: str
    received_at: datetime
    appointment_at: datetime
    due_at: datetime
    paused_days: int
    outcome: str  # open, done, returned, rejected, stopped, withdrawn
    finished_at: datetime | None
    returned_at: datetime | None
    timeliness: str | None
    officer: str | None
    notes: str | None
    rules: str
    digest: str = field(default="")

    @property
    def closed(self) -> bool:
        return self.outcome != "open"


@dataclass(frozen=True)
class RowError:
    """Why one line is refused."""

    line: int
    reason: str
    code: str | None = None
    column: str | None = None


@dataclass
class Checked:
    """Every data line, good or bad."""

    rows: list[RegisterRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: int = 0


class _Bad(Exception):
    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def _text(cells: Mapping[str, Cell], key: str, *, required: bool = False, limit: int = MAX_CELL) -> str | None:
    value = cells.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else unicodedata.normalize("NFC", str(value)).strip()
    if not text:
        if required:
            raise _Bad(key, f"{COLUMNS[key][0]} is empty")
        return None
    if len(text) > limit:
        raise _Bad(key, f"{COLUMNS[key][0]}: longer than {limit} characters")
    return text


def _instant(cells: Mapping[str, Cell], key: str, default_time: time, *, required: bool = False) -> datetime | None:
    """A date with or without a time (dd/mm/yyyy [HH:MM], or ISO 8601); Vietnam time unless an offset is given; a
    day alone is taken at ``default_time``."""
    value = cells.get(key)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=VN_TZ)
    if isinstance(value, date):
        return datetime.combine(value, default_time, tzinfo=VN_TZ)
    text = _text(cells, key, required=required)
    if text is None:
        return None
    try:
        if found := _VN_DATE.fullmatch(text):
            d, m, y, hh, mm, ss = found.groups()
            if hh is None:
                return datetime.combine(date(int(y), int(m), int(d)), default_time, tzinfo=VN_TZ)
            return datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss or 0), tzinfo=VN_TZ)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(key, f"{COLUMNS[key][0]}: {text!r} is not a date (dd/mm/yyyy or dd/mm/yyyy HH:MM)") from None
    if len(text) == 10:  # an ISO day alone
        return datetime.combine(parsed.date(), default_time, tzinfo=VN_TZ)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=VN_TZ)


@lru_cache(maxsize=4096)
def _code_shape(code_format: str, unit: str, day: date) -> tuple[str, str, str] | None:
    """What a code of the unit and day looks like in the format: the text before the sequence, its format spec and the
    text after it (None: a format with another field, or the sequence twice)."""
    parts: list[str] = []
    spec_of_sequence: str | None = None
    for literal, name, spec, _ in string.Formatter().parse(code_format):
        parts.append(literal)
        if name is None:
            continue
        if name == "sequence":
            if spec_of_sequence is not None:
                return None
            spec_of_sequence = spec or ""
            parts.append("\0")
        elif name in ("unit", "day"):
            parts.append(format(unit if name == "unit" else day, spec or ""))
        else:
            return None
    if spec_of_sequence is None:
        return None
    before, _, after = "".join(parts).partition("\0")
    return before, spec_of_sequence, after


def code_pattern_sequence(code: str, code_format: str, unit: str, day: date) -> int | None:
    """The daily sequence of a code written in ``code_format`` for the unit and day; None when it is not such a code."""
    shape = _code_shape(code_format, unit, day)
    if shape is None:
        return None
    before, spec, after = shape
    if not (code.startswith(before) and code.endswith(after)) or len(code) <= len(before) + len(after):
        return None
    digits = code[len(before):len(code) - len(after)]
    if not digits.isascii() or not digits.isdigit():
        return None
    sequence = int(digits)
    return sequence if sequence and format(sequence, spec) == digits else None


def add_working_days(due: datetime, days: int, cal: WorkingCalendar) -> datetime:
    """The deadline moved by the working days its clock stood still (same time of day)."""
    local = due.astimezone(VN_TZ)
    day = local.date()
    for _ in range(days):
        day = cal.next_working(day)
    return datetime.combine(day, local.timetz())


def digest(row: RegisterRow) -> str:
    """What a row says, independent of its line, its column names and its date format: the same row imported again
    has the same digest."""
    facts = {
        "code": row.code, "procedure": row.procedure.code, "applicant": row.applicant,
        "received_at": row.received_at.isoformat(), "appointment_at": row.appointment_at.isoformat(),
        "paused_days": row.paused_days, "outcome": row.outcome,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "returned_at": row.returned_at.isoformat() if row.returned_at else None,
        "officer": row.officer, "notes": row.notes,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(facts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def check_row(raw: RawRow, *, unit: str, catalog: Catalog, law: Law, now: datetime) -> RegisterRow:
    """One row checked; ``_Bad`` names the column and the reason."""
    cells = raw.cells
    if "__extra__" in cells:
        raise _Bad(None, f"the line has more cells than the header ({cells['__extra__']})")
    code = _text(cells, "code", required=True, limit=64)
    assert code is not None
    received = _instant(cells, "received_at", time(7, 30), required=True)
    assert received is not None
    if received > now:
        raise _Bad("received_at", f"{COLUMNS['received_at'][0]} {received:%d/%m/%Y %H:%M} is in the future")
    try:
        rules, cal = law(received)
    except LookupError as exc:
        raise _Bad("received_at", f"no rules were in force on {received:%d/%m/%Y}: {exc}") from None
    given = cells.get("received_at")
    if not isinstance(given, datetime) and (isinstance(given, date) or ":" not in str(given)):
        received = datetime.combine(received.date(), cal.start_of_day, tzinfo=VN_TZ)  # a day alone: when the office opens
    day = received.astimezone(VN_TZ).date()
    sequence = code_pattern_sequence(code, rules.dossier_code, unit, day)
    if sequence is None:
        sample = rules.dossier_code.format(unit=unit, day=day, sequence=1)
        raise _Bad("code", f"{code!r} is not a code of unit {unit} received on {day:%d/%m/%Y} under the rules in force "
                           f"then ({rules.ref}: e.g. {sample})")  # fmt: skip
    procedure_text = _text(cells, "procedure", required=True, limit=300)
    assert procedure_text is not None
    procedure, why = catalog.in_force(procedure_text, day)
    if procedure is None:
        raise _Bad("procedure", why)
    applicant = _text(cells, "applicant", required=True, limit=200)
    assert applicant is not None
    closing = cal.end_of_day
    appointment = _instant(cells, "appointment", closing, required=True)
    assert appointment is not None
    finished = _instant(cells, "finished_at", closing)
    returned = _instant(cells, "returned_at", closing)
    paused_text = _text(cells, "paused_days", limit=10)
    try:
        paused = int(paused_text) if paused_text else 0
    except ValueError:
        raise _Bad("paused_days", f"{COLUMNS['paused_days'][0]}: {paused_text!r} is not a whole number of working days") from None
    if not 0 <= paused <= 365:
        raise _Bad("paused_days", f"{COLUMNS['paused_days'][0]}: from 0 to 365 working days")
    result_text = _text(cells, "result", limit=100)
    if result_text is None:
        outcome = "returned" if returned else "done" if finished else "open"
    else:
        found = OUTCOMES.get(_fold(result_text))
        if found is None:
            words = "Đang xử lý, Đã xử lý xong, Đã trả kết quả, Từ chối, Dừng xử lý, Công dân rút hồ sơ"
            raise _Bad("result", f"{COLUMNS['result'][0]}: {result_text!r} is not one of: {words} (or the status number)")
        outcome = found
    if outcome == "waiting":
        raise _Bad("result", "a dossier still waiting for additions cannot be imported (its paused clock has no start): "
                             "import it once the additions arrived, with the paused days")  # fmt: skip
    for key, value in (("appointment", appointment), ("finished_at", finished), ("returned_at", returned)):
        if value is not None and value < received:
            raise _Bad(key, f"{COLUMNS[key][0]} {value:%d/%m/%Y %H:%M} is before {COLUMNS['received_at'][0]} {received:%d/%m/%Y %H:%M}")
        if value is not None and key != "appointment" and value > now:
            raise _Bad(key, f"{COLUMNS[key][0]} {value:%d/%m/%Y %H:%M} is in the future")
    if finished and returned and returned < finished:
        raise _Bad("returned_at", f"{COLUMNS['returned_at'][0]} is before {COLUMNS['finished_at'][0]}")
    if outcome == "open" and (finished or returned):
        raise _Bad("result", f"{result_text!r} says still open, but the row has a date of end or return")
    if outcome == "returned" and returned is None:
        raise _Bad("returned_at", f"{COLUMNS['returned_at'][0]} is empty for a result returned")
    if outcome in ("done", "rejected", "stopped", "withdrawn") and finished is None:
        finished = returned
        if finished is None:
            raise _Bad("finished_at", f"{COLUMNS['finished_at'][0]} is empty for a dossier that ended ({result_text or outcome})")
    due = add_working_days(appointment, paused, cal) if paused else appointment
    end = finished or returned
    timeliness = classify(end, due) if end is not None and outcome != "withdrawn" else None
    row = RegisterRow(
        line=raw.line, code=code, sequence=sequence, procedure=procedure, applicant=applicant, received_at=received,
        appointment_at=appointment, due_at=due, paused_days=paused, outcome=outcome, finished_at=finished or returned,
        returned_at=returned, timeliness=timeliness, officer=_text(cells, "officer", limit=200),
        notes=_text(cells, "notes"), rules=rules.ref,
    )  # fmt: skip
    return RegisterRow(**{**row.__dict__, "digest": digest(row)})


def check(rows: Iterable[RawRow], *, unit: str, catalog: Catalog, law: Law, now: datetime) -> Checked:
    """Every row checked; a code given twice in the file is refused on its later lines."""
    out = Checked()
    first_line: dict[str, int] = {}
    for raw in rows:
        out.lines += 1
        if out.lines > MAX_ROWS:
            raise FileProblem("register-too-long", "Too many rows", f"At most {MAX_ROWS} rows per file: split the register by year.")
        code = raw.cells.get("code")
        try:
            row = check_row(raw, unit=unit, catalog=catalog, law=law, now=now)
        except _Bad as bad:
            out.errors.append(RowError(raw.line, bad.reason, str(code).strip() if code else None, bad.column))
            continue
        if row.code in first_line:
            out.errors.append(RowError(raw.line, f"the code {row.code} is also on line {first_line[row.code]}", row.code, "code"))
            continue
        first_line[row.code] = row.line
        out.rows.append(row)
    return out


def against_system(checked: Checked, existing: Mapping[str, str | None]) -> tuple[list[RegisterRow], int]:
    """The rows to add and how many are skipped, given the codes already in the system (code → the digest they were
    imported with, None for a dossier received here). A clash becomes an error of ``checked``."""
    new: list[RegisterRow] = []
    skipped = 0
    for row in checked.rows:
        if row.code not in existing:
            new.append(row)
        elif existing[row.code] == row.digest:
            skipped += 1
        elif existing[row.code] is None:
            checked.errors.append(RowError(row.line, f"the code {row.code} belongs to a dossier received in the system", row.code, "code"))
        else:
            checked.errors.append(RowError(
                row.line, f"the code {row.code} was imported before with other content: correct the dossier in the system, "
                "not by importing it again", row.code, "code",
            ))  # fmt: skip
    checked.errors.sort(key=lambda e: e.line)
    return new, skipped


# ---- the template ------------------------------------------------------------------------------------------------

TEMPLATE_EXAMPLE: tuple[Cell, ...] = (
    1, "000.00.12.H56-250303-0001", "1.004194", "Nguyễn Thị Hoa", "03/03/2025 08:15", "05/03/2025 17:00",
    "05/03/2025 10:00", "05/03/2025 15:30", "Đã trả kết quả", "", "", 0,
)  # fmt: skip


def template_csv() -> bytes:
    """The register template as CSV (UTF-8 with a byte-order mark, so Excel reads the diacritics)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([COLUMNS[k][0] for k in TEMPLATE_KEYS])
    writer.writerow(["" if v is None else v for v in TEMPLATE_EXAMPLE])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def template_xlsx() -> bytes:
    """The register template as XLSX: the header and one example line."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sổ theo dõi hồ sơ"
    sheet.append([COLUMNS[k][0] for k in TEMPLATE_KEYS])
    sheet.append(list(TEMPLATE_EXAMPLE))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_csv(out: IO[str], rows: Iterable[Iterable[Cell]]) -> None:
    """Write register lines under the template's header (for tools and tests that make registers)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([COLUMNS[k][0] for k in TEMPLATE_KEYS])
    writer.writerows(rows)


def vn(instant: datetime | None) -> str:
    """An instant as the register writes it (dd/mm/yyyy HH:MM, Vietnam time)."""
    return "" if instant is None else instant.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")



@dataclass(frozen=True)
class Upload:
    """A register file received, spooled to disk."""

    path: Path
    filename: str | None
    sha256: str
    size: int
