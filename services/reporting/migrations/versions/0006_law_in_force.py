"""The law in force: the rule book and the unit registry (intake's facts, kept here), what each dossier recorded of
them (its rules ref, its applicant for the register, the one-stop that received it as a scope key), and the late
inter-agency steps, blamed on their agency.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from shared import lawstore

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lawstore.create_tables(op)
    # NULL for dossiers projected before: their rules are the ones in force at reception, by date (RuleBook.rules_of).
    op.add_column("dossier_facts", sa.Column("rules", sa.String(64)))
    op.add_column("dossier_facts", sa.Column("applicant_name", sa.Text))
    # The receiving one-stop's groups read top down (the processing unit's when it received the dossier itself): a
    # report by receiving unit is a prefix or a set of these, as scope_key is for the processing unit.
    op.add_column("dossier_facts", sa.Column("receiving_scope_key", sa.String(64), nullable=False, server_default=sa.text("''")))
    op.execute(
        "UPDATE dossier_facts SET receiving_scope_key = CASE WHEN receiving_unit IS NULL THEN scope_key"
        " WHEN array_length(string_to_array(receiving_unit, '.'), 1) = 4 THEN split_part(receiving_unit, '.', 4) || '.'"
        " || split_part(receiving_unit, '.', 3) || '.' || split_part(receiving_unit, '.', 2) || '.' || split_part(receiving_unit, '.', 1)"
        " ELSE receiving_unit END"
    )
    op.create_index(
        "dossier_facts_receiving_scope_key", "dossier_facts", ["receiving_scope_key"],
        postgresql_ops={"receiving_scope_key": "varchar_pattern_ops"},
    )  # fmt: skip
    # The register (Form 07) lists the dossiers received or returned in a period.
    op.create_index("dossier_facts_returned", "dossier_facts", ["returned_at"], postgresql_where=sa.text("returned_at IS NOT NULL"))
    op.create_table(
        "dossier_late_steps",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("agency", sa.String(300), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_no", sa.Integer),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("code", "agency", "returned_at", name="dossier_late_steps_pkey"),
    )
    op.create_index("dossier_late_steps_returned", "dossier_late_steps", ["returned_at"])


def downgrade() -> None:
    op.drop_table("dossier_late_steps")
    op.drop_index("dossier_facts_returned", "dossier_facts")
    op.drop_index("dossier_facts_receiving_scope_key", "dossier_facts")
    for column in ("receiving_scope_key", "applicant_name", "rules"):
        op.drop_column("dossier_facts", column)
    lawstore.drop_tables(op)
