"""Back-digitization of results still in force (issue #22): batches, their results, the declared counts.

A back-filed result has no dossier in this system, so ``documents.dossier_code`` may be empty for it (and only
for it: kind 'backfile').

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KINDS = "'scan', 'result', 'certified_copy', 'reuse'"


def upgrade() -> None:
    op.drop_constraint("documents_kind", "documents", type_="check")
    op.create_check_constraint("documents_kind", "documents", f"kind IN ({_KINDS}, 'backfile')")
    op.alter_column("documents", "dossier_code", existing_type=sa.String(64), nullable=True)
    op.create_check_constraint("documents_dossier", "documents", "dossier_code IS NOT NULL OR kind = 'backfile'")
    op.create_table(
        "backfile_batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("sheet", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("unit", "sha256", name="backfile_batches_same_zip"),
    )
    op.create_table(
        "backfile_results",
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), primary_key=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("backfile_batches.id"), nullable=False, index=True),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("result_key", sa.Text, nullable=False, unique=True),
        sa.Column("valid_until", sa.Date),
    )
    op.create_index("backfile_results_unit_field", "backfile_results", ["unit", "field"])
    op.create_table(
        "backfile_results_in_force",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("field", sa.String(200), primary_key=True),
        sa.Column("results_in_force", sa.Integer, nullable=False),
        sa.Column("note", sa.String(500)),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.CheckConstraint("results_in_force >= 0", name="backfile_results_in_force_positive"),
    )


def downgrade() -> None:
    op.drop_table("backfile_results_in_force")
    op.drop_index("backfile_results_unit_field", table_name="backfile_results")
    op.drop_table("backfile_results")
    op.drop_table("backfile_batches")
    op.execute("DELETE FROM documents WHERE kind = 'backfile'")
    op.drop_constraint("documents_dossier", "documents", type_="check")
    op.alter_column("documents", "dossier_code", existing_type=sa.String(64), nullable=False)
    op.drop_constraint("documents_kind", "documents", type_="check")
    op.create_check_constraint("documents_kind", "documents", f"kind IN ({_KINDS})")
