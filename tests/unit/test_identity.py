"""Citizen id numbers and tax codes are checked with a reason a clerk can act on."""

from __future__ import annotations

from datetime import date

import pytest

from shared.identity import InvalidIdentifier, check_tax_code, parse_citizen_id

TODAY = date(2026, 11, 25)


def test_a_citizen_id_tells_province_sex_and_birth_year() -> None:
    cid = parse_citizen_id("001203004567", today=TODAY)
    assert (cid.province_code, cid.sex, cid.birth_year) == ("001", "male", 2003)
    assert cid.masked == "*********567"
    assert parse_citizen_id("079188001234", today=TODAY).sex == "female"
    assert parse_citizen_id("079088001234", today=TODAY).birth_year == 1988


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("00120300456", "exactly 12 digits"),
        ("00120300456a", "exactly 12 digits"),
        ("003203004567", "province code"),
        ("001250004567", "in the future"),
    ],
)
def test_a_bad_citizen_id_is_refused_with_the_reason(number: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        parse_citizen_id(number, today=TODAY)


@pytest.mark.parametrize("code", ["0100112437", "0100109106", "0100109106-001"])
def test_real_tax_codes_pass(code: str) -> None:
    assert check_tax_code(code) == code


@pytest.mark.parametrize(("code", "reason"), [("0100112438", "check digit"), ("01001124", "10 digits"), ("0100112437-1", "10 digits")])
def test_bad_tax_codes_are_refused(code: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        check_tax_code(code)
