"""Paper registers brought in (issue #22): each import, and each dossier it brought with what its row said (the key
of a repeated import: the same code with the same digest is skipped, with another digest refused).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("filename", sa.String(300), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String, nullable=False),
    )
    op.create_table(
        "imported_dossiers",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("register_imports.id"), nullable=False, index=True),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_days", sa.Integer, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("officer", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("imported_dossiers")
    op.drop_table("register_imports")
