"""E-identity on every dossier: how the applicant was identified and whether the population database supplied the data.

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
    # Dossiers received before this revision said nothing: "none" and false is what they were (nobody asserted more).
    op.add_column("dossiers", sa.Column("identification", sa.String(16), nullable=False, server_default="none"))
    op.add_column("dossiers", sa.Column("population_data_reused", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_check_constraint(
        "dossiers_identification", "dossiers", "identification IN ('vneid_level2', 'chip_card', 'none')"
    )


def downgrade() -> None:
    op.drop_constraint("dossiers_identification", "dossiers", type_="check")
    op.drop_column("dossiers", "population_data_reused")
    op.drop_column("dossiers", "identification")
