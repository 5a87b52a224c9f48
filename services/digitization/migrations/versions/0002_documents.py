"""The file store's blobs, documents, the citizen's store (owners, access audit), certified-copy numbers.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dossier_refs", sa.Column("receiving_unit", sa.String(64)))
    op.add_column("dossier_refs", sa.Column("closed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("dossier_code", sa.String(64), nullable=False, index=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("receiving_unit", sa.String(64)),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("component_code", sa.String(64)),
        sa.Column("component_name", sa.String(300)),
        sa.Column("component_key", sa.String(300), nullable=False),
        sa.Column("mandatory", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("paper_code", sa.String(64)),
        sa.Column("paper_name", sa.String(300)),
        sa.Column("paper_number", sa.String(100)),
        sa.Column("issuer", sa.String(300)),
        sa.Column("issued_on", sa.Date),
        sa.Column("valid_until", sa.Date),
        sa.Column("scope", sa.String(300)),
        sa.Column("owner_key", sa.String(64), index=True),
        sa.Column("owner_hint", sa.String(20)),
        sa.Column("original_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("original_media_type", sa.String(100), nullable=False),
        sa.Column("original_size", sa.BigInteger, nullable=False),
        sa.Column("original_filename", sa.String(255)),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("signed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("signer", sa.String(300)),
        sa.Column("certificate_serial", sa.String(80)),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("signed_by", sa.String(200)),
        sa.Column("reused_from", sa.String(36), sa.ForeignKey("documents.id")),
        sa.Column("copy_number", sa.String(40), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.CheckConstraint("stage IN ('intake', 'result')", name="documents_stage"),
        sa.CheckConstraint("kind IN ('scan', 'result', 'certified_copy', 'reuse')", name="documents_kind"),
    )
    # The same bytes for the same component of a dossier make one document; a reuse happens once.
    op.create_index(
        "documents_same_upload", "documents", ["dossier_code", "stage", "component_key", "original_sha256"],
        unique=True, postgresql_where=sa.text("reused_from IS NULL"),
    )  # fmt: skip
    op.create_index(
        "documents_same_reuse", "documents", ["dossier_code", "component_key", "reused_from"],
        unique=True, postgresql_where=sa.text("reused_from IS NOT NULL"),
    )  # fmt: skip
    op.create_table(
        "dossier_owners",
        sa.Column("dossier_code", sa.String(64), primary_key=True),
        sa.Column("owner_key", sa.String(64), primary_key=True),
        sa.Column("owner_hint", sa.String(20), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "document_accesses",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("dossier_code", sa.String(64), index=True),
        sa.Column("owner_key", sa.String(64), index=True),
        sa.Column("owner_hint", sa.String(20)),
        sa.Column("document_id", sa.String(36), index=True),
        sa.Column("detail", sa.Text),
    )
    op.create_table(
        "intake_completions",
        sa.Column("dossier_code", sa.String(64), primary_key=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_by", sa.String(200), nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("digitized", sa.Integer, nullable=False),
        sa.Column("reused", sa.Integer, nullable=False),
    )
    op.create_table(
        "copy_sequences",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("copy_sequences", "intake_completions", "document_accesses", "dossier_owners", "documents", "blobs"):
        op.drop_table(table)
    op.drop_column("dossier_refs", "closed_at")
    op.drop_column("dossier_refs", "receiving_unit")
