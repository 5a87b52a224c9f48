"""Versioned procedure catalog (seeded with DOMAIN.md §6), provincial calendar days, full reception,
records of dossiers not accepted, webhook replay guard and portal push-back.

Revision ID: 0002
Revises: 0001
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from services.intake.domain import SEED_EFFECTIVE_FROM, seed_documents
from shared.migrate import create_replay_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    procedures = op.create_table(
        "procedure_versions",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Text, nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        procedures,
        [
            {
                "code": doc["code"],
                "version": 1,
                "effective_from": SEED_EFFECTIVE_FROM,
                "name": doc["name"],
                "field": doc["field"],
                "document": json.loads(json.dumps(doc)),
                "published_at": now,
                "published_by": "seed:DOMAIN.md §6",
            }
            for doc in seed_documents()
        ],
    )
    op.create_table(
        "calendar_days",
        sa.Column("province", sa.String(16), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("working", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    added = [
        sa.Column("receiving_unit", sa.String(64)),
        sa.Column("procedure_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("applicant_kind", sa.String(16), nullable=False, server_default="citizen"),
        sa.Column("applicant_id_number", sa.String(12)),
        sa.Column("applicant_tax_code", sa.String(14)),
        sa.Column("applicant_address", sa.Text),
        sa.Column("applicant_phone", sa.String(20)),
        sa.Column("applicant_email", sa.String(254)),
        sa.Column("components", JSONB, nullable=False, server_default="[]"),
        sa.Column("sets", sa.Integer, nullable=False, server_default="1"),
        sa.Column("return_channel", sa.String(16), nullable=False, server_default="counter"),
        sa.Column("postal_tracking_number", sa.String(64)),
        sa.Column("portal_dossier_id", sa.String(128)),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("legal_due_at", sa.DateTime(timezone=True)),
        sa.Column("fee", JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.Integer, nullable=False, server_default="2"),
    ]
    for column in added:
        op.add_column("dossiers", column)
    op.execute("UPDATE dossiers SET receiving_unit = unit, legal_due_at = appointment_at")
    op.execute("UPDATE dossiers SET appointment_at = received_at WHERE appointment_at IS NULL")
    op.execute("UPDATE dossiers SET legal_due_at = appointment_at WHERE legal_due_at IS NULL")
    for name in ("receiving_unit", "legal_due_at", "appointment_at"):
        op.alter_column("dossiers", name, nullable=False)
    op.drop_constraint("dossiers_idempotency", "dossiers", type_="unique")
    op.create_unique_constraint("dossiers_idempotency", "dossiers", ["receiving_unit", "idempotency_key"])
    op.create_unique_constraint("dossiers_portal_id", "dossiers", ["portal_dossier_id"])
    op.create_table(
        "intake_records",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("reference", sa.String(80), nullable=False, unique=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("procedure_code", sa.String(32)),
        sa.Column("procedure_name", sa.Text),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("applicant_name", sa.String(200), nullable=False),
        sa.Column("details", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
    )
    create_replay_table()
    op.create_table(
        "portal_pushes",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("dossier_code", sa.String(64), nullable=False, index=True),
        sa.Column("portal_dossier_id", sa.String(128), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("portal_pushes_unsent", "portal_pushes", ["dossier_code", "id"], postgresql_where=sa.text("sent_at IS NULL"))


def downgrade() -> None:
    for table in ("portal_pushes", "webhook_replays", "intake_records", "calendar_days", "procedure_versions"):
        op.drop_table(table)
    op.drop_constraint("dossiers_portal_id", "dossiers", type_="unique")
    op.drop_constraint("dossiers_idempotency", "dossiers", type_="unique")
    op.create_unique_constraint("dossiers_idempotency", "dossiers", ["unit", "idempotency_key"])
    for name in (
        "status", "fee", "legal_due_at", "submitted_at", "portal_dossier_id", "postal_tracking_number", "return_channel",
        "sets", "components", "applicant_email", "applicant_phone", "applicant_address", "applicant_tax_code",
        "applicant_id_number", "applicant_kind", "procedure_version", "receiving_unit",
    ):  # fmt: skip
        op.drop_column("dossiers", name)
