"""definitions: segments, templates and campaigns that marketers define, versioned;
how far the base was evaluated against each segment's rule

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def _versioned(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("key", sa.String(length=100), nullable=False),
        *columns,
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    _versioned(
        "segment_definitions",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
    )
    _versioned(
        "template_definitions",
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
    )
    _versioned(
        "campaign_definitions",
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
    )
    op.create_table(
        "segment_recomputes",
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=36), nullable=True),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("segment", name=op.f("pk_segment_recomputes")),
    )


def downgrade() -> None:
    op.drop_table("segment_recomputes")
    op.drop_table("campaign_definitions")
    op.drop_table("template_definitions")
    op.drop_table("segment_definitions")
