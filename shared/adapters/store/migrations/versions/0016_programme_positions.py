"""Where each buyer is in each programme: one row per programme, buyer and entry.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # shared/adapters/store/positions.py: a wait sets ``due_at``; the due index holds only
    # the waiting rows, so waking reads what is due, not everyone inside a programme.
    op.create_table(
        "programme_positions",
        sa.Column("programme", sa.String(100), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("entry", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("exited_at", sa.DateTime(timezone=True)),
        sa.Column("exit_reason", sa.String(32)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "programme", "profile_id", "entry", name=op.f("pk_programme_positions")
        ),
    )
    op.create_index(
        "ix_programme_positions_due_at",
        "programme_positions",
        ["due_at"],
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_programme_positions_profile_id", "programme_positions", ["profile_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_programme_positions_profile_id", table_name="programme_positions")
    op.drop_index("ix_programme_positions_due_at", table_name="programme_positions")
    op.drop_table("programme_positions")
