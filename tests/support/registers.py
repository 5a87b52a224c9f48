"""Generated paper registers (Sổ theo dõi hồ sơ) for the register import's tests and its bench: good lines that carry
the facts a hand count reads, and a copy of the file in which some lines are made bad in known ways."""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.intake import registers
from shared.calendar import WorkingCalendar, classify
from shared.clock import VN_TZ
from shared.rules import shipped_book

# Seed catalog procedures (in force since 2000) and their legal time limits in working days.
PROCEDURES = (("1.004194", 3), ("1.004873", 3), ("1.004884", 5), ("2.001035", 2), ("1.004222", 7), ("1.010038", 3))
CAL = WorkingCalendar()  # the national calendar with the shipped office hours (07:30–17:00)
NAMES = ("Nguyễn Thị Hoa", "Trần Văn Đức", "Lê Thị Ngọc Ánh", "Phạm Quốc Việt", "Đỗ Thị Hường", "Võ Minh Khôi")


@dataclass(frozen=True)
class Line:
    """One register line, and what a reader of the paper register counts it as."""

    cells: tuple[str, ...]  # in registers.TEMPLATE_KEYS order
    code: str
    outcome: str
    received_at: datetime
    due_at: datetime
    ended_at: datetime | None
    timeliness: str | None


def month(instant: datetime) -> date:
    local = instant.astimezone(VN_TZ)
    return date(local.year, local.month, 1)


def _at(day: date, minute_of_day: int) -> datetime:
    return datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tzinfo=VN_TZ)


def _working(day: date) -> date:
    return day if CAL.is_working(day) else CAL.next_working(day)


def _add(day: date, n: int) -> date:
    for _ in range(n):
        day = CAL.next_working(day)
    return day


def _back(day: date, n: int) -> date:
    for _ in range(n):
        day -= timedelta(days=1)
        while not CAL.is_working(day):
            day -= timedelta(days=1)
    return day


def code_of(unit: str, day: date, sequence: int) -> str:
    rules = shipped_book().in_force(day)
    return rules.dossier_code.format(unit=unit, day=day, sequence=sequence)


def generate(unit: str, n: int, now: datetime, *, seed: int = 22, days: int = 730) -> list[Line]:
    """``n`` good lines received over ``days`` days before ``now``: most closed (returned, done, rejected, stopped,
    withdrawn; early, on time or late; some paused), the last weeks' open (some already late)."""
    rng = random.Random(seed)
    today = now.astimezone(VN_TZ).date()
    first = today - timedelta(days=days)
    open_from = today - timedelta(days=30)
    sequences: Counter[date] = Counter()
    lines = []
    for i in range(n):
        is_open = i >= n - max(1, n // 25)  # the last 4 %: received in the last month, still open
        if is_open:
            day = _working(open_from + timedelta(days=rng.randrange(0, 28)))
        else:
            day = _working(first + timedelta(days=rng.randrange(0, days - 45)))
        if day >= today:
            day = _back(today, 1)
        sequences[day] += 1
        code = code_of(unit, day, sequences[day])
        received = _at(day, rng.randrange(7 * 60 + 30, 16 * 60 + 30))
        procedure, limit = PROCEDURES[i % len(PROCEDURES)]
        appointment = _at(_add(day, limit), 17 * 60)
        paused = rng.randrange(1, 6) if not is_open and rng.random() < 0.1 else 0
        due = registers.add_working_days(appointment, paused, CAL) if paused else appointment
        finished = returned = None
        if is_open:
            outcome, result = "open", "Đang xử lý"
        else:
            outcome, result = rng.choices(
                [("returned", "Đã trả kết quả"), ("done", "Đã xử lý xong"), ("rejected", "Từ chối"), ("stopped", "Dừng xử lý"),
                 ("withdrawn", "Công dân rút hồ sơ")],
                weights=[78, 6, 6, 4, 6],
            )[0]  # fmt: skip
            verdict = rng.choices(["early", "on_time", "late"], weights=[55, 30, 15])[0]
            due_day = due.astimezone(VN_TZ).date()
            if verdict == "early":
                end_day = _back(due_day, rng.randrange(1, 3))
                end_day = end_day if end_day > day else due_day
            elif verdict == "late":
                end_day = _add(due_day, rng.randrange(1, 12))
            else:
                end_day = due_day
            finished = _at(end_day, rng.randrange(8 * 60, 16 * 60 + 50))
            if finished <= received:
                finished = received + timedelta(hours=1)
            if outcome == "returned":
                returned = finished + timedelta(hours=rng.randrange(0, 48))
        ended = finished
        timeliness = classify(ended, due) if ended is not None and outcome != "withdrawn" else None
        cells = (
            str(i + 1), code, procedure, NAMES[i % len(NAMES)], registers.vn(received), registers.vn(appointment),
            registers.vn(finished) if outcome != "returned" or rng.random() < 0.7 else "",
            registers.vn(returned), result, "Nhập từ sổ giấy" if i % 7 == 0 else "",
            "Nguyễn Văn Bình" if outcome == "open" and i % 3 == 0 else "", str(paused) if paused else "",
        )  # fmt: skip
        if outcome == "returned" and not cells[6]:
            ended = returned  # a register that wrote only the return day: the end of processing is that day
            timeliness = classify(ended, due) if ended else None
        lines.append(Line(cells, code, outcome, received, due, ended, timeliness))
    return lines


BAD_KINDS = ("unknown procedure", "appointment before reception", "another unit's code", "no such date",
             "open with a return date", "code given twice", "received in the future", "paused days not a number")  # fmt: skip


def spoil(lines: list[Line], share: float, now: datetime, *, seed: int = 3) -> tuple[list[tuple[str, ...]], dict[int, str]]:
    """The file's lines with ``share`` of them made bad, and {file line number: what is wrong} (the header is line 1)."""
    rng = random.Random(seed)
    count = round(len(lines) * share)
    chosen = sorted(rng.sample(range(1, len(lines)), count))
    bad: dict[int, str] = {}
    out = [line.cells for line in lines]
    taken = set(chosen)
    for k, index in enumerate(chosen):
        kind = BAD_KINDS[k % len(BAD_KINDS)]
        cells = list(out[index])
        if kind == "unknown procedure":
            cells[2] = "9.999999"
        elif kind == "appointment before reception":
            cells[5] = registers.vn(lines[index].received_at - timedelta(days=1))
        elif kind == "another unit's code":
            cells[1] = cells[1].replace(cells[1].split("-")[0], "000.00.99.X99", 1)
        elif kind == "no such date":
            cells[4] = "31/02/" + cells[4][6:]
        elif kind == "open with a return date":
            cells[8], cells[7] = "Đang xử lý", registers.vn(lines[index].received_at + timedelta(days=1))
        elif kind == "code given twice":
            if index - 1 in taken:
                cells[2] = "9.999999"
            else:
                cells[1] = out[index - 1][1]
        elif kind == "received in the future":
            cells[4] = registers.vn(now + timedelta(days=3))
            cells[5] = registers.vn(now + timedelta(days=8))
            cells[6] = cells[7] = ""
            cells[8] = "Đang xử lý"
        elif kind == "paused days not a number":
            cells[11] = "ba"
        out[index] = tuple(cells)
        bad[index + 2] = kind
    return out, bad


def to_csv(rows: list[tuple[str, ...]], *, bom: bool = True, english: bool = False, delimiter: str = ",") -> bytes:
    """The register as CSV in UTF-8 (the form's Vietnamese headers, or the English keys)."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(registers.TEMPLATE_KEYS if english else [registers.COLUMNS[k][0] for k in registers.TEMPLATE_KEYS])
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode("utf-8")


def to_xlsx(rows: list[tuple[str, ...]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sổ theo dõi hồ sơ")
    sheet.append([registers.COLUMNS[k][0] for k in registers.TEMPLATE_KEYS])
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def to_cp1258(text: str) -> bytes:
    """Text in Windows-1258: base letters precomposed where the code page has them, tone marks combining."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        tones = "".join(c for c in parts if c in _TONES)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES))
        out += (base + tones).encode("cp1258")
    return bytes(out)


def to_tcvn3(text: str) -> bytes:
    """Text in TCVN3 (ABC): lowercase Vietnamese letters as their one-byte codes."""
    return b"".join(registers.UNICODE_TO_TCVN3.get(ch) or ch.encode("latin-1") for ch in text)


def expected_months(lines: list[Line]) -> dict[date, dict[str, int]]:
    """The hand count: per month, what the standard report counts of these lines."""
    counts: dict[date, Counter[str]] = {}
    for line in lines:
        counts.setdefault(month(line.received_at), Counter())["received_total"] += 1
        if line.outcome == "open" or line.ended_at is None:
            continue
        c = counts.setdefault(month(line.ended_at), Counter())
        if line.outcome == "withdrawn":
            c["withdrawn"] += 1
            continue
        c["resolved_total"] += 1
        c[f"resolved_{line.timeliness}"] += 1
        if line.outcome in ("rejected", "stopped"):
            c[line.outcome] += 1
    keys = ("received_total", "resolved_total", "resolved_early", "resolved_on_time", "resolved_late", "rejected", "stopped", "withdrawn")
    return {m: {k: c[k] for k in keys} for m, c in sorted(counts.items())}


