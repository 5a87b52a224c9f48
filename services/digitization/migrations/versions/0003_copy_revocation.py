"""A certified copy's revocation: when, by whom and why (the copy's check page shows it).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.add_column("documents", sa.Column("revoked_by", sa.String(200)))
    op.add_column("documents", sa.Column("revocation_reason", sa.String(500)))
    op.create_check_constraint(
        "documents_revocation", "documents",
        "(revoked_at IS NULL AND revoked_by IS NULL AND revocation_reason IS NULL)"
        " OR (kind = 'certified_copy' AND revoked_at IS NOT NULL AND revoked_by IS NOT NULL AND revocation_reason IS NOT NULL)",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_constraint("documents_revocation", "documents", type_="check")
    for column in ("revocation_reason", "revoked_by", "revoked_at"):
        op.drop_column("documents", column)
