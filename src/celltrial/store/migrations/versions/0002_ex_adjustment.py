"""EX.EXADJ (Reason for Dose Adjustment): a split fraction withheld by a hold rule.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

A withheld fraction is an EX record with EXDOSE 0 and EXADJ giving the rule that withheld it
(SDTMIG 3.4 EX: EXADJ "Reason for Dose Adjustment"; docs/conduct.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ex") as batch:
        batch.add_column(sa.Column("EXADJ", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ex") as batch:
        batch.drop_column("EXADJ")
