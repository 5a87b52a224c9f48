"""The DVCQG sync through the provincial LGSP: the syncs owed (an outbox written with each event), every attempt, and
what the national portal has of each dossier.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "dvcqg_syncs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("dossier_code", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("province", sa.String(64), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("step", sa.Text, nullable=False, server_default=""),
        sa.Column("event_id", sa.Text, nullable=False),
        _ts("changed_at", nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("refusals", sa.Integer, nullable=False, server_default=sa.text("0")),
        _ts("next_attempt_at", nullable=False),
        _ts("created_at", nullable=False),
        _ts("accepted_at"),
        sa.Column("last_code", sa.Text),
        sa.Column("last_error", sa.Text),
        _ts("replayed_at"),
        sa.Column("replayed_by", sa.Text),
    )
    # A dossier's syncs in sending order (the history, "is an earlier one unsent?", the status before an event).
    op.create_index("dvcqg_syncs_dossier", "dvcqg_syncs", ["dossier_code", "changed_at", "id"])
    # The sender's claim and the backlog gauges read only what is not accepted yet.
    op.create_index(
        "dvcqg_syncs_unsent", "dvcqg_syncs", ["next_attempt_at", "id"], postgresql_where=sa.text("state IN ('pending', 'given_up')")
    )
    # The indicator: a unit's (or a district's, a province's) status changes of a month.
    op.create_index(
        "dvcqg_syncs_scope", "dvcqg_syncs", ["province", "scope_key", "changed_at"],
        postgresql_ops={"scope_key": "varchar_pattern_ops"}, postgresql_where=sa.text("kind = 'status'"),
    )  # fmt: skip
    op.create_table(
        "dvcqg_sync_attempts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("sync_id", sa.BigInteger, sa.ForeignKey("dvcqg_syncs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("service", sa.Text),
        sa.Column("request", JSONB),
        sa.Column("answer", JSONB),
        sa.Column("error_code", sa.Text),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("sync_id", "number", name="dvcqg_sync_attempts_number"),
    )
    op.create_table(
        "dvcqg_dossiers",
        sa.Column("dossier_code", sa.String(64), primary_key=True),
        sa.Column("on_portal", sa.Boolean),
        _ts("looked_up_at"),
        sa.Column("pushed_status", sa.Integer),
        _ts("pushed_changed_at"),
        sa.Column("pushes", sa.Integer, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_table("dvcqg_dossiers")
    op.drop_table("dvcqg_sync_attempts")
    op.drop_table("dvcqg_syncs")
