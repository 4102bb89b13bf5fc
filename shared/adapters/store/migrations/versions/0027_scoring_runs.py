"""scoring_runs: how each run of the scoring job scored the base

Revision ID: 0027
Revises: 0023
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0023"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # shared/adapters/store/scoring.py: one row per run, the latest shown on the console's
    # analytics page (the models used, what fell back and why).
    op.create_table(
        "scoring_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("purchase_model", sa.String(100)),
        sa.Column("spend_model", sa.String(100)),
        sa.Column("fallbacks", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_runs")),
    )


def downgrade() -> None:
    op.drop_table("scoring_runs")
