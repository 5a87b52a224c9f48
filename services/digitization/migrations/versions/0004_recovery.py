"""The recovery tables of issue #20 (consumer positions beside the effects, outbox replay, drift), as in every service.

Revision ID: 0004
Revises: 0003
"""

from shared.migrate import create_recovery_tables, drop_recovery_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_recovery_tables()


def downgrade() -> None:
    drop_recovery_tables()
