"""Applicant notifications: the applicant's chosen contact on the case, templates (seeded), notifications, attempts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

_SIGN_OFF = "\n\nTrân trọng.\n{one_stop_name}, {unit_name}"

# (kind, channel, subject, body): the words an admin may change later through the API.
SEED: list[tuple[str, str, str | None, str]] = [
    (
        "accepted",
        "email",
        "Hồ sơ {dossier_code} đã được tiếp nhận",
        "Kính gửi ông/bà {applicant_name},\n\n"
        "Hồ sơ của ông/bà đã được tiếp nhận.\n"
        "Mã hồ sơ: {dossier_code}\n"
        "Thủ tục: {procedure_name}\n"
        "Thời gian tiếp nhận: {received_at}\n"
        "Hẹn trả kết quả: {appointment_at}\n\n"
        "Tra cứu tình trạng hồ sơ: {lookup_url}" + _SIGN_OFF,
    ),
    ("accepted", "sms", None, "Hồ sơ {dossier_code} đã được tiếp nhận. Hẹn trả kết quả: {appointment_at}."),
    (
        "supplement_requested",
        "email",
        "Hồ sơ {dossier_code}: yêu cầu bổ sung, hoàn thiện hồ sơ",
        "Kính gửi ông/bà {applicant_name},\n\n"
        "Hồ sơ {dossier_code} ({procedure_name}) cần được bổ sung, hoàn thiện.\n"
        "Lý do: {supplement_reason}\n"
        "Giấy tờ cần bổ sung: {supplement_items}\n\n"
        "Thời gian giải quyết tạm dừng cho đến khi ông/bà nộp đủ giấy tờ bổ sung tại {one_stop_name}.\n"
        "Tra cứu tình trạng hồ sơ: {lookup_url}" + _SIGN_OFF,
    ),
    ("supplement_requested", "sms", None, "Hồ sơ {dossier_code} cần bổ sung: {supplement_items}. Lý do: {supplement_reason}."),
    (
        "result_ready",
        "email",
        "Hồ sơ {dossier_code} đã có kết quả",
        "Kính gửi ông/bà {applicant_name},\n\n"
        "Hồ sơ {dossier_code} ({procedure_name}) đã được giải quyết xong lúc {finished_at}.\n"
        "{collect_note}\n"
        "{fee_note}\n\n"
        "Tra cứu tình trạng hồ sơ: {lookup_url}" + _SIGN_OFF,
    ),
    ("result_ready", "sms", None, "Hồ sơ {dossier_code} đã có kết quả. {collect_note} {fee_note}"),
    (
        "apology_issued",
        "email",
        "Hồ sơ {dossier_code}: thư xin lỗi và hẹn lại ngày trả kết quả",
        "Kính gửi ông/bà {applicant_name},\n\n"
        "Chúng tôi chân thành xin lỗi ông/bà vì hồ sơ {dossier_code} ({procedure_name}) "
        "không thể trả kết quả đúng hẹn.\n"
        "Lý do: {apology_reason}\n"
        "Ngày hẹn trả kết quả mới: {new_appointment_at}\n\n"
        "Tra cứu tình trạng hồ sơ: {lookup_url}" + _SIGN_OFF,
    ),
    (
        "apology_issued",
        "sms",
        None,
        "Xin lỗi ông/bà: hồ sơ {dossier_code} trả kết quả chậm. Lý do: {apology_reason}. Hẹn trả mới: {new_appointment_at}.",
    ),
    (
        "returned",
        "email",
        "Hồ sơ {dossier_code} đã trả kết quả",
        "Kính gửi ông/bà {applicant_name},\n\n"
        "Kết quả hồ sơ {dossier_code} ({procedure_name}) đã được trả lúc {returned_at}.\n"
        "Mời ông/bà đánh giá mức độ hài lòng về việc giải quyết hồ sơ tại: {rating_url}" + _SIGN_OFF,
    ),
    ("returned", "sms", None, "Hồ sơ {dossier_code} đã trả kết quả. Mời đánh giá mức độ hài lòng: {rating_url}"),
]


def upgrade() -> None:
    op.add_column("cases", sa.Column("applicant_email", sa.String(254)))
    op.add_column("cases", sa.Column("applicant_phone", sa.String(20)))
    op.add_column("cases", sa.Column("notify_by", sa.String(8)))

    templates = op.create_table(
        "notification_templates",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", sa.Text),
    )
    op.bulk_insert(
        templates,
        [{"kind": k, "channel": c, "subject": s, "body": b, "updated_by": "migration 0003"} for k, c, s, b in SEED],
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_code", sa.String(64), nullable=False, index=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("facts", JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("encoding", sa.String(8)),
        sa.Column("segments", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("provider_message_id", sa.Text),
    )
    # The sender's claim: a channel's pending rows, soonest first.
    op.create_index(
        "notifications_due", "notifications", ["channel", "next_attempt_at"], postgresql_where=sa.text("status = 'pending'")
    )

    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("notification_id", sa.String(36), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.UniqueConstraint("notification_id", "number", name="notification_attempts_number"),
    )


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_index("notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notification_templates")
    for column in ("notify_by", "applicant_phone", "applicant_email"):
        op.drop_column("cases", column)
