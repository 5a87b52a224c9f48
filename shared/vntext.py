"""Vietnamese text as forms, pages and messages print it: dates in words, money in words, masked id numbers. Pure.

Dates follow Decree 30/2020 (Appendix I): a day below 10 and the months 1 and 2 take a leading zero, other
months do not ("ngày 05 tháng 3"). Datetimes must be timezone-aware; they are shown in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

from datetime import date, datetime

from shared.clock import VN_TZ


def mask_id_number(id_number: str) -> str:
    """Show only the last 3 characters of an ID number: "079201001234" -> "*********234".

    Spaces are dropped first; a value of 3 characters or fewer is masked entirely.
    """
    compact = "".join(id_number.split())
    if len(compact) <= 3:
        return "*" * len(compact)
    return "*" * (len(compact) - 3) + compact[-3:]


def in_vietnam(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("datetimes printed on forms must be timezone-aware")
    return at.astimezone(VN_TZ)


def format_date(day: date | datetime) -> str:
    """ "ngày 03 tháng 02 năm 2026" / "ngày 15 tháng 3 năm 2026" (Decree 30/2020 zero-padding).

    A datetime is first moved to Vietnam time.
    """
    if isinstance(day, datetime):
        day = in_vietnam(day).date()
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def format_instant(at: datetime) -> str:
    """ "08 giờ 05 phút, ngày 03 tháng 02 năm 2026", in Asia/Ho_Chi_Minh."""
    local = in_vietnam(at)
    return f"{local.hour:02d} giờ {local.minute:02d} phút, {format_date(local)}"


def format_vnd(amount: int) -> str:
    """ "15.000": whole đồng with dots between thousands, as Vietnamese documents print money."""
    return f"{amount:,}".replace(",", ".")


_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUPS = ("", "nghìn", "triệu", "tỷ", "nghìn tỷ", "triệu tỷ")


def _three_digits(n: int, *, full: bool) -> list[str]:
    """Words of 0-999; ``full`` reads the hundreds and "linh" even when zero (a group after a larger one)."""
    hundreds, tens, ones = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if full or hundreds:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if ones and words:
            words.append("linh")
    elif tens == 1:
        words.append("mười")
    else:
        words += [_DIGITS[tens], "mươi"]
    if ones == 1 and tens > 1:
        words.append("mốt")
    elif ones == 4 and tens > 1:
        words.append("tư")
    elif ones == 5 and tens > 0:
        words.append("lăm")
    elif ones:
        words.append(_DIGITS[ones])
    return words


def amount_in_words(amount: int) -> str:
    """The amount as receipts write it: 15000 → "Mười lăm nghìn đồng", 1250000 → "Một triệu hai trăm năm mươi nghìn đồng"."""
    if amount < 0 or amount >= 1000 ** len(_GROUPS):
        raise ValueError("amount out of range")
    if amount == 0:
        return "Không đồng"
    groups = []
    rest = amount
    while rest:
        groups.append(rest % 1000)
        rest //= 1000
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        value = groups[index]
        if value == 0:
            continue
        words += _three_digits(value, full=bool(words))
        if _GROUPS[index]:
            words.append(_GROUPS[index])
    text = " ".join(words) + " đồng"
    return text[0].upper() + text[1:]
