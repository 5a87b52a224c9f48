"""E-identity in the dossier facts and four counts of the standard table: VNeID, chip id card, online dossiers with an
electronic identification, population data used (766 indicator 4.5).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The counts added to the standard table (services/reporting/domain.py: COUNTS), a column each in both roll-up tables.
COUNTS = ("identified_vneid", "identified_chip_card", "online_identified", "population_data_used")


def upgrade() -> None:
    # NULL: the receipt did not say (dossier.received.v1 from before the field). Every count above is 0 for such a
    # dossier, so the roll-up rows of the months already counted stay right with the new columns at 0: no rebuild.
    op.add_column("dossier_facts", sa.Column("identification", sa.String(16)))
    op.add_column("dossier_facts", sa.Column("population_data_reused", sa.Boolean, nullable=False, server_default=sa.false()))
    for table in ("report_rollup", "report_rollup_groups"):
        for name in COUNTS:
            op.add_column(table, sa.Column(name, sa.BigInteger, nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    for table in ("report_rollup_groups", "report_rollup"):
        for name in reversed(COUNTS):
            op.drop_column(table, name)
    op.drop_column("dossier_facts", "population_data_reused")
    op.drop_column("dossier_facts", "identification")
