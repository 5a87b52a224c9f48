"""Fee basis of dossiers, payment requests, transfers (unique per provider transaction id), bank statements,
page counts, receipt sequences per unit and year, the audit trail and the callback replay guard.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migrate import create_replay_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("receiving_unit", sa.String(64)),
        sa.Column("procedure_name", sa.Text, nullable=False, server_default=""),
        sa.Column("procedure_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("applicant_name", sa.Text, nullable=False, server_default=""),
        sa.Column("fee_lines", JSONB, nullable=False, server_default="[]"),
        sa.Column("copies", sa.Integer, nullable=False, server_default="1"),
        sa.Column("pages", sa.Integer),
        sa.Column("exemption", sa.String(64)),
        sa.Column("waiting_lines", JSONB, nullable=False, server_default="[]"),
        sa.Column("assessed_total", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()),
    ):
        op.add_column("fee_dossiers", column)

    op.create_table(
        "payments",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("dossier_code", sa.String(64), nullable=False, index=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("receiving_unit", sa.String(64)),
        sa.Column("basis", sa.String(160), nullable=False),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("procedure_name", sa.Text, nullable=False),
        sa.Column("applicant_name", sa.Text, nullable=False),
        sa.Column("dossier_channel", sa.String(16), nullable=False),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="VND"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bank_bin", sa.String(6)),
        sa.Column("account", sa.String(19)),
        sa.Column("card", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("replaces_payment_id", sa.String(16)),
        sa.Column("paid_at", _TZ),
        sa.Column("channel", sa.String(16)),
        sa.Column("provider", sa.String(64)),
        sa.Column("provider_transaction_id", sa.String(128)),
        sa.Column("confirmed_by", sa.Text),
        sa.Column("receipt_year", sa.Integer),
        sa.Column("receipt_sequence", sa.Integer),
        sa.Column("receipt_number", sa.String(64)),
        sa.Column("failed_at", _TZ),
        sa.Column("failure_reason", sa.Text),
        sa.Column("refunded_at", _TZ),
        sa.Column("refund_reason", sa.Text),
        sa.Column("refunded_by", sa.Text),
        sa.UniqueConstraint("dossier_code", "basis", name="payments_basis"),
        sa.UniqueConstraint("unit", "receipt_year", "receipt_sequence", name="payments_receipt"),
        sa.CheckConstraint("status IN ('pending', 'paid', 'failed', 'expired', 'refunded')", name="payments_status"),
        sa.CheckConstraint("amount > 0", name="payments_amount"),
        sa.CheckConstraint("status NOT IN ('paid', 'refunded') OR (paid_at IS NOT NULL AND receipt_number IS NOT NULL)", name="payments_paid"),
    )
    op.create_index("payments_pending_expiry", "payments", ["expires_at"], postgresql_where=sa.text("status = 'pending'"))

    op.create_table(
        "transfers",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_transaction_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.Text, nullable=False, server_default=""),
        sa.Column("account", sa.String(19)),
        sa.Column("unit", sa.String(64)),
        sa.Column("occurred_at", _TZ, nullable=False),
        sa.Column("received_at", _TZ, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("payment_id", sa.String(16), sa.ForeignKey("payments.id")),
        sa.Column("note", sa.Text),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolved_at", _TZ),
        sa.Column("raw", JSONB, nullable=False, server_default="{}"),
        sa.UniqueConstraint("provider", "provider_transaction_id", name="transfers_provider_transaction"),
    )
    op.create_index("transfers_payment", "transfers", ["payment_id"])
    # Nothing is paid twice: at most one transfer confirms a request, whatever the code above does.
    op.create_index(
        "transfers_one_confirmation", "transfers", ["payment_id"], unique=True,
        postgresql_where=sa.text("outcome = 'confirmed'"),
    )  # fmt: skip
    op.create_index("transfers_held", "transfers", ["id"], postgresql_where=sa.text("resolved_at IS NULL AND outcome IN ('amount_mismatch', 'unmatched', 'not_payable')"))

    op.create_table(
        "statements",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploaded_at", _TZ, nullable=False),
        sa.Column("lines_total", sa.Integer, nullable=False),
        sa.Column("lines_new", sa.Integer, nullable=False),
    )
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("statement_id", sa.BigInteger, sa.ForeignKey("statements.id"), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("booked_on", sa.Date, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("transaction_id", sa.String(128), nullable=False),
        sa.Column("import_outcome", sa.String(32), nullable=False),
        sa.UniqueConstraint("provider", "transaction_id", name="statement_lines_transaction"),
    )
    op.create_index("statement_lines_day", "statement_lines", ["provider", "booked_on"])

    op.create_table(
        "page_reports",
        sa.Column("dossier_code", sa.String(64), primary_key=True),
        sa.Column("copy_id", sa.String(128), primary_key=True),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("copies", sa.Integer, nullable=False, server_default="1"),
        sa.Column("reported_at", _TZ, nullable=False),
        sa.Column("assessed", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "receipt_sequences",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "payment_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("payment_id", sa.String(16), index=True),
        sa.Column("transfer_id", sa.BigInteger),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
    )
    create_replay_table()


def downgrade() -> None:
    for table in (
        "webhook_replays", "payment_audit", "receipt_sequences", "page_reports", "statement_lines", "statements",
        "transfers", "payments",
    ):  # fmt: skip
        op.drop_table(table)
    for name in (
        "withdrawn", "assessed_total", "waiting_lines", "exemption", "pages", "copies", "fee_lines", "applicant_name",
        "procedure_version", "procedure_name", "receiving_unit",
    ):  # fmt: skip
        op.drop_column("fee_dossiers", name)
