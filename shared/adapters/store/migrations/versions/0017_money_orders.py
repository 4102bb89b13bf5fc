"""orders: what each order was paid and what of it was refunded, so that a refund is never
more than its order left (shared/domain/money.py)

Orders bought before this revision were never kept: a refund of one is a refund of an
order nudge never saw (accepted up to NUDGE_UNSEEN_ORDER_REFUND_CAP).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("bought", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("refunded", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("purchases", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
    )


def downgrade() -> None:
    op.drop_table("orders")
