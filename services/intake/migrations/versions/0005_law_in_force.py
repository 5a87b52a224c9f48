"""The law in force: the rule set versions and the unit registry (shared/lawstore.py), and on each dossier the ref of
the rules in force at its reception (null for dossiers received before: their reception date decides).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from shared import lawstore

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lawstore.create_tables(op)
    op.add_column("dossiers", sa.Column("rules", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("dossiers", "rules")
    lawstore.drop_tables(op)
