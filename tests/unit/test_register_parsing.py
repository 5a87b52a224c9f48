"""The paper register reader and its checks (services/intake/registers.py): pure, no database."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from services.intake import registers
from services.intake.registers import Catalog, ProcedureInForce, RawRow
from shared.calendar import WorkingCalendar
from shared.clock import VN_TZ
from shared.rules import shipped_book
from tests.support import registers as gen

UNIT = "000.00.12.H56"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=VN_TZ)
CATALOG = Catalog([
    ProcedureInForce("1.004194", 1, date(2000, 1, 1), "Đăng ký tạm trú", "Hộ tịch"),
    ProcedureInForce("1.004194", 2, date(2025, 7, 1), "Đăng ký tạm trú", "Cư trú"),
    ProcedureInForce("9.000001", 1, date(2026, 1, 1), "Thủ tục mới", "Khác"),
])  # fmt: skip
BOOK = shipped_book()


def law(received_at: datetime) -> tuple:
    rules = BOOK.in_force(received_at, "H56")
    return rules, WorkingCalendar(start_of_day=rules.office.opens, end_of_day=rules.office.closes, cutoff=rules.office.cutoff)


def row(line: int = 2, **cells: object) -> RawRow:
    base = {
        "code": f"{UNIT}-250303-0001", "procedure": "1.004194", "applicant": "Nguyễn Thị Hoa",
        "received_at": "03/03/2025 08:15", "appointment": "06/03/2025 17:00",
    }  # fmt: skip
    return RawRow(line, {**base, **cells})  # type: ignore[arg-type]


def check(*rows: RawRow) -> registers.Checked:
    return registers.check(rows, unit=UNIT, catalog=CATALOG, law=law, now=NOW)


def write(tmp_path: Path, data: bytes, name: str = "so.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---- reading ----------------------------------------------------------------------------------------------------


def test_vietnamese_and_english_headers_read_the_same(tmp_path: Path) -> None:
    lines = gen.generate(UNIT, 30, NOW, days=200)
    rows = [line.cells for line in lines]
    vi = list(registers.read(write(tmp_path, gen.to_csv(rows), "vi.csv")))
    en = list(registers.read(write(tmp_path, gen.to_csv(rows, bom=False, english=True, delimiter=";"), "en.csv")))
    xlsx = list(registers.read(write(tmp_path, gen.to_xlsx(rows), "so.xlsx")))
    assert [r.cells for r in vi] == [r.cells for r in en]
    assert [r.line for r in vi] == list(range(2, 32))
    assert [(r.line, {k: str(v) for k, v in r.cells.items() if v not in (None, "")}) for r in xlsx] == [
        (r.line, {k: v for k, v in r.cells.items() if v}) for r in vi
    ]
    assert vi[0].cells["applicant"] == "Nguyễn Thị Hoa"


def test_an_unknown_or_missing_column_refuses_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "Mã hồ sơ,Người nộp,Ngày nhận,Hẹn trả,Số điện thoại\r\n".encode())
    with pytest.raises(registers.FileProblem) as caught:
        list(registers.read(path))
    assert caught.value.slug == "register-columns" and "Số điện thoại" in caught.value.detail
    path = write(tmp_path, "Mã hồ sơ,Người nộp,Ngày nhận,Hẹn trả\r\n".encode())
    with pytest.raises(registers.FileProblem) as caught:
        list(registers.read(path))
    assert caught.value.extensions["missing"] == ["procedure"]


@pytest.mark.parametrize(("encode", "name"), [(gen.to_cp1258, "Windows-1258"), (gen.to_tcvn3, "TCVN3 (ABC)")])
def test_a_legacy_encoding_is_named_and_refused(tmp_path: Path, encode, name: str) -> None:
    text = gen.to_csv([line.cells for line in gen.generate(UNIT, 5, NOW, days=100)], bom=False).decode("utf-8")
    path = write(tmp_path, encode(text))
    with pytest.raises(registers.FileProblem) as caught:
        list(registers.read(path))
    assert caught.value.slug == "register-encoding"
    assert caught.value.extensions["detected"] == name
    assert "UTF-8" in caught.value.detail and name in caught.value.detail


def test_non_utf8_after_the_first_64_kib_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = [line.cells for line in gen.generate(UNIT, 2000, NOW, days=300)]
    good = gen.to_csv(lines).decode("utf-8")
    head, tail = good[:70_000], good[70_000:]
    path = write(tmp_path, head.encode("utf-8") + gen.to_cp1258(tail))
    with pytest.raises(registers.FileProblem) as caught:
        list(registers.read(path))
    assert caught.value.slug == "register-encoding" and "Line" in caught.value.detail


# ---- checking ----------------------------------------------------------------------------------------------------


def test_a_good_closed_row_is_judged_against_its_appointment() -> None:
    checked = check(row(finished_at="05/03/2025 10:00", returned_at="05/03/2025 15:30", result="Đã trả kết quả"))
    assert checked.errors == []
    (r,) = checked.rows
    assert (r.outcome, r.timeliness, r.sequence, r.procedure.version) == ("returned", "early", 1, 1)
    assert r.rules == "VN.1" and r.received_at == datetime(2025, 3, 3, 8, 15, tzinfo=VN_TZ)


def test_the_catalog_and_the_rules_are_those_in_force_at_the_rows_date() -> None:
    checked = check(
        row(2, code=f"{UNIT}-250703-0001", received_at="03/07/2025 09:00", appointment="08/07/2025 17:00"),
        row(3, code=f"{UNIT}-251203-0001", procedure="9.000001", received_at="03/12/2025", appointment="08/12/2025"),
        row(4, code=f"{UNIT}-260203-0001", procedure="Thủ tục mới", received_at="03/02/2026", appointment="06/02/2026"),
    )
    assert [(e.line, e.column) for e in checked.errors] == [(3, "procedure")]
    assert "not in force on 03/12/2025" in checked.errors[0].reason
    assert [(r.procedure.code, r.procedure.version, r.rules) for r in checked.rows] == [("1.004194", 2, "VN.2"), ("9.000001", 1, "VN.2")]
    assert checked.rows[1].received_at.hour == 7 and checked.rows[1].appointment_at.hour == 17  # a day alone: office hours


@pytest.mark.parametrize(
    ("cells", "column", "words"),
    [
        ({"code": "000.00.99.X99-250303-0001"}, "code", "not a code of unit"),
        ({"code": f"{UNIT}-250304-0001"}, "code", "received on 03/03/2025"),
        ({"code": f"{UNIT}-250303-1"}, "code", "not a code"),
        ({"procedure": "9.999999"}, "procedure", "no procedure"),
        ({"appointment": "02/03/2025 17:00"}, "appointment", "before"),
        ({"received_at": "31/02/2025"}, "received_at", "not a date"),
        ({"received_at": "03/03/2027 08:00", "code": f"{UNIT}-270303-0001"}, "received_at", "future"),
        ({"returned_at": "04/03/2025 10:00", "finished_at": "05/03/2025 10:00"}, "returned_at", "before"),
        ({"result": "Đang xử lý", "returned_at": "05/03/2025 10:00"}, "result", "still open"),
        ({"result": "Đã trả kết quả"}, "returned_at", "empty"),
        ({"result": "Từ chối"}, "finished_at", "empty"),
        ({"result": "xong rồi"}, "result", "not one of"),
        ({"result": "Chờ bổ sung hồ sơ"}, "result", "waiting for additions"),
        ({"paused_days": "ba"}, "paused_days", "whole number"),
        ({"applicant": " "}, "applicant", "empty"),
    ],
)
def test_a_bad_row_names_its_line_column_and_reason(cells: dict, column: str, words: str) -> None:
    checked = check(row(7, **cells))
    assert checked.rows == []
    (error,) = checked.errors
    assert (error.line, error.column) == (7, column) and words in error.reason, error


def test_a_code_given_twice_is_refused_on_its_later_line() -> None:
    checked = check(row(2), row(3, code=f"{UNIT}-250303-0002"), row(4))
    assert [(e.line, e.code) for e in checked.errors] == [(4, f"{UNIT}-250303-0001")] and "line 2" in checked.errors[0].reason


def test_paused_days_move_the_deadline_by_working_days() -> None:
    # appointment Friday 07/03/2025; two paused working days → Tuesday 11/03; finished Monday 10/03 is early
    checked = check(row(appointment="07/03/2025 17:00", paused_days="2", finished_at="10/03/2025 09:00", result="9"))
    (r,) = checked.rows
    assert r.due_at == datetime(2025, 3, 11, 17, 0, tzinfo=VN_TZ) and (r.outcome, r.timeliness) == ("done", "early")
    late = check(row(appointment="07/03/2025 17:00", finished_at="10/03/2025 09:00", result="done")).rows[0]
    assert late.timeliness == "late"


def test_the_digest_ignores_format_and_line_but_not_content() -> None:
    a = check(row(2, received_at="03/03/2025 08:15")).rows[0]
    b = check(row(9, received_at="2025-03-03T08:15:00+07:00")).rows[0]
    c = check(row(2, applicant="Nguyễn Thị Hòa")).rows[0]
    assert a.digest == b.digest != c.digest


def test_against_the_system_same_content_is_skipped_other_content_clashes() -> None:
    rows = [row(2), row(3, code=f"{UNIT}-250303-0002"), row(4, code=f"{UNIT}-250303-0003"), row(5, code=f"{UNIT}-250303-0004")]
    checked = check(*rows)
    digests = {r.code: r.digest for r in checked.rows}
    existing = {f"{UNIT}-250303-0001": digests[f"{UNIT}-250303-0001"], f"{UNIT}-250303-0002": "0" * 64, f"{UNIT}-250303-0003": None}
    new, skipped = registers.against_system(checked, existing)
    assert [r.code for r in new] == [f"{UNIT}-250303-0004"] and skipped == 1
    assert [(e.line, "imported before" in e.reason, "received in the system" in e.reason) for e in checked.errors] == [
        (3, True, False), (4, False, True)
    ]


def test_a_generated_register_with_spoiled_lines_reports_exactly_those(tmp_path: Path) -> None:
    lines = gen.generate(UNIT, 600, NOW)
    spoiled, bad = gen.spoil(lines, 0.03, NOW)
    checked = registers.check(registers.read(write(tmp_path, gen.to_csv(spoiled))), unit=UNIT, catalog=_seed_catalog(), law=law, now=NOW)
    assert sorted(e.line for e in checked.errors) == sorted(bad) and len(bad) == 18
    good = registers.check(registers.read(write(tmp_path, gen.to_csv([x.cells for x in lines]), "good.csv")), unit=UNIT,
                           catalog=_seed_catalog(), law=law, now=NOW)  # fmt: skip
    assert good.errors == [] and len(good.rows) == 600
    assert [(r.outcome, r.timeliness, r.due_at) for r in good.rows] == [(x.outcome, x.timeliness, x.due_at) for x in lines]


def _seed_catalog() -> Catalog:
    return Catalog(ProcedureInForce(code, 1, date(2000, 1, 1), f"Thủ tục {code}", "Hộ tịch") for code, _ in gen.PROCEDURES)


def test_the_templates_read_back_as_one_good_line(tmp_path: Path) -> None:
    for name, data in (("mau.csv", registers.template_csv()), ("mau.xlsx", registers.template_xlsx())):
        (raw,) = list(registers.read(write(tmp_path, data, name)))
        checked = check(raw)
        assert checked.errors == [], (name, checked.errors)
        assert checked.rows[0].outcome == "returned"


def test_a_code_sequence_must_be_written_as_the_format_writes_it() -> None:
    day = date(2025, 3, 3)
    fmt = "{unit}-{day:%y%m%d}-{sequence:04d}"
    assert registers.code_pattern_sequence(f"{UNIT}-250303-0042", fmt, UNIT, day) == 42
    assert registers.code_pattern_sequence(f"{UNIT}-250303-12345", fmt, UNIT, day) == 12345
    assert registers.code_pattern_sequence(f"{UNIT}-250303-042", fmt, UNIT, day) is None
    assert registers.code_pattern_sequence(f"{UNIT}-250303-0000", fmt, UNIT, day) is None
    assert registers.code_pattern_sequence(f"{UNIT}-250303-0042x", fmt, UNIT, day) is None
    assert registers.add_working_days(datetime(2025, 4, 29, 17, tzinfo=VN_TZ), 1, WorkingCalendar()).date() > date(2025, 5, 1)
