"""The case's life: clock, holder, lateness, decision, return; tracking slip, result gate, ratings, feedback.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

_CASE_COLUMNS = [
    sa.Column("receiving_unit", sa.String(64)),
    sa.Column("procedure_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("requested_return_channel", sa.String(16)),
    sa.Column("received_by", sa.Text),
    sa.Column("on_the_spot", sa.Boolean),
    sa.Column("fee_due_amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("fee_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("legal_due_at", TS),
    sa.Column("due_at", TS),
    sa.Column("due_at_rescheduled", TS),
    sa.Column("supplement_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("supplement_requested_at", TS),
    sa.Column("supplement_received_at", TS),
    sa.Column("supplement_reason", sa.Text),
    sa.Column("supplement_requested_by", sa.Text),
    sa.Column("supplement_items", JSONB),
    sa.Column("paused_at", TS),
    sa.Column("remaining_working_days", sa.Integer),
    sa.Column("department", sa.Text),
    sa.Column("assignee", sa.Text),
    sa.Column("assigned_at", TS),
    sa.Column("holder_unit", sa.Text),
    sa.Column("holder_officer", sa.Text),
    sa.Column("transfer_agency", sa.String(64)),
    sa.Column("transfer_step_due_at", TS),
    sa.Column("is_late", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("late_reason", sa.Text),
    sa.Column("late_at", TS),
    sa.Column("late_holder_unit", sa.Text),
    sa.Column("late_holder_officer", sa.Text),
    sa.Column("apology_issued_at", TS),
    sa.Column("apology_reason", sa.Text),
    sa.Column("apology_timely", sa.Boolean),
    sa.Column("apology_by", sa.Text),
    sa.Column("explanation", sa.Text),
    sa.Column("explained_at", TS),
    sa.Column("explained_by", sa.Text),
    sa.Column("approved_at", TS),
    sa.Column("approved_by", sa.Text),
    sa.Column("decision_note", sa.Text),
    sa.Column("finished_at", TS),
    sa.Column("timeliness", sa.String(16)),
    sa.Column("returned_at", TS),
    sa.Column("return_channel", sa.String(16)),
    sa.Column("tracking_number", sa.Text),
    sa.Column("returned_by", sa.Text),
    sa.Column("returned_on_the_spot", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("closed_at", TS),
    sa.Column("closed_reason", sa.Text),
    sa.Column("closed_by", sa.Text),
    sa.Column("warning_sent_at", TS),
    sa.Column("overdue_sent_at", TS),
    sa.Column("rated_at", TS),
    sa.Column("updated_at", TS),
]

RUNNING = "('accepted', 'in_progress', 'transferred', 'approved', 'awaiting_payment')"


def upgrade() -> None:
    for column in _CASE_COLUMNS:
        op.add_column("cases", column)
    op.execute("UPDATE cases SET due_at = due_at_original WHERE due_at IS NULL")
    # The sweep reads only running cases not yet announced overdue, by deadline.
    op.create_index(
        "cases_sweep", "cases", ["due_at"], postgresql_where=sa.text(f"overdue_sent_at IS NULL AND status IN {RUNNING}")
    )
    op.create_index("cases_inbox", "cases", ["assignee", "due_at"])
    op.create_index("cases_receiving_unit", "cases", ["receiving_unit"])
    op.create_index("cases_transfer_agency", "cases", ["transfer_agency"])
    op.create_table(
        "case_steps",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("case_code", sa.String(64), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_unit", sa.Text),
        sa.Column("from_officer", sa.Text),
        sa.Column("to_unit", sa.Text),
        sa.Column("to_officer", sa.Text),
        sa.Column("handed_at", TS, nullable=False),
        sa.Column("step_due_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("late", sa.Boolean),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("case_code", "seq", name="case_steps_seq"),
    )
    op.create_table(
        "result_signatures",
        sa.Column("case_code", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.Text, primary_key=True),
        sa.Column("signer", sa.Text, nullable=False),
        sa.Column("certificate_serial", sa.Text, nullable=False),
        sa.Column("signed_at", TS, nullable=False),
    )
    op.create_table(
        "case_payments",
        sa.Column("case_code", sa.String(64), primary_key=True),
        sa.Column("payment_id", sa.Text, primary_key=True),
        sa.Column("amount", sa.BigInteger),
        sa.Column("requested_at", TS),
        sa.Column("confirmed_at", TS),
        sa.Column("refunded_at", TS),
        sa.Column("replaced_at", TS),
    )
    op.create_table(
        "ratings",
        sa.Column("case_code", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("rating", sa.String(32), nullable=False),
        sa.Column("criteria", JSONB, nullable=False),
        sa.Column("derived", JSONB, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("rated_at", TS, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_code", sa.String(64), nullable=False, index=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("contact", sa.Text),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        sa.Column("answer", sa.Text),
        sa.Column("answered_by", sa.Text),
        sa.Column("timeliness", sa.String(16)),
    )


def downgrade() -> None:
    for table in ("feedback", "ratings", "case_payments", "result_signatures", "case_steps"):
        op.drop_table(table)
    for index in ("cases_transfer_agency", "cases_receiving_unit", "cases_inbox", "cases_sweep"):
        op.drop_index(index, table_name="cases")
    for column in reversed(_CASE_COLUMNS):
        op.drop_column("cases", column.name)
