"""The national procedure list against the catalog: each look (LayDanhSachTTHC, LayThuTuc) with what importing it would
add and change, until an admin applies it.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "national_catalog_imports",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_by", sa.Text, nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("diff", JSONB, nullable=False),
        sa.Column("base_versions", JSONB, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True)),
        sa.Column("applied_by", sa.Text),
        sa.Column("applied", JSONB, nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    op.drop_table("national_catalog_imports")
