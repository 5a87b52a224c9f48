"""Monthly roll-up of the standard table per unit, procedure, field and officer, kept by the event handlers.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The counts of the standard table the database computes (services/reporting/domain.py: COMPUTED), one column each.
COUNTS = (
    "carried_over", "received_total", "received_online", "received_counter", "received_postal", "resolved_total",
    "resolved_early", "resolved_on_time", "resolved_late", "resolved_with_result", "resolved_not_returned", "rejected",
    "stopped", "withdrawn", "withdrawn_late", "pending_total", "pending_not_due", "pending_near_due", "pending_overdue",
    "pending_paused", "supplement_requested", "received_within_time", "digitized_at_intake", "digitization_complete",
    "results_signed", "fee_dossiers", "paid_online", "postal_returned", "reused_components_dossiers",
    "shared_with_store", "ratings_total", "ratings_satisfied", "ratings_dissatisfied", "feedback_dossiers",
    "complaint_dossiers", "apologies_issued",
)  # fmt: skip
KEY = ("month", "unit", "procedure_code", "procedure_name", "field", "officer")


def upgrade() -> None:
    op.create_table(
        "report_rollup",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("procedure_code", sa.Text, nullable=False),
        sa.Column("procedure_name", sa.Text, nullable=False),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("officer", sa.Text, nullable=False),
        sa.Column("dossiers", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default=sa.text("0")) for name in COUNTS),
        sa.PrimaryKeyConstraint(*KEY, name="report_rollup_pkey"),
    )
    # A district's or province's month: a prefix of the unit's groups read top down.
    op.create_index(
        "report_rollup_scope", "report_rollup", ["month", "province", "scope_key"],
        postgresql_ops={"scope_key": "varchar_pattern_ops"},
    )  # fmt: skip
    # The same rows summed per unit and one dimension (dim: none, field, procedure, officer; key and name of the
    # group): what a summary, a breakdown or a one-field or one-procedure summary reads, a few hundred rows a province.
    op.create_table(
        "report_rollup_groups",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("dossiers", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default=sa.text("0")) for name in COUNTS),
        sa.PrimaryKeyConstraint("month", "dim", "unit", "key", "name", name="report_rollup_groups_pkey"),
    )
    op.create_index(
        "report_rollup_groups_scope", "report_rollup_groups", ["month", "dim", "province", "scope_key"],
        postgresql_ops={"scope_key": "varchar_pattern_ops"},
    )  # fmt: skip
    # Which near-due horizon each month's rows were counted with; a report with another one does not use them.
    op.create_table(
        "report_rollup_months",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("horizon", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consistent", sa.Boolean, nullable=False),
    )
    # The month every open dossier's rows reach (rolled forward at the first event of each month); NULL: none yet.
    op.create_table(
        "report_rollup_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rolled_through", sa.Date),
        sa.CheckConstraint("id = 1", name="report_rollup_state_single"),
    )
    op.execute("INSERT INTO report_rollup_state (id, rolled_through) VALUES (1, NULL)")
    # Open dossiers with no activity since before a month: what a month's report counts besides its roll-up rows.
    op.create_index(
        "dossier_facts_open_idle", "dossier_facts", ["province", sa.text("greatest(last_activity_at, received_at)")],
        postgresql_where=sa.text("closed_at IS NULL"),
    )  # fmt: skip
    # Dossiers projected before this revision have no roll-up rows: their months read the dossiers' own rows until
    # `motcua reporting rebuild` counts them.
    op.execute(
        """
        INSERT INTO report_rollup_months (month, horizon, consistent)
        SELECT m::date, 'epoch'::timestamptz, false
        FROM (SELECT min(received_at) AS lo, max(greatest(last_activity_at, received_at)) AS hi
              FROM dossier_facts WHERE received_at IS NOT NULL) b,
             generate_series(date_trunc('month', b.lo AT TIME ZONE 'Asia/Ho_Chi_Minh'),
                             date_trunc('month', b.hi AT TIME ZONE 'Asia/Ho_Chi_Minh'), interval '1 month') AS m
        WHERE b.lo IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_index("dossier_facts_open_idle", "dossier_facts")
    op.drop_table("report_rollup_state")
    op.drop_table("report_rollup_months")
    op.drop_table("report_rollup_groups")
    op.drop_table("report_rollup")
