"""The embedded bus's tables: topics, records and consumer groups' committed offsets.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # shared/adapters/bus/sqlite.py: the embedded default's bus, durable in the store's
    # own database. Created on PostgreSQL too (one schema everywhere), used only on SQLite.
    op.create_table(
        "bus_topics",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("partitions", sa.Integer(), nullable=False),
    )
    op.create_table(
        "bus_records",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition_no", sa.Integer(), primary_key=True),
        sa.Column("offset_no", sa.BigInteger(), primary_key=True),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.LargeBinary(), nullable=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "bus_offsets",
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition_no", sa.Integer(), primary_key=True),
        sa.Column("committed", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bus_offsets")
    op.drop_table("bus_records")
    op.drop_table("bus_topics")
