"""Fee assessment from a procedure's fee lines (DOMAIN.md §6): per case, per page, per copy. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FeeUnit(StrEnum):
    """What a fee line is charged per."""

    PER_CASE = "per_case"
    PER_PAGE = "per_page"
    PER_COPY = "per_copy"


@dataclass(frozen=True)
class FeeLine:
    """One fee or charge of a procedure, in whole VND."""

    code: str
    name: str
    amount: int
    unit: FeeUnit = FeeUnit.PER_CASE
    online_amount: int | None = None
    reduced_from_page: int | None = None
    reduced_amount: int | None = None
    cap_per_copy: int | None = None
    exemptions: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FeeItem:
    """What one line costs for one dossier."""

    code: str
    name: str
    amount: int
    quantity: int
    exempted_by: str | None = None


class PagesNeeded(ValueError):
    """A per-page line cannot be assessed before the pages are counted."""


def line_amount(line: FeeLine, *, online: bool, pages: int | None, copies: int) -> int:
    """The amount of one line before exemptions."""
    base = line.online_amount if online and line.online_amount is not None else line.amount
    if line.unit is FeeUnit.PER_CASE:
        return base
    if line.unit is FeeUnit.PER_COPY:
        return base * copies
    if pages is None:
        raise PagesNeeded(f"fee line {line.code} is charged per page: the page count is needed")
    full = pages if line.reduced_from_page is None else min(pages, line.reduced_from_page - 1)
    reduced = pages - full
    per_copy = full * base + reduced * (line.reduced_amount if line.reduced_amount is not None else base)
    if line.cap_per_copy is not None:
        per_copy = min(per_copy, line.cap_per_copy)
    return per_copy * copies


def assess(
    lines: list[FeeLine], *, online: bool, pages: int | None = None, copies: int = 1, exemption: str | None = None
) -> list[FeeItem]:
    """Every line's amount for a dossier; an exemption the line lists makes it zero."""
    if copies < 1 or (pages is not None and pages < 1):
        raise ValueError("copies and pages must be at least 1")
    items = []
    for line in lines:
        quantity = copies if line.unit is not FeeUnit.PER_CASE else 1
        if exemption and exemption in line.exemptions:
            items.append(FeeItem(line.code, line.name, 0, quantity, exempted_by=exemption))
            continue
        items.append(FeeItem(line.code, line.name, line_amount(line, online=online, pages=pages, copies=copies), quantity))
    return items


def total(items: list[FeeItem]) -> int:
    """Sum of the items."""
    return sum(item.amount for item in items)
