"""The national dossier status codes (TrangThaiHoSo, DOMAIN.md §7) that every service and the portal share. Pure."""

from __future__ import annotations

from enum import IntEnum


class NationalStatus(IntEnum):
    """A dossier's status as the national portal (DVCQG) counts it."""

    REGISTERED = 1  # an online dossier not yet accepted
    ACCEPTED = 2
    NOT_ACCEPTED = 3
    PROCESSING = 4
    SUPPLEMENT_REQUESTED = 5
    AWAITING_PAYMENT = 6
    WITHDRAWN = 7
    STOPPED = 8
    RESOLVED = 9
    RETURNED = 10

    @property
    def label(self) -> str:
        """The Vietnamese name the portal and the citizen see."""
        return STATUS_NAMES[self]


STATUS_NAMES: dict[int, str] = {
    NationalStatus.REGISTERED: "Mới đăng ký",
    NationalStatus.ACCEPTED: "Được tiếp nhận",
    NationalStatus.NOT_ACCEPTED: "Không được tiếp nhận",
    NationalStatus.PROCESSING: "Đang xử lý",
    NationalStatus.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    NationalStatus.AWAITING_PAYMENT: "Yêu cầu thực hiện nghĩa vụ tài chính",
    NationalStatus.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    NationalStatus.STOPPED: "Dừng xử lý",
    NationalStatus.RESOLVED: "Đã xử lý xong",
    NationalStatus.RETURNED: "Đã trả kết quả",
}

# Still in the one-stop's hands: accepted, processing, waiting for additions or for the fee.
OPEN_STATUSES = frozenset(
    {NationalStatus.ACCEPTED, NationalStatus.PROCESSING, NationalStatus.SUPPLEMENT_REQUESTED, NationalStatus.AWAITING_PAYMENT}
)
