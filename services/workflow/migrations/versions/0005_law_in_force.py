"""The law in force: copies of intake's rule versions and unit registry, each case's rules and inter-agency step plan.

- ``rule_versions`` and ``admin_units`` (``shared.lawstore``), kept from intake's ``rules.published``,
  ``units.declared`` and ``units.merged`` facts;
- ``cases.rules``: the rule set ref recorded at reception (``DossierReceived.rules``); null for dossiers received
  before refs were recorded (their reception date decides);
- ``cases.step_plan``, ``planned_steps_sent``, ``transfer_step_no``: the catalog's inter-agency steps and how far the
  case has gone through them; ``case_steps.step_no``, ``planned_days``, ``adjusted_reason``: each transfer row;
- ``cases.late_step_agency``: the agency whose step came back late (it answers for the dossier going late);
- ``cases.apology_count``: how many apologies re-set the appointment (``counting.max_reschedules``);
- ``cases.transfer_agency`` widened to 300 characters: the catalog names agencies, not only by code.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared import lawstore

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lawstore.create_tables(op)
    op.add_column("cases", sa.Column("rules", sa.String(64), nullable=True))
    op.add_column("cases", sa.Column("step_plan", JSONB(), nullable=True))
    op.add_column("cases", sa.Column("planned_steps_sent", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("cases", sa.Column("transfer_step_no", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("late_step_agency", sa.String(300), nullable=True))
    op.add_column("cases", sa.Column("apology_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE cases SET apology_count = 1 WHERE apology_issued_at IS NOT NULL")
    op.alter_column("cases", "transfer_agency", type_=sa.String(300), existing_type=sa.String(64))
    op.add_column("case_steps", sa.Column("step_no", sa.Integer(), nullable=True))
    op.add_column("case_steps", sa.Column("planned_days", sa.Integer(), nullable=True))
    op.add_column("case_steps", sa.Column("adjusted_reason", sa.String(), nullable=True))


def downgrade() -> None:
    for column in ("adjusted_reason", "planned_days", "step_no"):
        op.drop_column("case_steps", column)
    op.alter_column("cases", "transfer_agency", type_=sa.String(64), existing_type=sa.String(300))
    for column in ("apology_count", "late_step_agency", "transfer_step_no", "planned_steps_sent", "step_plan", "rules"):
        op.drop_column("cases", column)
    lawstore.drop_tables(op)
