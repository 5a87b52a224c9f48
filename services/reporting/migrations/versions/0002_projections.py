"""Projections of every producer's events: the dossier's facts, its deadline history and citizen feedback.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# (name, type, server default) of the columns dossier_facts gains; all nullable unless a default is given.
FACT_COLUMNS = [
    ("province", sa.String(64), sa.text("''")),
    ("procedure_name", sa.Text, None),
    ("field", sa.Text, sa.text("''")),
    ("receiving_unit", sa.String(64), None),
    ("received_by", sa.Text, None),
    ("due_at_original", TS, None),
    ("due_at", TS, None),
    ("paused", sa.Boolean, sa.false()),
    ("fee_due", sa.BigInteger, sa.text("0")),
    ("reused_components", sa.Integer, sa.text("0")),
    ("department", sa.Text, None),
    ("assignee", sa.Text, None),
    ("holder_unit", sa.Text, None),
    ("holder_officer", sa.Text, None),
    ("closed_at", TS, None),
    ("close_kind", sa.String(16), None),
    ("close_timeliness", sa.String(16), None),
    ("result_at", TS, None),
    ("returned_at", TS, None),
    ("return_channel", sa.String(16), None),
    ("supplement_count", sa.Integer, sa.text("0")),
    ("late_at", TS, None),
    ("late_reason", sa.Text, None),
    ("late_holder_unit", sa.Text, None),
    ("late_holder_officer", sa.Text, None),
    ("apology_at", TS, None),
    ("apology_timely", sa.Boolean, None),
    ("new_appointment_at", TS, None),
    ("explained_at", TS, None),
    ("digitized_at", TS, None),
    ("result_signed_at", TS, None),
    ("owner_filed_at", TS, None),
    ("reused_at", TS, None),
    ("fee_requested", sa.BigInteger, sa.text("0")),
    ("paid_at", TS, None),
    ("paid_online_at", TS, None),
    ("refunded_at", TS, None),
    ("rated_at", TS, None),
    ("rating", sa.String(16), None),
    ("feedback_at", TS, None),
    ("last_activity_at", TS, None),
    ("clock_since", TS, None),
    ("scope_key", sa.String(64), sa.text("''")),
]
# Every instant a report counts of a closed dossier lies in this span (services/reporting/store.py: ACTIVE_SPAN).
ACTIVE_SPAN = "tstzrange(received_at, greatest(last_activity_at, received_at), '[]')"


def upgrade() -> None:
    # A fact of another producer may arrive before intake's dossier.received: its row waits with the receipt columns empty.
    for column in ("procedure_code", "channel", "received_at", "received_day"):
        op.alter_column("dossier_facts", column, nullable=True)
    for name, type_, default in FACT_COLUMNS:
        op.add_column("dossier_facts", sa.Column(name, type_, nullable=default is None, server_default=default))
    op.create_index("dossier_facts_province_received", "dossier_facts", ["province", "received_at"])
    # A report reads the dossiers open and received before its end, or closed with activity in the period (BitmapOr),
    # of a scope: a province, or a prefix of the unit's groups read top down (scope_key).
    op.create_index(
        "dossier_facts_open", "dossier_facts", ["province", "received_at"], postgresql_where=sa.text("closed_at IS NULL")
    )
    op.create_index(
        "dossier_facts_active_span", "dossier_facts", [sa.text(ACTIVE_SPAN)], postgresql_using="gist",
        postgresql_where=sa.text("closed_at IS NOT NULL"),
    )  # fmt: skip
    op.create_index("dossier_facts_scope_key", "dossier_facts", ["scope_key"], postgresql_ops={"scope_key": "varchar_pattern_ops"})

    op.create_table(
        "dossier_deadlines",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("due_at", TS),
        sa.Column("paused", sa.Boolean, nullable=False),
    )
    op.create_index("dossier_deadlines_code_since", "dossier_deadlines", ["code", "since"])

    op.create_table(
        "feedback_facts",
        sa.Column("feedback_id", sa.String(128), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("received_at", TS),
        sa.Column("due_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("timeliness", sa.String(16)),
    )
    op.create_index("feedback_facts_province_received", "feedback_facts", ["province", "received_at"])


def downgrade() -> None:
    op.drop_table("feedback_facts")
    op.drop_table("dossier_deadlines")
    for index in ("dossier_facts_scope_key", "dossier_facts_active_span", "dossier_facts_open"):
        op.drop_index(index, "dossier_facts")
    op.drop_index("dossier_facts_province_received", "dossier_facts")
    for name, _, _ in reversed(FACT_COLUMNS):
        op.drop_column("dossier_facts", name)
    op.execute("DELETE FROM dossier_facts WHERE received_at IS NULL")
    for column in ("procedure_code", "channel", "received_at", "received_day"):
        op.alter_column("dossier_facts", column, nullable=False)
