"""Platform tables and the dossiers whose fees payments will assess.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.migrate import create_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "fee_dossiers",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("fee_dossiers", "dead_letters", "inbox", "outbox"):
        op.drop_table(table)
