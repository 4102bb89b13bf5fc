"""placed_orders: every purchase as placed, the full history model validation reads

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Orders placed before this migration are not here (the profile kept no values):
    # a history replayed with `nudge replay` fills it.
    op.create_table(
        "placed_orders",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_placed_orders")),
    )
    with op.batch_alter_table("placed_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placed_orders_profile_id_placed_at"), ["profile_id", "placed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("placed_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placed_orders_profile_id_placed_at"))
    op.drop_table("placed_orders")
