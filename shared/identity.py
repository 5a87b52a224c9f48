"""Applicant identifiers: the citizen id number (CCCD) and the tax code. Pure: no I/O.

``CitizenIdNumber``, ``TaxCode`` and ``IdNumber`` are the types request models use for these fields: the
value is checked where it enters, with the same rule and message in every service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from pydantic import AfterValidator

# Province codes of the 12-digit number (Circular 07/2016/TT-BCA, 63 provinces before the 2025 merger) [L].
PROVINCE_CODES: frozenset[str] = frozenset(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034 035 036 037 038 040 042 "
    "044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070 072 074 075 077 079 080 082 083 084 086 087 "
    "089 091 092 093 094 095 096".split()
)
_CCCD = re.compile(r"\d{12}")
_TAX = re.compile(r"(\d{10})(-\d{3})?")
_TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


class InvalidIdentifier(ValueError):
    """The identifier is malformed; the message says how."""


@dataclass(frozen=True)
class CitizenId:
    """What a CCCD number says about its holder."""

    number: str
    province_code: str
    sex: str
    birth_year: int

    @property
    def masked(self) -> str:
        """The number as logs and forms may show it."""
        return "*" * 9 + self.number[-3:]


def parse_citizen_id(number: str, *, today: date) -> CitizenId:
    """Check a 12-digit citizen id: province code, century-and-sex digit, birth year not in the future."""
    number = number.strip()
    if not _CCCD.fullmatch(number):
        raise InvalidIdentifier("a citizen id number has exactly 12 digits")
    province, century_sex, year = number[:3], int(number[3]), int(number[4:6])
    if province not in PROVINCE_CODES:
        raise InvalidIdentifier(f"digits 1-3 ({province}) are not a province code")
    birth_year = 1900 + 100 * (century_sex // 2) + year
    if birth_year > today.year:
        raise InvalidIdentifier(f"digits 4-6 give a birth year ({birth_year}) in the future")
    return CitizenId(number=number, province_code=province, sex="male" if century_sex % 2 == 0 else "female", birth_year=birth_year)


def check_tax_code(code: str) -> str:
    """Check an organisation's tax code (10 digits with a check digit, or 10-3 for a branch)."""
    code = code.strip()
    match = _TAX.fullmatch(code)
    if not match:
        raise InvalidIdentifier("a tax code has 10 digits, or 10 digits, a hyphen and 3 digits for a branch")
    digits = [int(c) for c in match.group(1)]
    check = 10 - sum(w * d for w, d in zip(_TAX_WEIGHTS, digits, strict=False)) % 11
    if check != digits[9]:
        raise InvalidIdentifier("the tax code's check digit (the 10th) does not match")
    return code


def _citizen_id(value: str) -> str:
    try:
        return parse_citizen_id(value, today=date.today()).number
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


def _tax_code(value: str) -> str:
    try:
        return check_tax_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


def _either(value: str) -> str:
    compact = "".join(value.split())
    try:
        return parse_citizen_id(compact, today=date.today()).number if len(compact) == 12 else check_tax_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(f"a citizen id number (12 digits) or an organisation's tax code: {exc}") from None


# A citizen id number (CCCD, 12 digits), checked.
CitizenIdNumber = Annotated[str, AfterValidator(_citizen_id)]
# An organisation's tax code (10 digits, or 10-3 for a branch), checked.
TaxCode = Annotated[str, AfterValidator(_tax_code)]
# Either one: a person's or an organisation's number (a citizen's document store is keyed by it).
IdNumber = Annotated[str, AfterValidator(_either)]
