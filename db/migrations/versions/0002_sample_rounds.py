"""Record each sample round's seed, so top-ups are reproducible too.

Samples drawn before this revision that were never topped up get their round 1 from the
sample itself; the seeds of earlier top-ups were not kept and stay unknown.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 22:36:45.846605
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample_rounds",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n_total", sa.Integer(), nullable=False, comment="sample size after this round"),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("round >= 1 AND added >= 0 AND n_total > 0", name=op.f("ck_sample_rounds_round")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_sample_rounds_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sample_id", "round", name=op.f("pk_sample_rounds")),
    )
    op.execute(
        "INSERT INTO sample_rounds (sample_id, round, seed, n_total, added, created_at) "
        "SELECT id, 1, seed, n_target, n_target, created_at FROM samples WHERE rounds = 1"
    )


def downgrade() -> None:
    op.drop_table("sample_rounds")
