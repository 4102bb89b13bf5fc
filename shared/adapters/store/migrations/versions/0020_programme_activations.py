"""programme_activations: an "everyone in segment S" programme's entering at activation

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # shared/adapters/store/positions.py: one row per programme, written the first time the
    # dispatcher sees it active. The members enter in batches, in id order; ``after`` is the
    # last one entered, so a crash mid-way resumes where the last committed batch ended, and
    # ``finished_at`` says it is done (activating again enters nobody).
    op.create_table(
        "programme_activations",
        sa.Column("programme", sa.String(100), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("after", sa.String(36)),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("programme", name=op.f("pk_programme_activations")),
    )


def downgrade() -> None:
    op.drop_table("programme_activations")
