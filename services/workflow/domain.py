"""Case rules: states and their national status codes (DOMAIN.md §1.9, §7.3). Pure: no I/O."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    """The case's state."""

    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    AWAITING_PAYMENT = "awaiting_payment"
    WITHDRAWN = "withdrawn"
    STOPPED = "stopped"
    DONE = "done"
    RETURNED = "returned"
    REJECTED = "rejected"


NATIONAL_STATUS: dict[CaseStatus, int] = {
    CaseStatus.ACCEPTED: 2,
    CaseStatus.REJECTED: 3,
    CaseStatus.IN_PROGRESS: 4,
    CaseStatus.SUPPLEMENT_REQUESTED: 5,
    CaseStatus.AWAITING_PAYMENT: 6,
    CaseStatus.WITHDRAWN: 7,
    CaseStatus.STOPPED: 8,
    CaseStatus.DONE: 9,
    CaseStatus.RETURNED: 10,
}

NATIONAL_STATUS_NAME: dict[int, str] = {
    1: "Mới đăng ký",
    2: "Được tiếp nhận",
    3: "Không được tiếp nhận",
    4: "Đang xử lý",
    5: "Yêu cầu bổ sung giấy tờ",
    6: "Yêu cầu thực hiện nghĩa vụ tài chính",
    7: "Công dân yêu cầu rút hồ sơ",
    8: "Dừng xử lý",
    9: "Đã xử lý xong",
    10: "Đã trả kết quả",
}
