"""LB.LBSTNRLO / LBSTNRHI: the reference range in the standard unit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

SDTMIG 3.4 LB keeps the reference range in the unit of each result: ``LBORNRLO``/``LBORNRHI``
in the original unit (``LBORRESU``, next to ``LBORRES``) and ``LBSTNRLO``/``LBSTNRHI`` in the
standard unit (``LBSTRESU``, next to ``LBSTRESN``). Until this revision the store had only the
original-unit pair, and the web form wrote the range converted to the standard unit into it,
so that a neutrophil count entered as 400 cells/mm3 was stored with LBORNRLO 1.8 (issue 10).
From this revision the web form and the API write the range as typed into LBORNRLO/HI and its
conversion (:mod:`celltrial.clinical.units`) into LBSTNRLO/HI; readers (ADLB, the store's
grade check, the SDTM export) take LBSTNRLO/HI and, where they are empty, convert
LBORNRLO/HI from LBORRESU (:func:`celltrial.store.consistency.standard_range`).

Existing rows are left as they are (no value is changed outside the audit trail): rows
written before this revision have no LBSTNRLO/HI.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lb") as batch:
        batch.add_column(sa.Column("LBSTNRLO", sa.Double(), nullable=True))
        batch.add_column(sa.Column("LBSTNRHI", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lb") as batch:
        batch.drop_column("LBSTNRHI")
        batch.drop_column("LBSTNRLO")
