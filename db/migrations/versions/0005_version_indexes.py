"""Index completions.imported_at and predictions.created_at.

The analysis reads the population's version (counts and latest timestamps of completions and
predictions) on every dashboard refresh; without these indexes ``max(...)`` scans 775k rows of
each table at paper scale. With them it is a lookup, and SQLite counts over the narrow index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:55:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_completions_imported_at", "completions", ["imported_at"])
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_predictions_created_at", table_name="predictions")
    op.drop_index("ix_completions_imported_at", table_name="completions")
