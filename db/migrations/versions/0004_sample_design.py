"""Record each sample's stratification (allocation, levels, cell -> stratum map).

Strata may now be finer than benchmark x query language (model x image inside, and bands of
the surrogate's confidence for the surrogate-informed allocation), so the analysis needs the
recorded map to put every completion in its stratum. Samples drawn before this revision keep
NULL: their strata are benchmark x query language.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 09:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "design",
                sa.JSON(),
                nullable=True,
                comment="allocation, levels and the cell -> stratum map (NULL: strata are benchmark x language)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("design")
